//! The Rust side of `cargo xtask bench gpt2-train`: training-step throughput of the
//! distilgpt2 architecture (random weights) on flex, printed as JSON lines.
//!
//! One step is what a fine-tuning loop does: forward (dropout on), cross-entropy of the
//! shifted logits (scalegrad-loss at gamma = 1, as `GPT2LMHeadModel(labels=ids)`),
//! backward, AdamW (lr 2e-5, weight decay 0.01, eps 1e-8, as the Python side's
//! torch.optim.AdamW) through the training loop's optimiser (`scalegrad_train::optim::adamw`,
//! with the update path the backend gets in a run). The first step is a warm-up; the
//! median of the others is reported as tokens per second (`batch * len / seconds`).
//!
//! Usage: `cargo run --release -p scalegrad-train --example bench_gpt2_train [-- --quick]`;
//! `--features bench-ndarray` and `-- --backend ndarray` run the same steps on burn's
//! ndarray backend (cases are then labelled `ndarray 1x128`, ...); `-- --update tensor`
//! uses burn's own AdamW update instead (cases labelled `tensor-adamw 1x128`, ...).

/// The `scalegrad` binary's allocator, so the figures are what a training run sees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_gpt2::{Gpt2Config, shift_for_next_token};
use scalegrad_loss::ScaleGradConfig;
use scalegrad_ops::Execution;
use scalegrad_train::config::OptimizerSection;
use scalegrad_train::optim::{AdamWUpdate, adamw};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let backend = args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .map_or("flex", String::as_str);
    let update = match args.iter().position(|a| a == "--update") {
        Some(i) if args.get(i + 1).map(String::as_str) == Some("tensor") => AdamWUpdate::Tensor,
        Some(_) => AdamWUpdate::Host,
        None => AdamWUpdate::for_execution(Execution::Host),
    };
    let update_label = match update {
        _ if update == AdamWUpdate::for_execution(Execution::Host) => "",
        AdamWUpdate::Tensor => "tensor-adamw ",
        AdamWUpdate::Host => "host-adamw ",
    };
    let (device, label) = match backend {
        "flex" => (Device::flex(), ""),
        #[cfg(feature = "bench-ndarray")]
        #[allow(deprecated)]
        "ndarray" => (Device::ndarray(), "ndarray "),
        other => panic!("backend `{other}` is not compiled in (ndarray: --features bench-ndarray)"),
    };
    let device = device.autodiff();
    device.seed(0);
    let config = Gpt2Config::distilgpt2();
    let loss_fn = ScaleGradConfig::new(1.0).init();
    for (batch, len, steps) in [
        (1usize, 128usize, if quick { 3 } else { 6 }),
        (4, 128, if quick { 2 } else { 4 }),
    ] {
        // Both CPU backends: the host fast paths, as the CLI runs them.
        let mut model = config.init(&device).with_execution(Execution::Host);
        let optim_config: OptimizerSection =
            toml::from_str("lr = 2e-5\nweight_decay = 0.01\neps = 1e-8").expect("valid section");
        let mut optim = adamw(&optim_config, update);
        let ids: Vec<i64> = (0..batch * len)
            .map(|i| ((i * 7919 + 13) % 50257) as i64)
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
        let mut times = Vec::new();
        for step in 0..=steps {
            let start = Instant::now();
            let (logits, targets) =
                shift_for_next_token(model.forward(ids.clone(), None), ids.clone());
            let loss = loss_fn.forward(logits, targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(2e-5, model, grads);
            // Finish the step's work before stopping the clock.
            let _ = model.blocks[0].ln_1.gamma.val().into_data();
            let elapsed = start.elapsed().as_secs_f64();
            if step > 0 {
                times.push(elapsed);
            }
            eprintln!("{batch}x{len} step {step}: {elapsed:.3} s");
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let tokens_per_s = (batch * len) as f64 / median;
        println!(
            r#"{{"case": "{label}{update_label}{batch}x{len}", "metric": "tokens_per_s", "value": {tokens_per_s:.2}, "better": "higher"}}"#
        );
    }
}
