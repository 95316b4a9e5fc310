//! LayerNorm with its scale and shift prepared as `[1, n]` rows, and the reshape pair that
//! ends a fused kernel: the pieces of the forward passes arranged for burn's kernel
//! fusion ([`Execution::Fused`](crate::Execution::Fused)).
//!
//! burn's `LayerNorm` reshapes its `[n]` scale and shift to a broadcastable row on every
//! call; that reshape, landing in the stream between the fused normalisation kernel and
//! the addition that uses its result, ends the kernel early, so the shift's addition ran
//! as a kernel of its own. A forward pass that makes the rows at its start, and writes
//! its normalisations out with them ([`NormRows::forward`]: the operations of burn's
//! `layer_norm`, in its order, so the results are the same), has no reshape there. Both
//! model crates take this route under `Fused`; libtorch runs burn's LayerNorm as one
//! kernel, where the written-out one is several.

use burn::nn::LayerNorm;
use burn::tensor::Tensor;

/// A LayerNorm's scale and shift as `[1, n]` rows, and its epsilon.
#[derive(Debug)]
pub struct NormRows {
    gamma: Tensor<2>,
    beta: Option<Tensor<2>>,
    epsilon: f64,
}

impl NormRows {
    /// The rows of `norm`, whose epsilon is `epsilon` (burn's `LayerNorm` keeps its own
    /// private; the model's config has it).
    pub fn new(norm: &LayerNorm, epsilon: f64) -> Self {
        Self {
            gamma: norm.gamma.val().unsqueeze::<2>(),
            beta: norm.beta.as_ref().map(|b| b.val().unsqueeze::<2>()),
            epsilon,
        }
    }

    /// LayerNorm over the last dimension of `x` (`[rows, n]`): the operations of burn's
    /// `layer_norm` (`burn_backend`'s default, which burn's CubeCL backends use; libtorch
    /// has its own), in its order, with the prepared rows in place of its reshapes.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let centered = x.clone() - x.mean_dim(1);
        let variance = (centered.clone() * centered.clone()).mean_dim(1);
        let scaled = centered / (variance + self.epsilon).sqrt() * self.gamma.clone();
        match &self.beta {
            Some(beta) => scaled + beta.clone(),
            None => scaled,
        }
    }
}

/// `norm` of `x` (`[rows, n]`): with its prepared `rows` where there are some, else
/// burn's `LayerNorm`.
pub fn layer_norm(norm: &LayerNorm, rows: Option<&NormRows>, x: Tensor<2>) -> Tensor<2> {
    match rows {
        Some(rows) => rows.forward(x),
        None => norm.forward(x),
    }
}

/// `x` as it is, but seen through two reshapes, which end the fused kernel that computes
/// it: the element-wise work that follows (a residual addition) then starts the next
/// kernel, a LayerNorm's, instead of joining this one and leaving the LayerNorm's first
/// reduction in a kernel of its own (3 launches become 2; on a GPU nothing is copied,
/// `x` being contiguous).
pub fn end_fused_kernel(x: Tensor<2>) -> Tensor<2> {
    let [rows, width] = x.dims();
    x.reshape([1, rows, width]).reshape([rows, width])
}

#[cfg(test)]
mod tests {
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn max_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// The rows-route LayerNorm computes what burn's layer computes, with trained-looking
    /// (non-trivial) scale and shift, and the kernel-ending reshapes leave the values as
    /// they are.
    #[test]
    fn norm_rows_compute_what_the_layer_computes() {
        let device = Device::flex();
        let x = Tensor::<2>::random([5, 24], Distribution::Normal(0.5, 0.3), &device);
        // An epsilon far from burn's default, so that a lost epsilon shows.
        let mut norm = LayerNormConfig::new(24).with_epsilon(0.1).init(&device);
        norm.gamma = norm
            .gamma
            .map(|g| g + Tensor::random([24], Distribution::Default, &device));
        norm.beta = norm
            .beta
            .map(|b| b.map(|b| b + Tensor::random([24], Distribution::Default, &device)));
        let rows = NormRows::new(&norm, 0.1);
        assert!(max_diff(rows.forward(x.clone()), norm.forward(x.clone())) < 1e-5);
        assert!(
            max_diff(
                layer_norm(&norm, Some(&rows), x.clone()),
                layer_norm(&norm, None, x.clone())
            ) < 1e-5
        );
        assert_eq!(
            end_fused_kernel(x.clone()).into_data(),
            x.into_data(),
            "the reshapes change nothing"
        );
    }
}
