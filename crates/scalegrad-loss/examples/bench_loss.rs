//! The Rust side of `cargo xtask bench loss`: forward + backward time and extra peak
//! memory of each loss on logits of GPT-2's vocabulary size, printed as JSON lines.
//!
//! Cases: `ce` (burn's `CrossEntropyLoss`), `mle` (this crate, gamma = 1), `sg` (closed
//! form, gamma = 0.2), `ul` (unlikelihood, alpha = 1), `sg_masked` (the materialised
//! `[B, T, V]` mask reference, as the authors' code computes it). Memory is reported two
//! ways: `peak_mb`, the rise of the process's peak resident set (comparable with the
//! PyTorch side, which is measured the same way: one forward+backward in a fresh child
//! process, so memory kept by the allocator from earlier cases cannot hide it), and
//! `alloc_peak_mb`, the peak of live heap bytes above the inputs, counted by the global
//! allocator in the main process.
//!
//! Usage: `cargo run --release -p scalegrad-loss --example bench_loss [-- --quick]`.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use peak_alloc::PeakAlloc;
use scalegrad_loss::{ScaleGradConfig, UnlikelihoodConfig, novel_mask};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

const VOCAB: usize = 50257;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        let parse = |k: usize| args[i + k].parse::<usize>().expect("batch and length");
        memory_child(&args[i + 1], parse(2), parse(3));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let shapes: &[[usize; 2]] = if quick {
        &[[1, 128], [4, 128]]
    } else {
        &[[1, 128], [4, 128], [8, 256]]
    };
    let device = Device::flex().autodiff();
    for &[batch, len] in shapes {
        let (logits, targets) = inputs(batch, len, &device);
        let reps = if batch * len >= 2048 { 3 } else { 5 };
        let cases = cases(batch, len, &targets, &device);
        for (name, loss) in &cases {
            let case = format!("{name} {batch}x{len}x{VOCAB}");
            let mut times = Vec::with_capacity(reps);
            let mut peak_alloc = 0.0f64;
            for rep in 0..=reps {
                let input = logits.clone().detach().require_grad();
                ALLOCATOR.reset_peak_usage();
                let alloc_before = ALLOCATOR.current_usage();
                let start = Instant::now();
                let value = loss(input.clone());
                let grads = value.backward();
                let grad = input.grad(&grads).expect("tracked");
                // Force the computation to finish before stopping the clock.
                let _ = grad.slice([0..1, 0..1, 0..1]).into_data();
                let elapsed = start.elapsed().as_secs_f64() * 1e3;
                if rep > 0 {
                    // The first run warms caches and the allocator; it is not counted.
                    times.push(elapsed);
                    peak_alloc =
                        peak_alloc.max((ALLOCATOR.peak_usage() - alloc_before) as f64 / 1048576.0);
                }
            }
            times.sort_by(f64::total_cmp);
            let peak_rss = child_peak(name, batch, len);
            let median = times[times.len() / 2];
            println!(
                r#"{{"case": "{case}", "metric": "ms", "value": {median:.3}, "better": "lower"}}"#
            );
            println!(
                r#"{{"case": "{case}", "metric": "peak_mb", "value": {peak_rss:.1}, "better": "lower"}}"#
            );
            println!(
                r#"{{"case": "{case}", "metric": "alloc_peak_mb", "value": {peak_alloc:.1}, "better": "lower"}}"#
            );
        }
    }
}

type LossFn = Box<dyn Fn(Tensor<3>) -> Tensor<1>>;

/// Logits `N(0, 2²)` on the GPT-2 vocabulary and targets from a small range so that
/// context sets are realistic (about half of each window repeats an earlier token).
fn inputs(batch: usize, len: usize, device: &Device) -> (Tensor<3>, Tensor<2, Int>) {
    device.seed(0);
    let logits = Tensor::<3>::random(
        [batch, len, VOCAB],
        burn::tensor::Distribution::Normal(0.0, 2.0),
        device,
    );
    let targets: Vec<i64> = (0..batch * len)
        .map(|i| ((i * 7919 + (i / 3) * 104729) % 400) as i64)
        .collect();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [batch, len]), device);
    (logits, targets)
}

fn cases(
    batch: usize,
    len: usize,
    targets: &Tensor<2, Int>,
    device: &Device,
) -> Vec<(&'static str, LossFn)> {
    vec![
        ("ce", {
            let ce = CrossEntropyLossConfig::new().init(device);
            let targets = targets.clone();
            Box::new(move |l: Tensor<3>| {
                ce.forward(
                    l.reshape([batch * len, VOCAB]),
                    targets.clone().reshape([batch * len]),
                )
            })
        }),
        ("mle", {
            let loss = ScaleGradConfig::new(1.0).init();
            let targets = targets.clone();
            Box::new(move |l| loss.forward(l, targets.clone()))
        }),
        ("sg", {
            let loss = ScaleGradConfig::new(0.2).init();
            let targets = targets.clone();
            Box::new(move |l| loss.forward(l, targets.clone()))
        }),
        ("ul", {
            let loss = UnlikelihoodConfig::new(1.0).init();
            let targets = targets.clone();
            Box::new(move |l| loss.forward(l, targets.clone()))
        }),
        ("sg_masked", {
            let targets = targets.clone();
            Box::new(move |l| masked_scalegrad(l, targets.clone(), 0.2))
        }),
    ]
}

/// Peak RSS rise of one forward+backward of `name`, measured in a fresh process.
fn child_peak(name: &str, batch: usize, len: usize) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .args(["--memory", name, &batch.to_string(), &len.to_string()])
        .output()
        .expect("spawn the memory child");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

fn memory_child(name: &str, batch: usize, len: usize) {
    let device = Device::flex().autodiff();
    let (logits, targets) = inputs(batch, len, &device);
    let cases = cases(batch, len, &targets, &device);
    let loss = &cases
        .iter()
        .find(|(n, _)| *n == name)
        .expect("known case")
        .1;
    let input = logits.detach().require_grad();
    let before = reset_peak_rss();
    let grads = loss(input.clone()).backward();
    let _ = input
        .grad(&grads)
        .expect("tracked")
        .slice([0..1, 0..1, 0..1])
        .into_data();
    println!("{}", status_mb("VmHWM:") - before);
}

/// ScaleGrad the way the authors' code computes it: a `[B, T, V]` novelty mask, scaled
/// and renormalised probabilities, then the log of the target's entry.
fn masked_scalegrad(logits: Tensor<3>, targets: Tensor<2, Int>, gamma: f64) -> Tensor<1> {
    let [batch, len, vocab] = logits.dims();
    let novel = novel_mask(targets.clone(), vocab, None).float();
    let weights = novel * (gamma - 1.0) + 1.0;
    let scaled = softmax(logits, 2) * weights;
    let renormalised = scaled.clone() / scaled.sum_dim(2);
    let index = targets.reshape([batch, len, 1]);
    renormalised.gather(2, index).log().neg().mean()
}

/// Resets the kernel's peak-RSS counter and returns the current RSS in MB.
fn reset_peak_rss() -> f64 {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_mb("VmRSS:")
}

fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
