#!/usr/bin/env python3
"""GPU benchmark: scalegrad beside PyTorch + transformers on the same GPU.

`cargo xtask bench gpu` puts this script next to a release `scalegrad` binary (in
target/bench-gpu/); copy that folder to the GPU machine, which needs python3 with torch
and transformers but no Rust toolchain and no network, and run

    python3 bench_gpu.py [--backend wgpu] [--steps 10] [--out DIR]

It writes random-weight checkpoints with transformers' save_pretrained (the distilgpt2
architecture with dropout 0.1, and bert-small2bert-small), then for each case times
PyTorch in f32 with TF32 off (the ratio's baseline) and with autocast in bf16 (or, with
--precision, in that type, which is then the ratio's baseline), runs
`scalegrad bench --check` on the same checkpoints (its losses and logits on the GPU
backend against flex first, 1e-3 relative), and prints one table: tokens/s of both and
their ratio. The table and all numbers also go to DIR/bench-gpu.md and DIR/bench-gpu.json.
A case scalegrad cannot run on the device (it stops with one message, e.g. a buffer the
device refuses) shows as `failed` with that message below the table, and the remaining
cases run in a new process.

Cases: the distilgpt2 train step (forward, loss, backward, the gradient norm clipped to
1.0, AdamW; scalegrad's is its trainer's, LM head and loss in chunks of at most 512 MiB of
logits; in f16 both sides scale the loss dynamically) at 8x300 and 32x300 with
cross-entropy and with ScaleGrad gamma 0.2 (the closed form, on the same context sets as
scalegrad-loss); the bert-small2bert-small train step at 16 x 512/128; greedy decoding of
50-token prompts for 100 new tokens at batch 1 and 32 (generate with the KV cache).
Throughput is tokens per second of input (train: batch * length; bert2bert: batch *
(source + target)) or new tokens per second (decoding), timed over --steps steps after
two warm-up steps with a synchronisation at each end only.

Where nvidia-smi is on the PATH, a thread samples the GPU's utilisation (nvidia-smi's
utilization.gpu: the share of its last sample period in which a kernel ran) every 0.1 s
while both sides run, and the table gives its mean over each case's timed span for
scalegrad and for the PyTorch baseline: near 100% the GPU limits the case, far below it
the host does (kernel launches, bookkeeping, waits). Short spans hold few samples, so
read it as a guide, not a measurement to the percent.

The table's header names the kernel-fusion search the binary ran with (`scalegrad info`:
one open group of operations, scalegrad's setting, unless a burn.toml says otherwise).
--compare-fusion-search runs scalegrad a second time under burn's default search (from
a directory holding an empty burn.toml) and adds that column.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import shutil
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from transformers import (
    BertConfig,
    EncoderDecoderConfig,
    EncoderDecoderModel,
    GPT2Config,
    GPT2LMHeadModel,
)

transformers.logging.set_verbosity_error()

GPT2_TRAIN = [(8, 300), (32, 300)]
B2B_TRAIN = (16, 512, 128)
GREEDY = ([1, 32], 50, 100)
TINY = {"gpt2_train": [(2, 16), (4, 16)], "b2b_train": (2, 24, 8), "greedy": ([1, 3], 6, 5)}


def gpt2_config(tiny):
    if tiny:
        return GPT2Config(vocab_size=300, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                          bos_token_id=None, eos_token_id=None)
    # distilgpt2: 6 layers of GPT-2 small, dropout 0.1 everywhere (the defaults).
    return GPT2Config(n_layer=6, bos_token_id=None, eos_token_id=None)


def bert_config(decoder, tiny):
    size = dict(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=64) if tiny else dict(
        vocab_size=30522, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
        intermediate_size=2048, max_position_embeddings=512)
    return BertConfig(is_decoder=decoder, add_cross_attention=decoder, **size)


def make_checkpoints(out, tiny):
    torch.manual_seed(0)
    gpt2_dir, b2b_dir = out / "gpt2-random", out / "b2b-random"
    GPT2LMHeadModel(gpt2_config(tiny)).save_pretrained(gpt2_dir)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        bert_config(False, tiny), bert_config(True, tiny))
    config.decoder_start_token_id = 101
    config.pad_token_id = 0
    config.eos_token_id = 102
    EncoderDecoderModel(config).save_pretrained(b2b_dir)
    return gpt2_dir, b2b_dir


def ids(batch, length, vocab, salt, device):
    """The same deterministic ids as `scalegrad bench`."""
    values = [((i * 7919 + salt * 104729 + 13) % vocab) for i in range(batch * length)]
    return torch.tensor(values, device=device).reshape(batch, length)


def scalegrad_loss(logits, targets, gamma):
    """ScaleGrad's closed form (REFERENCE section 1): CE + log(gamma + (1 - gamma) P_t)
    - [y_t novel] log(gamma), P_t the probability mass of the distinct earlier targets."""
    log_probs = logits.float().log_softmax(-1)
    b, t, _ = log_probs.shape
    ce = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    # [b, t, t]: log p_t of the target at position s, for earlier first occurrences s < t.
    at_prev = log_probs.gather(-1, targets.unsqueeze(1).expand(b, t, t))
    same = targets.unsqueeze(2) == targets.unsqueeze(1)
    earlier = torch.ones(t, t, dtype=torch.bool, device=logits.device).tril(-1)
    first = ~(same & earlier).any(-1)  # position s is the first occurrence of its token
    in_context = earlier.unsqueeze(0) & first.unsqueeze(1)
    mass = (at_prev.exp() * in_context).sum(-1)
    novel = ~(same & earlier.unsqueeze(0)).any(-1)
    loss = ce + torch.log(gamma + (1 - gamma) * mass) - novel * math.log(gamma)
    return loss.mean()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, steps, device, warmup=2):
    """Seconds per call of `step`, after `warmup` calls, synchronising at both ends only,
    and the timed span `(start, end)` in Unix seconds."""
    for _ in range(warmup):
        step()
    sync(device)
    start, wall = time.perf_counter(), time.time()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - start
    return seconds / steps, (wall, wall + seconds)


class GpuLoad:
    """The GPU's utilisation over time, sampled with nvidia-smi in a background thread
    (`utilization.gpu`: the percentage of the driver's last sample period in which one or
    more kernels ran). Inactive, with no samples, where nvidia-smi is missing."""

    def __init__(self, index, period=0.1):
        self.command = shutil.which("nvidia-smi")
        self.index, self.period = index, period
        self.samples = []  # (Unix seconds, percent)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        if self.command:
            self.thread.start()
        return self

    def __exit__(self, *_):
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()

    def _sample(self):
        query = [self.command, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-i", str(self.index)]
        failures = 0
        while not self.done.is_set() and failures < 3:
            run = subprocess.run(query, capture_output=True, text=True)
            try:
                self.samples.append((time.time(), float(run.stdout.strip())))
                failures = 0
            except ValueError:
                # No reading (no driver, a busy query): three in a row end the sampling,
                # and the cases without samples show "-".
                failures += 1
            self.done.wait(self.period)

    def mean(self, span):
        """Mean utilisation (percent) of the samples taken within `span`, or None."""
        start, end = span
        inside = [value for at, value in self.samples if start < at <= end]
        return sum(inside) / len(inside) if inside else None


HALF = {"bf16": torch.bfloat16, "f16": torch.float16}


def autocast(device, half):
    """PyTorch's mixed precision in `half` ("bf16", "f16"), or f32 for None."""
    return torch.autocast(device.type, dtype=HALF.get(half, torch.bfloat16), enabled=half is not None)


