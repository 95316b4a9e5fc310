"""Reference side of `cargo xtask bench b2b-beam`: transformers' generate() on 2 threads.

Mirrors examples/bench_b2b_beam.rs: the bert-small2bert-small architecture (random
weights, eval mode), sources of 512 tokens, num_beams 4, no_repeat_ngram_size 3,
length_penalty 2.0, early_stopping True, min_length 0, max_length 129 (128 new tokens;
transformers counts the decoder start token). EOS is disabled (eos_token_id None), so
every beam runs the full 128 steps on both sides. Cases `beam4 {B}x512 128new` for
B = 1 and 4; metric `s_per_article` (median wall time of generate() for the batch / B).
One warm-up run, then the median of 3 (1 with --quick).
"""
import pathlib
import sys

import torch
import transformers
from transformers import EncoderDecoderModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import bert2bert_config, emit, median_seconds, seeded_ids  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
SOURCE, NEW = 512, 128


def main():
    reps = 1 if "--quick" in sys.argv else 3
    torch.manual_seed(0)
    model = EncoderDecoderModel(bert2bert_config()).eval()
    for batch in (1, 4):
        source = seeded_ids(batch, SOURCE, 1)
        mask = torch.ones_like(source)

        def run():
            with torch.no_grad():
                out = model.generate(
                    source, attention_mask=mask, num_beams=4, no_repeat_ngram_size=3,
                    length_penalty=2.0, early_stopping=True, min_length=0, max_length=NEW + 1,
                    decoder_start_token_id=101, eos_token_id=None, pad_token_id=0,
                )
            assert out.shape[1] == NEW + 1, out.shape

        s = median_seconds(run, reps, f"beam4 {batch}x{SOURCE}") / batch
        emit(f"beam4 {batch}x{SOURCE} {NEW}new", "s_per_article", round(s, 4), "lower")


if __name__ == "__main__":
    main()
