//! Exactness checks in f64, in their own test binary because they switch the flex
//! device's default float type for the whole process:
//!
//! - the closed forms equal the masked reference implementations to 1e-9 (loss and
//!   gradient), for ScaleGrad and unlikelihood;
//! - autodiff gradients equal central finite differences.

mod common;

use std::sync::Once;

use burn::tensor::{Device, DeviceConfig, FloatDType, Tensor, TensorData};
use common::{Batch, batches, masked_scalegrad, masked_unlikelihood};
use proptest::prelude::*;
use scalegrad_loss::{ScaleGradConfig, UnlikelihoodConfig};

/// Agreement required between two exact formulas evaluated in f64.
const EXACT: f64 = 1e-9;

/// A flex device whose float tensors are f64.
fn device() -> Device {
    static CONFIGURE: Once = Once::new();
    CONFIGURE.call_once(|| {
        let mut device = Device::flex();
        device
            .configure(DeviceConfig::default().float_dtype(FloatDType::F64))
            .expect("flex supports f64");
    });
    Device::flex().autodiff()
}

fn logits64(batch: &Batch, device: &Device) -> Tensor<3> {
    let data: Vec<f64> = batch.logits.iter().map(|&x| x as f64).collect();
    Tensor::from_data(TensorData::new(data, batch.shape), device)
}

fn value_and_grad64(
    batch: &Batch,
    device: &Device,
    f: impl Fn(Tensor<3>) -> Tensor<1>,
) -> (f64, Vec<f64>) {
    let logits = logits64(batch, device).require_grad();
    let loss = f(logits.clone());
    let grads = loss.backward();
    let grad = logits.grad(&grads).expect("logits are tracked");
    (common::values64(loss)[0], common::values64(grad))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn device_really_computes_in_f64() {
    let device = device();
    let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f64 + 1e-12], [1]), &device);
    let y = common::values64(x - 1.0)[0];
    assert!((y - 1e-12).abs() < 1e-15, "1 + 1e-12 - 1 = {y}: not f64");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scalegrad_equals_masked_reference_in_f64(
        (batch, ignore) in batches(),
        gamma in prop::sample::select(vec![0.01f64, 0.2, 0.5, 0.8, 1.0]),
    ) {
        let device = device();
        let loss = ScaleGradConfig::new(gamma).with_ignore_index(ignore).init();
        let targets = batch.targets(&device);
        let (ours, ours_grad) =
            value_and_grad64(&batch, &device, |l| loss.forward(l, targets.clone()));
        let (reference, reference_grad) =
            value_and_grad64(&batch, &device, |l| masked_scalegrad(l, &batch, gamma, ignore));
        prop_assert!((ours - reference).abs() <= EXACT, "closed={ours}, masked={reference}");
        let diff = max_diff(&ours_grad, &reference_grad);
        prop_assert!(diff <= EXACT, "gradient difference {diff}");
    }

    #[test]
    fn unlikelihood_equals_masked_reference_in_f64(
        (batch, ignore) in batches(),
        alpha in prop::sample::select(vec![0.0f64, 0.5, 1.0, 2.0]),
    ) {
        let device = device();
        let loss = UnlikelihoodConfig::new(alpha).with_ignore_index(ignore).init();
        let targets = batch.targets(&device);
        let (ours, ours_grad) =
            value_and_grad64(&batch, &device, |l| loss.forward(l, targets.clone()));
        let (reference, reference_grad) =
            value_and_grad64(&batch, &device, |l| masked_unlikelihood(l, &batch, alpha, ignore));
        prop_assert!((ours - reference).abs() <= EXACT * reference.abs().max(1.0),
            "ours={ours}, masked={reference}");
        let diff = max_diff(&ours_grad, &reference_grad);
        prop_assert!(diff <= 1e-7, "gradient difference {diff}");
    }
}

/// Central differences with step 1e-6 agree with autodiff to 1e-6 for every logit of a
/// batch with repeats and padding, for ScaleGrad (two gammas) and unlikelihood.
#[test]
fn gradients_match_finite_differences() {
    let device = device();
    let shape = [2, 5, 6];
    let logits: Vec<f32> = (0..60)
        .map(|i| (((i * 37) % 23) as f32 - 11.0) * 0.31)
        .collect();
    let batch = Batch {
        logits,
        targets: vec![1, 2, 1, 3, -100, 4, 4, -100, 0, 4],
        shape,
    };
    let targets = batch.targets(&device);
    type LossFn = Box<dyn Fn(Tensor<3>) -> Tensor<1>>;
    let losses: Vec<(&str, LossFn)> = vec![
        ("scalegrad 0.2", {
            let loss = ScaleGradConfig::new(0.2)
                .with_ignore_index(Some(-100))
                .init();
            let targets = targets.clone();
            Box::new(move |l| loss.forward(l, targets.clone()))
        }),
        ("scalegrad 0.8", {
            let loss = ScaleGradConfig::new(0.8)
                .with_ignore_index(Some(-100))
                .init();
            let targets = targets.clone();
            Box::new(move |l| loss.forward(l, targets.clone()))
        }),
        ("unlikelihood 1.0", {
            let loss = UnlikelihoodConfig::new(1.0)
                .with_ignore_index(Some(-100))
                .init();
            let targets = targets.clone();
            Box::new(move |l| loss.forward(l, targets.clone()))
        }),
    ];
    let base: Vec<f64> = batch.logits.iter().map(|&x| x as f64).collect();
    let plain = Device::flex();
    let eval = |f: &dyn Fn(Tensor<3>) -> Tensor<1>, x: &[f64]| {
        let logits = Tensor::<3>::from_data(TensorData::new(x.to_vec(), shape), &plain);
        common::values64(f(logits))[0]
    };
    for (name, f) in &losses {
        let (_, analytic) = value_and_grad64(&batch, &device, f);
        let step = 1e-6;
        for i in 0..base.len() {
            let mut plus = base.clone();
            plus[i] += step;
            let mut minus = base.clone();
            minus[i] -= step;
            let numeric = (eval(f, &plus) - eval(f, &minus)) / (2.0 * step);
            assert!(
                (numeric - analytic[i]).abs() < 1e-6,
                "{name}: logit {i}: autodiff={}, finite difference={numeric}",
                analytic[i]
            );
        }
    }
}
