//! The Rust side of `cargo xtask bench b2b-beam`: beam search with the
//! bert-small2bert-small architecture (random weights) on `flex`.
//!
//! Cases `beam4 {B}x512 128new`: B sources of 512 tokens, 4 beams, no_repeat_ngram_size
//! 3, length_penalty 2.0, early stopping, min_length 0 and max_length 129 (128 new
//! tokens: transformers counts the decoder start token). EOS is disabled on both sides
//! (no `eos_token_id`), so every beam runs the full 128 steps and both sides do the same
//! work whatever the random weights prefer. Metric: `s_per_article` (median wall time of
//! the whole batch, encoder included, divided by B). One warm-up run, then the median of
//! 3 runs (1 with `--quick`).
//!
//! Usage: `cargo run --release -p scalegrad-bert2bert --example bench_b2b_beam [-- --quick]`.

/// The `scalegrad` binary's allocator, so the figures are what a training run sees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::tensor::{Device, Int, Tensor};
use scalegrad_bert2bert::{Bert2BertConfig, EarlyStopping, GenerationConfig, generate};

const SOURCE: usize = 512;
const NEW_TOKENS: usize = 128;

#[path = "../../../bench-support/b2b_inputs.rs"]
mod b2b_inputs;
use b2b_inputs::{ids, median};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 3 };
    let device = Device::flex();
    device.seed(0);
    let model = Bert2BertConfig::bert_small()
        .init(&device)
        .with_execution(scalegrad_ops::Execution::Host);
    let config = GenerationConfig {
        num_beams: 4,
        no_repeat_ngram_size: 3,
        length_penalty: 2.0,
        early_stopping: EarlyStopping::True,
        ..GenerationConfig::greedy(NEW_TOKENS + 1, 101, None)
    };
    for batch in [1usize, 4] {
        let source = ids(batch, SOURCE, 1, &device);
        let mask = Tensor::<2, Int>::ones([batch, SOURCE], &device);
        let mut times = Vec::new();
        for rep in 0..=reps {
            let start = Instant::now();
            let out = generate(&model, source.clone(), Some(mask.clone()), &config).unwrap();
            let elapsed = start.elapsed().as_secs_f64();
            assert!(
                out.iter().all(|g| g.tokens.len() == NEW_TOKENS),
                "every beam runs 128 steps"
            );
            if rep > 0 {
                times.push(elapsed);
            }
            eprintln!("beam4 {batch}x{SOURCE} run {rep}: {elapsed:.3} s");
        }
        let s = median(times) / batch as f64;
        let case = format!("beam4 {batch}x{SOURCE} {NEW_TOKENS}new");
        println!(
            r#"{{"case": "{case}", "metric": "s_per_article", "value": {s:.4}, "better": "lower"}}"#
        );
    }
}