MAX_GRAD_NORM = 1.0  # the full configs' and Hugging Face Trainer's default; scalegrad clips the same


class Scaler:
    """Backward, gradient clipping to MAX_GRAD_NORM and the optimiser step, as Hugging
    Face's Trainer does them: in f16 with dynamic loss scaling (torch.amp.GradScaler, as
    Trainer with fp16=True; scalegrad's f16 steps scale the same way)."""

    def __init__(self, device, half, model):
        self.scaler = torch.amp.GradScaler(device.type) if half == "f16" else None
        self.skipped = 0  # steps whose gradients overflowed (GradScaler skipped them)
        self.parameters = [p for p in model.parameters() if p.requires_grad]

    def report(self):
        if self.skipped:
            print(f"note: {self.skipped} PyTorch f16 steps (warm-up included) overflowed and "
                  f"were skipped (loss scale now {self.scaler.get_scale():g})", file=sys.stderr)

    def backward_and_step(self, loss, optim):
        if self.scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.parameters, MAX_GRAD_NORM)
            optim.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optim)
            torch.nn.utils.clip_grad_norm_(self.parameters, MAX_GRAD_NORM)
            self.scaler.step(optim)
            before = self.scaler.get_scale()
            self.scaler.update()
            if self.scaler.get_scale() < before:
                self.skipped += 1


