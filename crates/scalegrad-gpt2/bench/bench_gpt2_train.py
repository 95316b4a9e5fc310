"""Reference side of `cargo xtask bench gpt2-train`: PyTorch + transformers, 2 threads.

Mirrors crates/scalegrad-train/examples/bench_gpt2_train.rs: the distilgpt2 architecture with random weights
in training mode (dropout on), `GPT2LMHeadModel(ids, labels=ids).loss`, backward,
`torch.optim.AdamW(lr=2e-5)` (weight decay 0.01, eps 1e-8), at 1x128 and 4x128. The
first step is a warm-up; the median of the others is reported as tokens per second.
Stock glibc settings, as REFERENCE.md section 6 states.
"""
import pathlib
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import emit, median_seconds  # noqa: E402

torch.set_num_threads(2)


def main():
    quick = "--quick" in sys.argv
    torch.manual_seed(0)
    config = GPT2Config(n_layer=6)  # distilgpt2: GPT-2 small with 6 layers
    for batch, length, steps in [(1, 128, 3 if quick else 6), (4, 128, 2 if quick else 4)]:
        model = GPT2LMHeadModel(config).train()
        optim = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, eps=1e-8)
        ids = torch.tensor([(i * 7919 + 13) % 50257 for i in range(batch * length)]).reshape(batch, length)

        def step():
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)

        median = median_seconds(step, steps, f"{batch}x{length}")
        emit(f"{batch}x{length}", "tokens_per_s", round(batch * length / median, 2), "higher")


if __name__ == "__main__":
    main()
