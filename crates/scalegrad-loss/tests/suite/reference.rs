//! The closed forms against straightforward masked implementations (tests/common), on
//! random shapes, vocabularies, gammas, repeated tokens and padding anywhere in a row:
//! the loss values and the gradients with respect to the logits must agree, in f32 (the
//! dtype training uses). `reference_f64.rs` repeats the comparison in f64 with tight
//! tolerances, for unlikelihood too, whose `1 - p` term is ill-conditioned in f32.

use crate::common;

use burn::tensor::{Bool, Device, Tensor, TensorData};
use common::{Batch, batches, masked_scalegrad, max_abs_diff, value_and_grad, values};
use proptest::prelude::*;
use scalegrad_loss::{ScaleGradConfig, novel_mask};

/// Absolute tolerance for f32 loss values and gradients of order one.
const TOLERANCE: f32 = 2e-5;

fn device() -> Device {
    Device::flex().autodiff()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn scalegrad_closed_form_matches_masked_reference(
        (batch, ignore) in batches(),
        gamma in prop::sample::select(vec![0.05f64, 0.2, 0.5, 0.8, 1.0]),
    ) {
        let device = device();
        let loss = ScaleGradConfig::new(gamma).with_ignore_index(ignore).init();
        let targets = batch.targets(&device);
        let (ours, ours_grad) =
            value_and_grad(&batch, &device, |logits| loss.forward(logits, targets.clone()));
        let (reference, reference_grad) = value_and_grad(&batch, &device, |logits| {
            masked_scalegrad(logits, &batch, gamma, ignore)
        });
        prop_assert!((ours - reference).abs() <= TOLERANCE * reference.abs().max(1.0),
            "loss: closed form={ours}, masked reference={reference}");
        let diff = max_abs_diff(&ours_grad, &reference_grad);
        prop_assert!(diff <= TOLERANCE, "max |d loss/d logits| difference {diff}");
    }

    #[test]
    fn novel_mask_matches_loop_reference((batch, ignore) in batches()) {
        let device = Device::flex();
        let [b, t, v] = batch.shape;
        let mask: Tensor<3, Bool> = novel_mask(batch.targets(&device), v, ignore);
        let ours = values(mask.float());
        let expected: Vec<f32> =
            common::context_indicator(&batch, ignore).iter().map(|c| 1.0 - c).collect();
        prop_assert_eq!(ours, expected, "shape [{}, {}, {}]", b, t, v);
    }
}

/// Each distinct context token counts once, however often it repeats: a row that
/// repeats token 1 five times has the same loss at the last position as a row where it
/// appears once, all else equal.
#[test]
fn repeated_context_tokens_count_once() {
    let device = Device::flex();
    let v = 5;
    let logits: Vec<f32> = (0..6 * v).map(|i| ((i * 7 % 11) as f32) * 0.3).collect();
    let logits = Tensor::<3>::from_data(TensorData::new(logits, [1, 6, v]), &device);
    let loss = ScaleGradConfig::new(0.3).init();
    let repeated = Tensor::from_data(TensorData::new(vec![1i64, 1, 1, 1, 1, 2], [1, 6]), &device);
    let once = Tensor::from_data(TensorData::new(vec![3i64, 4, 0, 0, 1, 2], [1, 6]), &device);
    let last = |targets| values(loss.forward_detailed(logits.clone(), targets).token_loss)[5];
    // Context {1} versus context {3, 4, 0, 1}: different sets, so compare each against the
    // host reference rather than each other.
    let batch = |targets: Vec<i64>| Batch {
        logits: values(logits.clone()),
        targets,
        shape: [1, 6, v],
    };
    for (targets, tensor) in [
        (vec![1i64, 1, 1, 1, 1, 2], repeated),
        (vec![3i64, 4, 0, 0, 1, 2], once),
    ] {
        let b = batch(targets.clone());
        let sets = common::context_sets(&b.targets, b.shape, None);
        let probs = values(burn::tensor::activation::softmax(logits.clone(), 2));
        let row = &probs[5 * v..6 * v];
        let mass: f32 = sets[0][5].iter().map(|&c| row[c as usize]).sum();
        let expected = -row[2].ln() + (0.3 + 0.7 * mass).ln() - 0.3f32.ln();
        let ours = last(tensor);
        assert!(
            (ours - expected).abs() < 1e-5,
            "targets {targets:?}: closed form={ours}, hand formula={expected}"
        );
    }
}
