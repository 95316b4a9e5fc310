//! Properties checked against hand-worked values and against burn's own cross-entropy.

use crate::common;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{Batch, values};
use scalegrad_loss::{LossConfigError, ObjectiveConfig, ScaleGradConfig, UnlikelihoodConfig};

fn ln(x: f32) -> f32 {
    x.ln()
}

/// The hand-worked batch of the crate docs: vocabulary of 4, targets `[0, 1, 0]`, and
/// logits chosen as logs of small integers so every probability is a simple fraction.
fn hand_batch() -> Batch {
    let rows: [[f32; 4]; 3] = [
        [1.0, 1.0, 1.0, 1.0],
        [2.0, 1.0, 1.0, 4.0],
        [1.0, 2.0, 3.0, 2.0],
    ];
    Batch {
        logits: rows.iter().flatten().map(|&w| w.ln()).collect(),
        targets: vec![0, 1, 0],
        shape: [1, 3, 4],
    }
}

/// With gamma = 0.5 on the hand batch:
/// - t = 0: C = {} so every token is novel and scaling changes nothing: p̃ = (1/4, 1/4, 1/4, 1/4).
/// - t = 1: C = {0}, p = (2, 1, 1, 4)/8, weights (1, ½, ½, ½): p̃ = (2/5, 1/10, 1/10, 2/5);
///   the target 1 is novel, loss ln 10 (MLE: ln 8).
/// - t = 2: C = {0, 1}, p = (1, 2, 3, 2)/8, weights (1, 1, ½, ½): p̃ = (2/11, 4/11, 3/11, 2/11);
///   the target 0 is in the context, loss ln(11/2) (MLE: ln 8).
///
/// The gradient of the mean loss is (p̃ - onehot(y)) / 3 at each position, the paper's
/// eq. 6: for the novel target at t = 1 the push up on the target (9/10 vs MLE's 7/8)
/// and the push down on the context token 0 (2/5 vs MLE's 1/4) both grow.
#[test]
fn gradient_is_rescaled_distribution_minus_target() {
    let device = Device::flex().autodiff();
    let batch = hand_batch();
    let loss = ScaleGradConfig::new(0.5).init();
    let targets = batch.targets(&device);
    let (value, grad) =
        common::value_and_grad(&batch, &device, |l| loss.forward(l, targets.clone()));

    let expected_loss = (ln(4.0) + ln(10.0) + ln(5.5)) / 3.0;
    assert!(
        (value - expected_loss).abs() < 1e-6,
        "loss={value}, hand={expected_loss}"
    );

    let p_tilde: [[f32; 4]; 3] = [
        [0.25, 0.25, 0.25, 0.25],
        [0.4, 0.1, 0.1, 0.4],
        [2.0 / 11.0, 4.0 / 11.0, 3.0 / 11.0, 2.0 / 11.0],
    ];
    for (t, row) in p_tilde.iter().enumerate() {
        for (i, &p) in row.iter().enumerate() {
            let target = (batch.targets[t] == i as i64) as u8 as f32;
            let expected = (p - target) / 3.0;
            let ours = grad[t * 4 + i];
            assert!(
                (ours - expected).abs() < 1e-6,
                "t={t} i={i}: grad={ours}, hand={expected}"
            );
        }
    }

    // The MLE gradient at t = 1 for comparison: (p - onehot) / 3 with p = (2, 1, 1, 4)/8.
    let mle = ScaleGradConfig::new(1.0).init();
    let (_, mle_grad) =
        common::value_and_grad(&batch, &device, |l| mle.forward(l, targets.clone()));
    assert!(
        grad[4 + 1].abs() > mle_grad[4 + 1].abs(),
        "push up on the novel target grows"
    );
    assert!(
        grad[4] > mle_grad[4],
        "push down on the context token grows"
    );
}

/// The per-token terms of the hand batch: token losses, the unscaled NLL (what
/// perplexity uses), and which targets were novel.
#[test]
fn detailed_output_has_per_token_terms() {
    let device = Device::flex();
    let batch = hand_batch();
    let out = ScaleGradConfig::new(0.5)
        .init()
        .forward_detailed(batch.logits(&device), batch.targets(&device));
    let token_loss = values(out.token_loss);
    let expected = [ln(4.0), ln(10.0), ln(5.5)];
    for (t, (&ours, &hand)) in token_loss.iter().zip(&expected).enumerate() {
        assert!(
            (ours - hand).abs() < 1e-6,
            "t={t}: token loss={ours}, hand={hand}"
        );
    }
    let nll = values(out.nll);
    let expected_nll = [ln(4.0), ln(8.0), ln(8.0)];
    for (t, (&ours, &hand)) in nll.iter().zip(&expected_nll).enumerate() {
        assert!((ours - hand).abs() < 1e-6, "t={t}: nll={ours}, hand={hand}");
    }
    let novel = out.novel.into_data().iter::<bool>().collect::<Vec<_>>();
    assert_eq!(novel, vec![true, true, false]);
    assert_eq!(values(out.count), vec![3.0]);
}

