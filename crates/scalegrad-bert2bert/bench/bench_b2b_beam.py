"""Reference side of `cargo xtask bench b2b-beam`: transformers' generate() on 2 threads.

Mirrors examples/bench_b2b_beam.rs: the bert-small2bert-small architecture (random
weights, eval mode), sources of 512 tokens, num_beams 4, no_repeat_ngram_size 3,
length_penalty 2.0, early_stopping True, min_length 0, max_length 129 (128 new tokens;
transformers counts the decoder start token). EOS is disabled (eos_token_id None), so
every beam runs the full 128 steps on both sides. Cases `beam4 {B}x512 128new` for
B = 1 and 4; metric `s_per_article` (median wall time of generate() for the batch / B).
One warm-up run, then the median of 3 (1 with --quick).
"""
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
SOURCE, NEW = 512, 128


def bert_small(decoder):
    return BertConfig(
        vocab_size=30522, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
        intermediate_size=2048, max_position_embeddings=512,
        is_decoder=decoder, add_cross_attention=decoder,
    )


def main():
    reps = 1 if "--quick" in sys.argv else 3
    torch.manual_seed(0)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(bert_small(False), bert_small(True))
    config.decoder_start_token_id = 101
    config.pad_token_id = 0
    model = EncoderDecoderModel(config).eval()
    for batch in (1, 4):
        g = torch.Generator().manual_seed(1)
        source = torch.randint(1000, 30000, (batch, SOURCE), generator=g)
        mask = torch.ones_like(source)
        times = []
        for rep in range(reps + 1):
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(
                    source, attention_mask=mask, num_beams=4, no_repeat_ngram_size=3,
                    length_penalty=2.0, early_stopping=True, min_length=0, max_length=NEW + 1,
                    decoder_start_token_id=101, eos_token_id=None, pad_token_id=0,
                )
            elapsed = time.perf_counter() - start
            assert out.shape[1] == NEW + 1, out.shape
            if rep > 0:
                times.append(elapsed)
            print(f"beam4 {batch}x{SOURCE} run {rep}: {elapsed:.3f} s", file=sys.stderr)
        s = statistics.median(times) / batch
        print(json.dumps({"case": f"beam4 {batch}x{SOURCE} {NEW}new", "metric": "s_per_article", "value": round(s, 4), "better": "lower"}))


if __name__ == "__main__":
    main()
