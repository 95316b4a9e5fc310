//! Rust side of `cargo xtask bench rouge`: scores the 2,000 committed benchmark pairs
//! (fixtures/bench_pairs.json.gz, 50-70 words in 3-4 newline-separated sentences) with
//! all four ROUGE types and prints JSON lines whose case/metric keys match
//! bench/bench_rouge.py.
//!
//! Cases: pairs/s with the stemmer on all cores (rayon) and on one thread, pairs/s
//! without the stemmer, and the time of the seeded bootstrap (4 types x 1000
//! resamples). Each figure is the median of several timed runs after a warm-up run.
//! `--quick` times one run of each.

use std::io::Read;
use std::time::Instant;

use scalegrad_metrics::{BootstrapConfig, RougeAggregate, RougeScorer};

fn load_pairs() -> (Vec<String>, Vec<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/bench_pairs.json.gz");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("gunzip bench pairs");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse bench pairs");
    json["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .unzip()
}

/// Median wall time in seconds of `runs` calls of `f`, after one warm-up call.
fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn emit(case: &str, metric: &str, value: f64, better: &str) {
    println!(
        "{}",
        serde_json::json!({"case": case, "metric": metric, "value": value, "better": better})
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 7 };
    let (references, predictions) = load_pairs();
    let n = references.len();
    eprintln!(
        "bench_rouge: {n} pairs, {} rayon threads, {runs} timed runs per case",
        rayon::current_num_threads()
    );

    let stem = RougeScorer::new(true);
    let plain = RougeScorer::new(false);
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread pool");

    let secs = median_secs(runs, || {
        stem.score_all(&references, &predictions).unwrap();
    });
    emit("2000 pairs stem", "pairs_per_s", n as f64 / secs, "higher");

    let secs = median_secs(runs, || {
        one_thread.install(|| stem.score_all(&references, &predictions).unwrap());
    });
    emit(
        "2000 pairs stem 1 thread",
        "pairs_per_s",
        n as f64 / secs,
        "higher",
    );

    let secs = median_secs(runs, || {
        plain.score_all(&references, &predictions).unwrap();
    });
    emit(
        "2000 pairs no-stem",
        "pairs_per_s",
        n as f64 / secs,
        "higher",
    );

    let scores = stem.score_all(&references, &predictions).unwrap();
    let config = BootstrapConfig::default();
    let secs = median_secs(runs, || {
        RougeAggregate::bootstrap(&scores, &config).unwrap();
    });
    emit("bootstrap 4x1000 of 2000", "ms", secs * 1e3, "lower");
}
