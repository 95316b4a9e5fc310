//! The Rust side of `cargo xtask bench gpt2-decode`: greedy decoding throughput of the
//! distilgpt2 architecture (random weights) on flex, printed as JSON lines.
//!
//! Each run decodes 100 new tokens after a 50-token prompt per row (no stop token, so
//! every row produces all 100) at batch 1 and 8, with the key/value cache, timing the
//! whole `generate` call (prefill included). The first run is a warm-up; the median of
//! the others is reported as new tokens per second (`batch * 100 / seconds`).
//!
//! Usage: `cargo run --release -p scalegrad-gpt2 --example bench_gpt2_decode [-- --quick]
//! [--batch N]` (`--batch` runs that batch size only, for profiling).

/// The `scalegrad` binary's allocator, so the figures are what a training run sees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::tensor::Device;
use scalegrad_gpt2::{GenerationConfig, Gpt2Config, generate};

const PREFIX: usize = 50;
const NEW_TOKENS: usize = 100;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let device = Device::flex();
    device.seed(0);
    let model = Gpt2Config::distilgpt2()
        .init(&device)
        .with_execution(scalegrad_ops::Execution::Host);
    let config = GenerationConfig::greedy(NEW_TOKENS);
    let args: Vec<String> = std::env::args().collect();
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--batch takes a number"));
    let batches = only.map_or(vec![1usize, 8], |n| vec![n]);
    for batch in batches {
        let prompts: Vec<Vec<u32>> = (0..batch)
            .map(|b| {
                (0..PREFIX)
                    .map(|i| ((b * 1009 + i * 7919 + 13) % 50257) as u32)
                    .collect()
            })
            .collect();
        let runs = if quick { 2 } else { 4 };
        let mut times = Vec::new();
        for run in 0..=runs {
            let start = Instant::now();
            let out = generate(&model, &prompts, &config).expect("generates");
            let elapsed = start.elapsed().as_secs_f64();
            assert!(out.iter().all(|g| g.tokens.len() == NEW_TOKENS));
            if run > 0 {
                times.push(elapsed);
            }
            eprintln!("batch {batch} run {run}: {elapsed:.3} s");
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let tokens_per_s = (batch * NEW_TOKENS) as f64 / median;
        println!(
            r#"{{"case": "batch {batch}, 50+100", "metric": "tokens_per_s", "value": {tokens_per_s:.2}, "better": "higher"}}"#
        );
    }
}
