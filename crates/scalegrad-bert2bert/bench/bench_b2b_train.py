"""Reference side of `cargo xtask bench b2b-train`: PyTorch + transformers on 2 threads.

Mirrors crates/scalegrad-train/examples/bench_b2b_train.rs: the bert-small2bert-small architecture
(EncoderDecoderModel, random weights, train mode so dropout is on), sources of 512 tokens,
labels of 128 tokens, cross-entropy with ignore_index -100, backward and an AdamW step.
Cases `train {B}x512+128` for B = 1 and 4; metrics `s` (median seconds per step) and
`tokens_per_s` (B * 640 / s). One warm-up step, then the median of 3 (1 with --quick).
Stock glibc malloc settings (see REFERENCE.md section 6).
"""
import pathlib
import sys

import torch
import torch.nn.functional as F
import transformers
from transformers import EncoderDecoderModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import bert2bert_config, emit, median_seconds, seeded_ids  # noqa: E402

transformers.logging.set_verbosity_error()
torch.set_num_threads(2)
SOURCE, TARGET = 512, 128


def main():
    reps = 1 if "--quick" in sys.argv else 3
    torch.manual_seed(0)
    config = bert2bert_config()
    for batch in (1, 4):
        model = EncoderDecoderModel(config).train()
        optim = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
        source = seeded_ids(batch, SOURCE, 1)
        mask = torch.ones_like(source)
        labels = seeded_ids(batch, TARGET, 2)
        decoder_ids = torch.cat([torch.full((batch, 1), 101), labels[:, :-1]], dim=1)

        def step():
            logits = model(input_ids=source, attention_mask=mask, decoder_input_ids=decoder_ids).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()

        case = f"train {batch}x{SOURCE}+{TARGET}"
        s = median_seconds(step, reps, case)
        emit(case, "s", round(s, 4), "lower")
        emit(case, "tokens_per_s", round(batch * (SOURCE + TARGET) / s, 1), "higher")


if __name__ == "__main__":
    main()
