"""Reference side of `cargo xtask bench data`: HF `datasets.map` with the fast tokenizer.

Same work as examples/bench_data.rs: read the generated WikiText-like parquet shards
(100 MB of text, 10 MB with --quick) from $TMPDIR/scalegrad-bench-data-<MB>mb/, tokenise
every row with GPT2TokenizerFast loaded from the same tokenizer.json (a byte-level BPE
with 50257 entries trained on the corpus), and group the ids into 1024-token windows as
HF run_clm.py's `group_texts` does, with the datasets cache in a fresh temporary folder
(so `map` writes its Arrow cache files, as ours writes its token cache).

Two configurations: `map(batched=True)` in one process (the default; the fast
tokenizer's batch encoding is itself parallel over both cores through Rust/rayon), and
`num_proc=2` (two worker processes; tokenizers then disables its own parallelism).
Prints JSON lines with the same case/metric keys as the Rust side.
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import time

import pyarrow.compute as pc
import torch

torch.set_num_threads(2)

from datasets import disable_progress_bars, load_dataset  # noqa: E402
from transformers import GPT2TokenizerFast  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import emit  # noqa: E402

BLOCK = 1024


def main():
    quick = "--quick" in sys.argv
    mb = 10 if quick else 100
    root = os.path.join(tempfile.gettempdir(), f"scalegrad-bench-data-{mb}mb")
    if not os.path.exists(os.path.join(root, "READY")):
        cmd = ["cargo", "run", "--release", "-q", "-p", "scalegrad-data", "--example", "bench_data", "--", "--prepare-only"]
        if quick:
            cmd.append("--quick")
        subprocess.run(cmd, check=True)
    files = sorted(os.path.join(root, f) for f in os.listdir(root) if f.endswith(".parquet"))
    tok = GPT2TokenizerFast(tokenizer_file=os.path.join(root, "tokenizer.json"))
    disable_progress_bars()
    case = f"gpt2-bpe {mb}MB parquet->windows"

    def tokenize(batch):
        return tok(batch["text"])

    def group_texts(examples):
        ids = [t for row in examples["input_ids"] for t in row]
        total = (len(ids) // BLOCK) * BLOCK
        blocks = [ids[i : i + BLOCK] for i in range(0, total, BLOCK)]
        return {"input_ids": blocks, "labels": [b[:] for b in blocks]}

    for num_proc, key in [(None, case), (2, f"{case} vs num_proc=2")]:
        with tempfile.TemporaryDirectory() as cache:
            t = time.perf_counter()
            ds = load_dataset("parquet", data_files=files, split="train", cache_dir=cache)
            tokenized = ds.map(tokenize, batched=True, remove_columns=["text"], num_proc=num_proc)
            grouped = tokenized.map(group_texts, batched=True, num_proc=num_proc, remove_columns=tokenized.column_names)
            secs = time.perf_counter() - t
            # Token count outside the timed region.
            tokens = pc.sum(pc.list_value_length(tokenized.data.column("input_ids"))).as_py()
            print(f"num_proc={num_proc}: {tokens} tokens, {len(grouped)} windows, {secs:.2f} s", file=sys.stderr)
            emit(key, "tokens_per_s", tokens / secs, "higher")
            emit(key, "s", secs, "lower")


if __name__ == "__main__":
    main()