def torch_gpt2_train(gpt2_dir, batch, length, objective, steps, device, half):
    model = GPT2LMHeadModel.from_pretrained(gpt2_dir).to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, eps=1e-8)
    x = ids(batch, length, model.config.vocab_size, 1, device)
    scaler = Scaler(device, half, model)

    def step():
        with autocast(device, half):
            logits = model(input_ids=x).logits[:, :-1]
        targets = x[:, 1:]
        if objective == "ce":
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
        else:
            loss = scalegrad_loss(logits, targets, 0.2)
        optim.zero_grad(set_to_none=True)
        scaler.backward_and_step(loss, optim)

    seconds, span = timed(step, steps, device)
    scaler.report()
    return batch * length / seconds, span


def torch_b2b_train(b2b_dir, shape, steps, device, half):
    batch, source, target = shape
    model = EncoderDecoderModel.from_pretrained(b2b_dir).to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-8)
    vocab = model.config.decoder.vocab_size
    src = ids(batch, source, vocab, 2, device)
    labels = ids(batch, target, vocab, 3, device)
    decoder_ids = torch.cat([torch.full((batch, 1), 101, device=device), labels[:, :-1]], dim=1)
    mask = torch.ones_like(src)
    scaler = Scaler(device, half, model)

    def step():
        with autocast(device, half):
            logits = model(input_ids=src, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1))
        optim.zero_grad(set_to_none=True)
        scaler.backward_and_step(loss, optim)

    seconds, span = timed(step, steps, device)
    scaler.report()
    return batch * (source + target) / seconds, span


def torch_greedy(gpt2_dir, batch, prefix, new, device, half):
    model = GPT2LMHeadModel.from_pretrained(gpt2_dir).to(device).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    vocab = model.config.vocab_size
    x = torch.tensor([[(b * 7919 + i * 31 + 11) % vocab for i in range(prefix)] for b in range(batch)],
                     device=device)

    def run():
        with torch.no_grad(), autocast(device, half):
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=new,
                                 do_sample=False, use_cache=True)
        assert out.shape == (batch, prefix + new), out.shape

    # One warm-up run, one timed run, as `scalegrad bench`.
    seconds, span = timed(run, 1, device, warmup=1)
    return batch * new / seconds, span


def torch_cases(gpt2_dir, b2b_dir, shapes, steps, device, half):
    """Throughput of each case, and its timed span."""
    out, spans = {}, {}
    for case, run in benchmark_cases(shapes, gpt2_dir, b2b_dir, steps, device, half):
        out[case], spans[case] = run()
        progress(case, out[case], half)
    return out, spans


def benchmark_cases(shapes, gpt2_dir=None, b2b_dir=None, steps=None, device=None, half=None):
    """`(name, run)` of each case, in the order `scalegrad bench` runs them and named as it
    names them; `run()` times PyTorch on the case."""
    for batch, length in shapes["gpt2_train"]:
        for objective in ("ce", "sg0.2"):
            yield (f"gpt2-train {objective} {batch}x{length}",
                   lambda b=batch, n=length, o=objective:
                   torch_gpt2_train(gpt2_dir, b, n, o, steps, device, half))
    batch, source, target = shapes["b2b_train"]
    yield (f"b2b-train ce {batch}x{source}+{target}",
           lambda: torch_b2b_train(b2b_dir, shapes["b2b_train"], steps, device, half))
    batches, prefix, new = shapes["greedy"]
    for batch in batches:
        yield (f"gpt2-greedy b{batch} {prefix}+{new}",
               lambda b=batch: torch_greedy(gpt2_dir, b, prefix, new, device, half))


def progress(case, value, half):
    print(f"pytorch {half or 'f32'} {case}: {value:,.1f}/s", file=sys.stderr, flush=True)


