//! Reference implementations written the straightforward way, for cross-checking the
//! closed forms of the crate: they build the `[B, T, V]` context masks on the host with
//! plain loops, renormalise full distributions, and take logs of probabilities.

#![allow(dead_code)]

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use proptest::prelude::*;

/// A batch of logits and targets kept on the host as well.
#[derive(Clone, Debug)]
pub struct Batch {
    pub logits: Vec<f32>,
    pub targets: Vec<i64>,
    pub shape: [usize; 3],
}

impl Batch {
    pub fn logits(&self, device: &Device) -> Tensor<3> {
        Tensor::from_data(TensorData::new(self.logits.clone(), self.shape), device)
    }

    pub fn targets(&self, device: &Device) -> Tensor<2, Int> {
        let [b, t, _] = self.shape;
        Tensor::from_data(TensorData::new(self.targets.clone(), [b, t]), device)
    }
}

/// The context set of every position, computed with loops: `sets[b][t]` holds the
/// distinct scored targets at positions `< t`.
pub fn context_sets(targets: &[i64], shape: [usize; 3], ignore: Option<i64>) -> Vec<Vec<Vec<i64>>> {
    let [batch, len, _] = shape;
    (0..batch)
        .map(|b| {
            let row = &targets[b * len..(b + 1) * len];
            let mut seen: Vec<i64> = Vec::new();
            let mut sets = Vec::with_capacity(len);
            for &y in row {
                sets.push(seen.clone());
                if Some(y) != ignore && !seen.contains(&y) {
                    seen.push(y);
                }
            }
            sets
        })
        .collect()
}

/// Host-built `[B, T, V]` indicator of context membership (1.0 for tokens in `C_t`).
pub fn context_indicator(batch: &Batch, ignore: Option<i64>) -> Vec<f32> {
    let [b_n, t_n, v_n] = batch.shape;
    let sets = context_sets(&batch.targets, batch.shape, ignore);
    let mut out = vec![0.0f32; b_n * t_n * v_n];
    for b in 0..b_n {
        for t in 0..t_n {
            for &c in &sets[b][t] {
                out[(b * t_n + t) * v_n + c as usize] = 1.0;
            }
        }
    }
    out
}

/// Scored-position indicator `[B, T]` and safe (non-negative) targets.
pub fn scored_and_safe(batch: &Batch, ignore: Option<i64>) -> (Vec<f32>, Vec<i64>) {
    let scored = batch
        .targets
        .iter()
        .map(|&y| if Some(y) == ignore { 0.0 } else { 1.0 })
        .collect();
    let safe = batch
        .targets
        .iter()
        .map(|&y| if Some(y) == ignore { 0 } else { y })
        .collect();
    (scored, safe)
}

/// ScaleGrad the way the paper describes it: scale the novel tokens' probabilities by
/// gamma, renormalise over the whole vocabulary, take -log of the target's entry, and
/// average over scored positions.
pub fn masked_scalegrad(
    logits: Tensor<3>,
    batch: &Batch,
    gamma: f64,
    ignore: Option<i64>,
) -> Tensor<1> {
    let device = logits.device();
    let [b_n, t_n, _] = batch.shape;
    let in_context = context_indicator(batch, ignore);
    // Built in f64 so that an f64 device sees gamma exactly; f32 devices convert.
    let weights: Vec<f64> = in_context
        .iter()
        .map(|&c| if c > 0.0 { 1.0 } else { gamma })
        .collect();
    let weights = Tensor::<3>::from_data(TensorData::new(weights, batch.shape), &device);
    let scaled = softmax(logits, 2) * weights;
    let renormalised = scaled.clone() / scaled.sum_dim(2);
    target_mean_nll(renormalised.log(), batch, ignore, b_n, t_n)
}

