"""Reference side of `cargo xtask bench rouge`: Google's rouge_score 0.1.2 on the same
2,000 pairs as examples/bench_rouge.rs (fixtures/bench_pairs.json.gz), printing JSON
lines with the same case/metric keys.

rouge_score is pure Python and single-threaded, so its one measured throughput is
printed under both the all-cores and the one-thread case. Each figure is the median of
several timed runs after a warm-up (`--quick`: one run).
"""

import gzip
import json
import os
import pathlib
import statistics
import sys
import time

try:
    import numpy as np
    from absl import logging as absl_logging
    from rouge_score import rouge_scorer, scoring
except ImportError as err:  # pragma: no cover - reported to xtask
    sys.exit(f"rouge_score is not installed ({err}); run `cargo xtask setup python`")

absl_logging.set_verbosity(absl_logging.ERROR)
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "python"))
from bench_common import emit  # noqa: E402


def median_secs(runs, f):
    f()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    quick = "--quick" in sys.argv
    runs = 1 if quick else 3
    with gzip.open(os.path.join(HERE, "..", "fixtures", "bench_pairs.json.gz"), "rt",
                   encoding="utf-8") as f:
        pairs = json.load(f)["pairs"]
    n = len(pairs)
    print(f"bench_rouge.py: {n} pairs, {runs} timed runs per case", file=sys.stderr)

    def score_all(scorer):
        return [scorer.score(ref, pred) for ref, pred in pairs]

    stem = rouge_scorer.RougeScorer(TYPES, use_stemmer=True)
    plain = rouge_scorer.RougeScorer(TYPES, use_stemmer=False)

    secs = median_secs(runs, lambda: score_all(stem))
    emit("2000 pairs stem", "pairs_per_s", n / secs, "higher")
    emit("2000 pairs stem 1 thread", "pairs_per_s", n / secs, "higher")

    secs = median_secs(runs, lambda: score_all(plain))
    emit("2000 pairs no-stem", "pairs_per_s", n / secs, "higher")

    scores = score_all(stem)

    def bootstrap():
        np.random.seed(0)
        agg = scoring.BootstrapAggregator()
        for s in scores:
            agg.add_scores(s)
        agg.aggregate()

    secs = median_secs(runs, bootstrap)
    emit("bootstrap 4x1000 of 2000", "ms", secs * 1e3, "lower")


if __name__ == "__main__":
    main()
