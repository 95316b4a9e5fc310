//! What a loss returns besides the scalar to differentiate.

use burn::tensor::{Bool, Tensor};

/// The full result of a loss evaluation on a `[B, T, V]` batch.
///
/// `loss` is what a training step calls `backward()` on. The per-position tensors let
/// callers compute perplexity and other metrics from the same forward pass without a
/// second softmax; reading them does not force a device synchronisation until the caller
/// asks for the data.
#[derive(Clone, Debug)]
pub struct LossOutput {
    /// Mean of `token_loss` over scored positions, shape `[1]`. It is `0` (not NaN) when
    /// no position of the batch is scored.
    pub loss: Tensor<1>,
    /// `[B, T]` training loss of each position; `0` at ignored positions.
    pub token_loss: Tensor<2>,
    /// `[B, T]` negative log-likelihood of each target under the model's *unscaled*
    /// distribution (the cross-entropy term); `0` at ignored positions. Perplexity is
    /// `exp(sum(nll) / count)` whatever the training loss is.
    pub nll: Tensor<2>,
    /// `[B, T]` true at scored (non-ignored) positions.
    pub scored: Tensor<2, Bool>,
    /// `[B, T]` true where the target is a novel token: not among the earlier scored
    /// targets of its row. Only meaningful at scored positions.
    pub novel: Tensor<2, Bool>,
    /// Number of scored positions, shape `[1]`, as a float so it divides directly.
    pub count: Tensor<1>,
}

impl LossOutput {
    /// Assembles an output from per-position losses, masking ignored positions to zero.
    pub(crate) fn new(
        token_loss: Tensor<2>,
        nll: Tensor<2>,
        scored: Tensor<2, Bool>,
        novel: Tensor<2, Bool>,
    ) -> Self {
        let ignored = scored.clone().bool_not();
        let token_loss = token_loss.mask_fill(ignored.clone(), 0.0);
        let nll = nll.mask_fill(ignored, 0.0);
        let count = scored.clone().float().sum();
        let loss = token_loss.clone().sum() / count.clone().clamp_min(1.0);
        Self {
            loss,
            token_loss,
            nll,
            scored,
            novel,
            count,
        }
    }
}