/// Token-level unlikelihood as Welleck et al.'s code computes it: a `[B, T, V]` matrix of
/// negative candidates (context tokens other than the target), `-log(clamp(1 - p, 1e-5))`
/// summed over them, plus cross-entropy, averaged over scored positions.
pub fn masked_unlikelihood(
    logits: Tensor<3>,
    batch: &Batch,
    alpha: f64,
    ignore: Option<i64>,
) -> Tensor<1> {
    let device = logits.device();
    let [b_n, t_n, v_n] = batch.shape;
    let mut candidates = context_indicator(batch, ignore);
    for b in 0..b_n {
        for t in 0..t_n {
            let y = batch.targets[b * t_n + t];
            if y >= 0 && (y as usize) < v_n {
                candidates[(b * t_n + t) * v_n + y as usize] = 0.0;
            }
        }
    }
    let candidates = Tensor::<3>::from_data(TensorData::new(candidates, batch.shape), &device);
    let probs = softmax(logits.clone(), 2);
    let penalty = ((probs.neg() + 1.0).clamp_min(1e-5).log().neg() * candidates)
        .sum_dim(2)
        .reshape([b_n, t_n]);
    let log_probs = burn::tensor::activation::log_softmax(logits, 2);
    let (scored, safe) = scored_and_safe(batch, ignore);
    let scored = Tensor::<2>::from_data(TensorData::new(scored, [b_n, t_n]), &device);
    let safe = Tensor::<3, Int>::from_data(TensorData::new(safe, [b_n, t_n, 1]), &device);
    let nll = log_probs.gather(2, safe).reshape([b_n, t_n]).neg();
    let per_token = (nll + penalty * alpha) * scored.clone();
    per_token.sum() / scored.sum().clamp_min(1.0)
}

/// Mean of `-log_probs[b, t, y_t]` over scored positions.
fn target_mean_nll(
    log_probs: Tensor<3>,
    batch: &Batch,
    ignore: Option<i64>,
    b_n: usize,
    t_n: usize,
) -> Tensor<1> {
    let device = log_probs.device();
    let (scored, safe) = scored_and_safe(batch, ignore);
    let scored = Tensor::<2>::from_data(TensorData::new(scored, [b_n, t_n]), &device);
    let safe = Tensor::<3, Int>::from_data(TensorData::new(safe, [b_n, t_n, 1]), &device);
    let nll = log_probs.gather(2, safe).reshape([b_n, t_n]).neg() * scored.clone();
    nll.sum() / scored.sum().clamp_min(1.0)
}

/// Reads a tensor back as `f32` values.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Reads a tensor back as `f64` values.
pub fn values64<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap()
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The loss value and `d loss / d logits` of `f` at `batch`, on an autodiff device.
pub fn value_and_grad(
    batch: &Batch,
    device: &Device,
    f: impl Fn(Tensor<3>) -> Tensor<1>,
) -> (f32, Vec<f32>) {
    let logits = batch.logits(device).require_grad();
    let loss = f(logits.clone());
    let grads = loss.backward();
    let grad = logits.grad(&grads).expect("logits are tracked");
    (values(loss)[0], values(grad))
}

/// Random batches: logits in [-6, 6], targets drawn from a small range so that repeats
/// are common, and some positions set to the ignore index.
pub fn batches() -> impl Strategy<Value = (Batch, Option<i64>)> {
    (1usize..4, 1usize..12, 2usize..24, 0usize..3).prop_flat_map(|(b, t, v, ignore_kind)| {
        let ignore = match ignore_kind {
            0 => None,
            1 => Some(-100),
            _ => Some(0), // A real token id used as padding, as a pad id would be.
        };
        let n = b * t;
        (
            prop::collection::vec(-6.0f32..6.0, n * v),
            prop::collection::vec(0i64..(v as i64).min(6), n),
            prop::collection::vec(prop::bool::weighted(0.2), n),
        )
            .prop_map(move |(logits, mut targets, ignored)| {
                if let Some(ignore) = ignore {
                    for (y, skip) in targets.iter_mut().zip(ignored) {
                        if skip {
                            *y = ignore;
                        }
                    }
                }
                (
                    Batch {
                        logits,
                        targets,
                        shape: [b, t, v],
                    },
                    ignore,
                )
            })
    })
}
