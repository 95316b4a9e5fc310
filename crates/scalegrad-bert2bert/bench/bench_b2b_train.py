"""Reference side of `cargo xtask bench b2b-train`: PyTorch + transformers on 2 threads.

Mirrors crates/scalegrad-train/examples/bench_b2b_train.rs: the bert-small2bert-small architecture
(EncoderDecoderModel, random weights, train mode so dropout is on), sources of 512 tokens,
labels of 128 tokens, cross-entropy with ignore_index -100, backward and an AdamW step.
Cases `train {B}x512+128` for B = 1 and 4; metrics `s` (median seconds per step) and
`tokens_per_s` (B * 640 / s). One warm-up step, then the median of 3 (1 with --quick).
Stock glibc malloc settings (see REFERENCE.md section 6).
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
SOURCE, TARGET = 512, 128


def bert_small(decoder):
    return BertConfig(
        vocab_size=30522, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
        intermediate_size=2048, max_position_embeddings=512,
        is_decoder=decoder, add_cross_attention=decoder,
    )


def ids(batch, length, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1000, 30000, (batch, length), generator=g)


def main():
    reps = 1 if "--quick" in sys.argv else 3
    torch.manual_seed(0)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(bert_small(False), bert_small(True))
    config.decoder_start_token_id = 101
    config.pad_token_id = 0
    for batch in (1, 4):
        model = EncoderDecoderModel(config).train()
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
        source = ids(batch, SOURCE, 1)
        mask = torch.ones_like(source)
        labels = ids(batch, TARGET, 2)
        decoder_ids = torch.cat([torch.full((batch, 1), 101), labels[:, :-1]], dim=1)
        times = []
        for rep in range(reps + 1):
            start = time.perf_counter()
            logits = model(input_ids=source, attention_mask=mask, decoder_input_ids=decoder_ids).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            elapsed = time.perf_counter() - start
            if rep > 0:
                times.append(elapsed)
            print(f"train {batch}x{SOURCE}+{TARGET} step {rep}: {elapsed:.3f} s", file=sys.stderr)
        s = statistics.median(times)
        case = f"train {batch}x{SOURCE}+{TARGET}"
        print(json.dumps({"case": case, "metric": "s", "value": round(s, 4), "better": "lower"}))
        print(json.dumps({"case": case, "metric": "tokens_per_s", "value": round(batch * (SOURCE + TARGET) / s, 1), "better": "higher"}))


if __name__ == "__main__":
    main()
