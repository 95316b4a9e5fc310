//! Token-level unlikelihood training (Welleck et al., ICLR 2020, eq. 4).

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::LossConfigError;
use crate::context::{Context, check_shapes, gathered_log_probs};
use crate::output::LossOutput;
use crate::scalegrad::diagonal;

/// The floor Welleck et al.'s code puts under `1 - p_c` before taking its log.
pub const ONE_MINUS_PROB_FLOOR: f64 = 1e-5;

/// Configuration of [`UnlikelihoodLoss`].
///
/// Deserialises from `{ alpha = 1.0, ignore_index = -100 }`; unknown keys are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlikelihoodConfig {
    /// Weight of the unlikelihood term; `0` is plain cross-entropy.
    pub alpha: f64,
    /// Target value that marks a position as not scored and not a context member.
    #[serde(default)]
    pub ignore_index: Option<i64>,
}

impl UnlikelihoodConfig {
    /// A configuration with the given alpha that scores every position.
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha,
            ignore_index: None,
        }
    }

    /// Sets the ignore index.
    pub fn with_ignore_index(mut self, ignore_index: Option<i64>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Checks that alpha is finite and non-negative.
    pub fn validate(&self) -> Result<(), LossConfigError> {
        if self.alpha.is_finite() && self.alpha >= 0.0 {
            Ok(())
        } else {
            Err(LossConfigError::Alpha(self.alpha))
        }
    }

    /// Builds the loss, or says why the configuration is invalid.
    pub fn try_init(&self) -> Result<UnlikelihoodLoss, LossConfigError> {
        self.validate()?;
        Ok(UnlikelihoodLoss {
            alpha: self.alpha,
            ignore_index: self.ignore_index,
        })
    }

    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When [`validate`](Self::validate) fails; call [`try_init`](Self::try_init) to get
    /// the error instead.
    pub fn init(&self) -> UnlikelihoodLoss {
        self.try_init().unwrap_or_else(|err| panic!("{err}"))
    }
}

/// Token-level unlikelihood loss:
///
/// ```text
/// loss_t = CE_t - α Σ_{c ∈ C_t, c ≠ y_t} log(max(1 - p_c, 1e-5))
/// ```
///
/// with the same context sets `C_t` as [`ScaleGradLoss`](crate::ScaleGradLoss): the
/// distinct scored targets before `t` in the same row.
#[derive(Clone, Debug)]
pub struct UnlikelihoodLoss {
    alpha: f64,
    ignore_index: Option<i64>,
}

impl UnlikelihoodLoss {
    /// The configured alpha.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Mean loss over the scored targets, shape `[1]`.
    ///
    /// # Panics
    ///
    /// When the shapes of `logits` (`[B, T, V]`) and `targets` (`[B, T]`) disagree.
    pub fn forward(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
        self.forward_detailed(logits, targets).loss
    }

    /// The loss with its per-position terms, scored mask, novelty mask and count.
    ///
    /// # Panics
    ///
    /// When the shapes disagree; the message names both shapes.
    pub fn forward_detailed(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> LossOutput {
        check_shapes("UnlikelihoodLoss", &logits, &targets);
        let [batch, len, _] = logits.dims();
        let context = Context::new(targets, self.ignore_index);

        let log_probs = gathered_log_probs(logits, context.gather_indices());
        let nll = diagonal(log_probs.clone()).neg();
        // Negative candidates: members of C_t other than the target itself.
        let candidates = context
            .members
            .clone()
            .bool_and(context.same_token.clone().bool_not());
        let penalty = (log_probs.exp().neg() + 1.0)
            .clamp_min(ONE_MINUS_PROB_FLOOR)
            .log()
            .neg()
            .mask_fill(candidates.bool_not(), 0.0)
            .sum_dim(2)
            .reshape([batch, len]);

        let token_loss = nll.clone() + penalty * self.alpha;
        LossOutput::new(token_loss, nll, context.scored, context.novel)
    }
}