def ours(binary, backend, gpt2_dir, b2b_dir, steps, tiny, precision, names, cwd=None):
    """scalegrad's throughput of each case in `names`, its checks against flex, the timed
    spans, and the cases that failed with the last line scalegrad printed about each.

    `scalegrad bench` stops at a case the device cannot run (a buffer it refuses, no
    memory left); the remaining cases then run in a new process, so one such case does
    not cost the others on a GPU machine lent for minutes. A failed check against flex
    (run once, first) stops the benchmark."""
    cases, checks, spans, failed = {}, [], {}, {}
    remaining = list(names)
    first = True
    while remaining:
        command = [str(binary), "bench", "--backend", backend, "--gpt2", str(gpt2_dir),
                   "--b2b", str(b2b_dir), "--steps", str(steps), "--precision", precision]
        command += ["--check"] if first else []
        command += ["--size", "tiny"] if tiny else []
        for name in remaining:
            command += ["--only", name]
        print("running " + " ".join(command), file=sys.stderr, flush=True)
        run = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
        sys.stderr.write(run.stderr)
        lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        done = {line["case"]: line for line in lines if "case" in line}
        if first:
            checks = [line for line in lines if "check" in line]
            if run.returncode != 0 and not done and not checks_passed(checks):
                sys.exit(f"scalegrad bench failed (exit {run.returncode}); its output is above")
        first = False
        for case, line in done.items():
            cases[case], spans[case] = line["value"], tuple(line["span"])
        remaining = [name for name in remaining if name not in done]
        if run.returncode == 0 or not remaining:
            break
        # Cases run in order: the first one not done is the one that failed.
        failed[remaining[0]] = failure_message(run.stderr) or f"exit {run.returncode}"
        print(f"scalegrad: {remaining[0]} failed; going on with the other cases",
              file=sys.stderr, flush=True)
        remaining = remaining[1:]
    return cases, checks, spans, failed


