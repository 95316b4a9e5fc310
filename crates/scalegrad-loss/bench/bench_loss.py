"""Reference side of `cargo xtask bench loss`: PyTorch on the same 2 CPU threads.

Cases mirror examples/bench_loss.rs: `ce` (F.cross_entropy), `mle` (the same),
`sg` (closed-form ScaleGrad in PyTorch, gamma 0.2), `ul` (unlikelihood, alpha 1, via the
same gather), `sg_masked` (the authors' formulation: a [B, T, V] novelty mask, scaled and
renormalised probabilities). Time is the median of forward+backward; `peak_mb` is the rise
of the peak RSS (VmHWM) over one forward+backward in a fresh child process, so that
memory the allocator kept from earlier cases cannot hide it; the Rust side does the same.
Stock glibc settings, as REFERENCE.md section 6 states.
"""
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import emit  # noqa: E402

torch.set_num_threads(2)
VOCAB = 50257


def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return status_mb("VmRSS:")


def context(targets):
    """members[b, t, s]: s < t is the first occurrence of its token; novel[b, t]."""
    b, t = targets.shape
    earlier = torch.ones(t, t, dtype=torch.bool).tril(-1)
    same = targets[:, :, None] == targets[:, None, :]
    repeats = same & earlier
    novel = ~repeats.any(-1)
    members = novel[:, None, :] & earlier
    return members, same, novel


def target_logprobs(logits, targets):
    """lp[b, t, s]: log-probability at position t of the target at s; nll[b, t]."""
    lse = torch.logsumexp(logits, -1, keepdim=True)
    t = targets.shape[1]
    idx = targets[:, None, :].expand(-1, t, -1)
    lp = logits.gather(-1, idx) - lse
    return lp, -torch.diagonal(lp, dim1=1, dim2=2)


def closed_sg(logits, targets, gamma):
    members, _, novel = context(targets)
    lp, nll = target_logprobs(logits, targets)
    mass = (lp.exp() * members).sum(-1)
    loss = nll + torch.log(gamma + (1 - gamma) * mass) - novel * torch.log(torch.tensor(gamma))
    return loss.mean()


def closed_ul(logits, targets, alpha):
    members, same, _ = context(targets)
    lp, nll = target_logprobs(logits, targets)
    pen = -(torch.clamp(1 - lp.exp(), min=1e-5).log() * (members & ~same)).sum(-1)
    return (nll + alpha * pen).mean()


def masked_sg(logits, targets, gamma):
    b, t, v = logits.shape
    onehot = torch.zeros(b, t, v).scatter_(-1, targets[..., None], 1.0)
    seen = (onehot.cumsum(1) - onehot) > 0
    weights = torch.where(seen, 1.0, gamma)
    probs = torch.softmax(logits, -1) * weights
    probs = probs / probs.sum(-1, keepdim=True)
    return -probs.gather(-1, targets[..., None]).log().mean()


def make_inputs(b, t):
    torch.manual_seed(0)
    logits = torch.randn(b, t, VOCAB) * 2.0
    ids = [((i * 7919 + (i // 3) * 104729) % 400) for i in range(b * t)]
    return logits, torch.tensor(ids).reshape(b, t)


def cases_for(targets):
    return {
        "ce": lambda l: F.cross_entropy(l.reshape(-1, VOCAB), targets.reshape(-1)),
        "mle": lambda l: F.cross_entropy(l.reshape(-1, VOCAB), targets.reshape(-1)),
        "sg": lambda l: closed_sg(l, targets, 0.2),
        "ul": lambda l: closed_ul(l, targets, 1.0),
        "sg_masked": lambda l: masked_sg(l, targets, 0.2),
    }


def child_peak(name, b, t):
    """Peak RSS rise of one forward+backward of `name`, in a fresh process."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--memory", name, str(b), str(t)],
        check=True, capture_output=True, text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def memory_child(name, b, t):
    logits, targets = make_inputs(b, t)
    fn = cases_for(targets)[name]
    x = logits.clone().requires_grad_(True)
    before = reset_peak_rss()
    fn(x).backward()
    print(status_mb("VmHWM:") - before)


def main():
    if "--memory" in sys.argv:
        i = sys.argv.index("--memory")
        memory_child(sys.argv[i + 1], int(sys.argv[i + 2]), int(sys.argv[i + 3]))
        return
    quick = "--quick" in sys.argv
    shapes = [(1, 128), (4, 128)] if quick else [(1, 128), (4, 128), (8, 256)]
    for b, t in shapes:
        logits0, targets = make_inputs(b, t)
        cases = cases_for(targets)
        reps = 3 if b * t >= 2048 else 5
        for name, fn in cases.items():
            case = f"{name} {b}x{t}x{VOCAB}"
            times = []
            for rep in range(reps + 1):
                x = logits0.clone().requires_grad_(True)
                start = time.perf_counter()
                fn(x).backward()
                elapsed = (time.perf_counter() - start) * 1e3
                if rep > 0:
                    times.append(elapsed)
                del x
            times.sort()
            peak = child_peak(name, b, t)
            for metric, value in (("ms", times[len(times) // 2]), ("peak_mb", peak)):
                emit(case, metric, round(value, 3), "lower")


if __name__ == "__main__":
    main()
