"""Reference side of `cargo xtask bench gpt2-decode`: transformers' generate, 2 threads.

Mirrors examples/bench_gpt2_decode.rs: the distilgpt2 architecture with random weights,
greedy decoding of 100 new tokens after a 50-token prompt per row, batch 1 and 8, with
the KV cache (generate's default), no stop token. The whole `generate` call is timed;
the first run is a warm-up and the median of the others is reported as new tokens per
second.
"""
import pathlib
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import emit, median_seconds  # noqa: E402

torch.set_num_threads(2)
PREFIX, NEW_TOKENS = 50, 100


def main():
    quick = "--quick" in sys.argv
    torch.manual_seed(0)
    # No EOS anywhere, so every row decodes all 100 tokens.
    config = GPT2Config(n_layer=6, bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    for batch in (1, 8):
        ids = torch.tensor(
            [[(b * 1009 + i * 7919 + 13) % 50257 for i in range(PREFIX)] for b in range(batch)]
        )
        mask = torch.ones_like(ids)
        runs = 2 if quick else 4

        def run():
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW_TOKENS,
                                     do_sample=False, use_cache=True)
            assert out.shape == (batch, PREFIX + NEW_TOKENS), out.shape

        median = median_seconds(run, runs, f"batch {batch}")
        emit(f"batch {batch}, 50+100", "tokens_per_s", round(batch * NEW_TOKENS / median, 2), "higher")


if __name__ == "__main__":
    main()
