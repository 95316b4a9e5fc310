//! `cargo bench -p scalegrad-loss`: forward + backward time of cross-entropy, ScaleGrad
//! (closed form) and the masked `[B, T, V]` reference on GPT-2-sized logits, on flex.
//!
//! Peak memory and the side-by-side comparison with PyTorch come from
//! `cargo xtask bench loss` (examples/bench_loss.rs), which measures one process per
//! configuration; criterion's repeated sampling is for time only.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scalegrad_loss::{ScaleGradConfig, novel_mask};

const VOCAB: usize = 50257;

fn masked_scalegrad(logits: Tensor<3>, targets: Tensor<2, Int>, gamma: f64) -> Tensor<1> {
    let [batch, len, vocab] = logits.dims();
    let novel = novel_mask(targets.clone(), vocab, None).float();
    let scaled = softmax(logits, 2) * (novel * (gamma - 1.0) + 1.0);
    let renormalised = scaled.clone() / scaled.sum_dim(2);
    renormalised
        .gather(2, targets.reshape([batch, len, 1]))
        .log()
        .neg()
        .mean()
}

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut group = c.benchmark_group("loss_fwd_bwd");
    group.sample_size(10);
    for [batch, len] in [[1usize, 128usize], [4, 128], [8, 256]] {
        let logits =
            Tensor::<3>::random([batch, len, VOCAB], Distribution::Normal(0.0, 2.0), &device);
        let ids: Vec<i64> = (0..batch * len)
            .map(|i| ((i * 7919) % 400) as i64)
            .collect();
        let targets = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
        let shape = format!("{batch}x{len}x{VOCAB}");
        let run = |f: &dyn Fn(Tensor<3>) -> Tensor<1>| {
            let input = logits.clone().detach().require_grad();
            let grads = f(input.clone()).backward();
            input
                .grad(&grads)
                .expect("tracked")
                .slice([0..1, 0..1, 0..1])
                .into_data()
        };
        let ce = ScaleGradConfig::new(1.0).init();
        let sg = ScaleGradConfig::new(0.2).init();
        group.bench_function(BenchmarkId::new("cross_entropy", &shape), |b| {
            b.iter(|| run(&|l| ce.forward(l, targets.clone())))
        });
        group.bench_function(BenchmarkId::new("scalegrad", &shape), |b| {
            b.iter(|| run(&|l| sg.forward(l, targets.clone())))
        });
        if batch * len <= 512 {
            group.bench_function(BenchmarkId::new("scalegrad_masked", &shape), |b| {
                b.iter(|| run(&|l| masked_scalegrad(l, targets.clone(), 0.2)))
            });
        }
    }
    group.finish();
}

mod harness {
    //! `criterion_group!` generates an undocumented `pub fn benches`.
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, bench);
}
criterion_main!(harness::benches);