def failure_message(stderr):
    """What scalegrad said about a failure: its `error: ...` line (the last one), else the
    message of a panic, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    for i, line in enumerate(lines):
        if "panicked at" in line and i + 1 < len(lines):
            return lines[i + 1]
    return lines[-1] if lines else None


def checks_passed(checks):
    """Whether the five comparisons `scalegrad bench --check` prints all printed and passed
    (a case can only fail after them)."""
    return len(checks) == 5 and all(c.get("ok") for c in checks)


def fusion_search(binary, cwd=None):
    """The kernel-fusion search `binary` runs with from `cwd` (this process's working
    directory by default), as `scalegrad info --json` reports it (`{"max_blocks": n,
    "source": ...}`)."""
    run = subprocess.run([str(Path(binary).resolve()), "info", "--json"], capture_output=True,
                         text=True, cwd=cwd)
    if run.returncode != 0:
        sys.exit(f"scalegrad info failed (exit {run.returncode}): {run.stderr}")
    return json.loads(run.stdout)["fusion_search"]


def table(device_name, backend, precision, names, ours_cases, same, other, other_label,
          checks, search, busy, failed, burn_search_cases=None):
    """`names`: the cases in order; `same`: PyTorch at scalegrad's precision (the ratio's
    baseline); `other`: a second PyTorch column for context; `busy`: case -> (scalegrad's, the baseline's) mean GPU
    utilisation in percent, either None; `failed`: case -> scalegrad's message for the
    cases it could not run; `burn_search_cases`: scalegrad under burn's default fusion
    search, when it was run."""
    reference = "f32 (TF32 off)" if precision == "f32" else f"{precision} autocast"
    burn_column = burn_search_cases is not None
    rows = [f"GPU: {device_name}; scalegrad backend `{backend}`, --precision {precision}, "
            f"kernel fusion search max_blocks {search['max_blocks']} ({search['source']}); "
            f"PyTorch {torch.__version__}, transformers {transformers.__version__}", "",
            f"| case | scalegrad {precision} | PyTorch {reference} | ratio | PyTorch {other_label} |"
            " GPU busy, scalegrad / PyTorch |"
            + (" scalegrad, burn's fusion search |" if burn_column else ""),
            "|---|---:|---:|---:|---:|---:|" + ("---:|" if burn_column else "")]
    for case in [case for case in names if case in ours_cases or case in failed]:
        value = ours_cases.get(case)
        base = same.get(case)
        base_text, ratio = (f"{base:,.0f}", f"{value / base:.2f}x") if base and value \
            else (f"{base:,.0f}" if base else "-", "-")
        extra = f"{other[case]:,.0f}" if case in other else "-"
        load = " / ".join("-" if p is None else f"{p:.0f}%" for p in busy.get(case, (None, None)))
        ours_text = f"{value:,.0f}" if value is not None else "failed"
        row = f"| {case} | {ours_text} | {base_text} | {ratio} | {extra} | {load} |"
        if burn_column:
            alt = burn_search_cases.get(case)
            row += f" {alt:,.0f} |" if alt else " - |"
        rows.append(row)
    rows.append("")
    rows.append("Train cases: input tokens/s; greedy: new tokens/s. GPU busy: mean of "
                "nvidia-smi's utilization.gpu over the timed span (near 100%: the GPU limits the "
                "case; far below: the host). Checks against flex: " + ", ".join(
        f"{c['check']} {c['relative_difference']:.1e}" for c in checks))
    rows += [f"\nscalegrad failed {case}: {message}" for case, message in failed.items()]
    return "\n".join(rows)


def main():
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scalegrad", type=Path, default=here / "scalegrad", help="the release binary")
    parser.add_argument("--backend", default="wgpu", help="scalegrad's GPU backend (wgpu, cuda)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per training case")
    parser.add_argument("--out", type=Path, default=Path("bench-gpu-out"), help="checkpoints and results")
    parser.add_argument("--device", default="cuda", help="PyTorch's device (cpu only for a smoke test)")
    parser.add_argument("--tiny", action="store_true", help="tiny models and shapes (a smoke test)")
    parser.add_argument("--precision", choices=["f32", "bf16", "f16"], default="f32",
                        help="scalegrad's --precision; the ratio compares PyTorch's autocast in the "
                             "same type (f16: both sides with dynamic loss scaling)")
    parser.add_argument("--compare-fusion-search", action="store_true",
                        help="also run scalegrad under burn's default kernel-fusion search")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = "CPU (smoke test)"
    args.out.mkdir(parents=True, exist_ok=True)
    shapes = TINY if args.tiny else {"gpt2_train": GPT2_TRAIN, "b2b_train": B2B_TRAIN, "greedy": GREEDY}
    gpt2_dir, b2b_dir = make_checkpoints(args.out, args.tiny)

    search = fusion_search(args.scalegrad)
    # nvidia-smi numbers GPUs as CUDA does on a one-GPU machine (the benchmark's case).
    with GpuLoad(device.index or 0) as load:
        names = [name for name, _ in benchmark_cases(shapes)]
        ours_cases, checks, ours_spans, failed = ours(args.scalegrad, args.backend, gpt2_dir,
                                                      b2b_dir, args.steps, args.tiny,
                                                      args.precision, names)
        burn_search_cases = None
        if args.compare_fusion_search:
            # An empty burn.toml in the working directory: burn's own defaults, which the
            # binary then leaves as they are.
            with tempfile.TemporaryDirectory() as burn_defaults:
                (Path(burn_defaults) / "burn.toml").write_text("")
                burn_search = fusion_search(args.scalegrad, burn_defaults)
                print(f"scalegrad under burn's fusion search: max_blocks {burn_search['max_blocks']}",
                      file=sys.stderr, flush=True)
                burn_search_cases, _, _, _ = ours(args.scalegrad.resolve(), args.backend,
                                                  gpt2_dir.resolve(), b2b_dir.resolve(),
                                                  args.steps, args.tiny, args.precision, names,
                                                  cwd=burn_defaults)
        f32, f32_spans = torch_cases(gpt2_dir, b2b_dir, shapes, args.steps, device, half=None)
        # The half column: scalegrad's precision, or bf16 next to an f32 run.
        half_name = "bf16" if args.precision == "f32" else args.precision
        half_ok = device.type == "cuda" and (half_name != "bf16" or torch.cuda.is_bf16_supported())
        half, half_spans = torch_cases(gpt2_dir, b2b_dir, shapes, args.steps, device, half=half_name) \
            if half_ok else ({}, {})
    # The GPU's load in scalegrad's timed spans and in those of the ratio's baseline.
    base_spans = f32_spans if args.precision == "f32" else half_spans
    busy = {case: (load.mean(span), load.mean(base_spans[case]) if case in base_spans else None)
            for case, span in ours_spans.items()}
    if args.precision == "f32":
        text = table(device_name, args.backend, "f32", names, ours_cases, f32, half, "bf16 autocast", checks,
                     search, busy, failed, burn_search_cases)
    else:
        text = table(device_name, args.backend, args.precision, names, ours_cases, half, f32,
                     "f32 (TF32 off)", checks, search, busy, failed, burn_search_cases)
    print(text)
    (args.out / "bench-gpu.md").write_text(text + "\n")
    (args.out / "bench-gpu.json").write_text(json.dumps(
        {"gpu": device_name, "backend": args.backend, "scalegrad": ours_cases,
         "precision": args.precision, "pytorch_f32": f32, f"pytorch_{half_name}": half,
         "checks": checks, "fusion_search": search, "gpu_busy_percent": busy,
         "scalegrad_failed": failed,
         "gpu_load_samples": len(load.samples),
         "scalegrad_burn_fusion_search": burn_search_cases}, indent=2) + "\n")


if __name__ == "__main__":
    main()