/// gamma = 1 is exactly cross-entropy: the same value as burn's `CrossEntropyLoss` with
/// the pad id as its pad token, on a batch where the pad id also appears in the middle
/// of a row.
#[test]
fn gamma_one_equals_burn_cross_entropy() {
    let device = Device::flex();
    let [b, t, v] = [3, 7, 11];
    let logits: Vec<f32> = (0..b * t * v)
        .map(|i| ((i * 29 % 17) as f32 - 8.0) * 0.4)
        .collect();
    let targets: Vec<i64> = (0..b * t).map(|i| (i * 5 % 11) as i64).collect();
    let pad = 0i64;
    let logits3 = Tensor::<3>::from_data(TensorData::new(logits, [b, t, v]), &device);
    let targets2 = Tensor::<2, Int>::from_data(TensorData::new(targets, [b, t]), &device);

    let ours = ScaleGradConfig::new(1.0)
        .with_ignore_index(Some(pad))
        .init()
        .forward(logits3.clone(), targets2.clone());
    let burn_ce = CrossEntropyLossConfig::new()
        .with_pad_tokens(Some(vec![pad as usize]))
        .init(&device)
        .forward(logits3.reshape([b * t, v]), targets2.reshape([b * t]));
    let (ours, burn_ce) = (values(ours)[0], values(burn_ce)[0]);
    assert!(
        (ours - burn_ce).abs() < 1e-5,
        "scalegrad(1)={ours}, burn CE={burn_ce}"
    );
}

/// A batch whose every target is ignored has loss 0, not NaN, so one all-padding batch
/// cannot poison a training run.
#[test]
fn fully_ignored_batch_has_zero_loss() {
    let device = Device::flex();
    let logits = Tensor::<3>::ones([2, 3, 5], &device);
    let targets = Tensor::<2, Int>::full([2, 3], -100, &device);
    for gamma in [0.2, 1.0] {
        let out = ScaleGradConfig::new(gamma)
            .with_ignore_index(Some(-100))
            .init()
            .forward_detailed(logits.clone(), targets.clone());
        assert_eq!(values(out.loss), vec![0.0], "gamma={gamma}");
        assert_eq!(values(out.count), vec![0.0]);
    }
}

#[test]
fn invalid_gammas_are_config_errors() {
    for gamma in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let err = ScaleGradConfig::new(gamma).validate().unwrap_err();
        assert!(matches!(err, LossConfigError::Gamma(_)), "gamma={gamma}");
        assert!(err.to_string().contains("(0, 1]"), "message: {err}");
        assert!(ScaleGradConfig::new(gamma).try_init().is_err());
    }
    for gamma in [1e-6, 0.2, 1.0] {
        assert!(
            ScaleGradConfig::new(gamma).validate().is_ok(),
            "gamma={gamma}"
        );
    }
    for alpha in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            UnlikelihoodConfig::new(alpha).validate(),
            Err(LossConfigError::Alpha(_))
        ));
    }
}

#[test]
#[should_panic(expected = "ScaleGrad gamma must be in (0, 1]")]
fn init_panics_on_invalid_gamma_with_the_validation_message() {
    ScaleGradConfig::new(1.5).init();
}

#[test]
#[should_panic(
    expected = "logits of shape [2, 3, 5] (batch, positions, vocabulary) do not match \
                           targets of shape [2, 4] (batch, positions)"
)]
fn shape_mismatch_panics_naming_both_shapes() {
    let device = Device::flex();
    ScaleGradConfig::new(0.5).init().forward(
        Tensor::<3>::zeros([2, 3, 5], &device),
        Tensor::<2, Int>::zeros([2, 4], &device),
    );
}

/// The objective as written in an experiment config file.
#[test]
fn objective_configs_parse_and_reject_unknown_keys() {
    let parse = |s: &str| serde_json::from_str::<ObjectiveConfig>(s);
    assert_eq!(parse(r#"{"kind": "mle"}"#).unwrap(), ObjectiveConfig::Mle);
    assert_eq!(
        parse(r#"{"kind": "scalegrad", "gamma": 0.2}"#).unwrap(),
        ObjectiveConfig::ScaleGrad { gamma: 0.2 }
    );
    assert_eq!(
        parse(r#"{"kind": "unlikelihood", "alpha": 1.0}"#).unwrap(),
        ObjectiveConfig::Unlikelihood { alpha: 1.0 }
    );
    assert!(
        parse(r#"{"kind": "scalegrad", "gama": 0.2}"#).is_err(),
        "typo in a key"
    );
    assert!(parse(r#"{"kind": "focal"}"#).is_err(), "unknown objective");
    let err = ObjectiveConfig::ScaleGrad { gamma: 2.0 }
        .validate()
        .unwrap_err();
    assert_eq!(err, LossConfigError::Gamma(2.0));
    assert_eq!(ObjectiveConfig::ScaleGrad { gamma: 0.2 }.label(), "sg0.2");
}
