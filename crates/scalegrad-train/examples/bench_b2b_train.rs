//! The Rust side of `cargo xtask bench b2b-train`: one training step of the
//! bert-small2bert-small architecture (random weights) on `flex`: forward, cross-entropy
//! (scalegrad-loss with gamma = 1, padding ignored), backward and an AdamW update
//! (lr 1e-4, weight decay 1e-4, as the Python side) through the training loop's
//! optimiser (`scalegrad_train::optim::adamw`, host update path as on every CPU backend).
//!
//! Cases `train {B}x512+128`: B sources of 512 tokens and B targets of 128 tokens.
//! Metrics: `s` (median seconds per step) and `tokens_per_s` (B * (512 + 128) / s).
//! One warm-up step, then the median of 3 steps (1 with `--quick`).
//!
//! Usage: `cargo run --release -p scalegrad-train --example bench_b2b_train [-- --quick]`.

/// The `scalegrad` binary's allocator, so the figures are what a training run sees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor};
use scalegrad_bert2bert::{Bert2BertConfig, shift_tokens_right};
use scalegrad_loss::ScaleGradConfig;
use scalegrad_ops::Execution;
use scalegrad_train::config::OptimizerSection;
use scalegrad_train::optim::{AdamWUpdate, adamw};

const SOURCE: usize = 512;
const TARGET: usize = 128;

#[path = "../../../bench-support/b2b_inputs.rs"]
mod b2b_inputs;
use b2b_inputs::{ids, median};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 3 };
    let device = Device::flex().autodiff();
    device.seed(0);
    let config = Bert2BertConfig::bert_small();
    let loss = ScaleGradConfig::new(1.0)
        .with_ignore_index(Some(-100))
        .init();
    for batch in [1usize, 4] {
        let mut model = config.init(&device).with_execution(Execution::Host);
        let optim_config: OptimizerSection =
            toml::from_str("lr = 1e-4\nweight_decay = 1e-4").expect("valid section");
        let mut optim = adamw(&optim_config, AdamWUpdate::Host);
        let source = ids(batch, SOURCE, 1, &device);
        let mask = Tensor::<2, Int>::ones([batch, SOURCE], &device);
        let labels = ids(batch, TARGET, 2, &device);
        let decoder_ids = shift_tokens_right(labels.clone(), 0, 101);
        let mut times = Vec::new();
        for rep in 0..=reps {
            let start = Instant::now();
            let logits = model.forward(
                source.clone(),
                Some(mask.clone()),
                decoder_ids.clone(),
                None,
            );
            let value = loss.forward(logits, labels.clone());
            let grads = GradientsParams::from_grads(value.backward(), &model);
            model = optim.step(1e-4, model, grads);
            // Wait for the update to finish before stopping the clock.
            let _ = model.decoder.head.bias.val().narrow(0, 0, 1).into_data();
            let elapsed = start.elapsed().as_secs_f64();
            if rep > 0 {
                times.push(elapsed);
            }
            eprintln!("train {batch}x{SOURCE}+{TARGET} step {rep}: {elapsed:.3} s");
        }
        let s = median(times);
        let case = format!("train {batch}x{SOURCE}+{TARGET}");
        println!(r#"{{"case": "{case}", "metric": "s", "value": {s:.4}, "better": "lower"}}"#);
        let tps = (batch * (SOURCE + TARGET)) as f64 / s;
        println!(
            r#"{{"case": "{case}", "metric": "tokens_per_s", "value": {tps:.1}, "better": "higher"}}"#
        );
    }
}
