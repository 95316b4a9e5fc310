//! ScaleGrad (Lin, Han and Joty, ICML 2021, eq. 3-5).

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::LossConfigError;
use crate::context::{Context, check_shapes, gathered_log_probs};
use crate::output::LossOutput;

/// Configuration of [`ScaleGradLoss`].
///
/// Deserialises from `{ gamma = 0.2, ignore_index = -100 }`; unknown keys are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleGradConfig {
    /// Scale applied to the probability of every novel token before renormalising, in
    /// `(0, 1]`. `1` is plain cross-entropy (MLE).
    pub gamma: f64,
    /// Target value that marks a position as not scored and not a context member
    /// (Hugging Face uses `-100`; a pad id works as well). `None` scores every position.
    #[serde(default)]
    pub ignore_index: Option<i64>,
}

impl ScaleGradConfig {
    /// A configuration with the given gamma that scores every position.
    pub fn new(gamma: f64) -> Self {
        Self {
            gamma,
            ignore_index: None,
        }
    }

    /// Sets the ignore index.
    pub fn with_ignore_index(mut self, ignore_index: Option<i64>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Checks that gamma lies in `(0, 1]` (NaN is rejected).
    pub fn validate(&self) -> Result<(), LossConfigError> {
        if self.gamma > 0.0 && self.gamma <= 1.0 {
            Ok(())
        } else {
            Err(LossConfigError::Gamma(self.gamma))
        }
    }

    /// Builds the loss, or says why the configuration is invalid.
    pub fn try_init(&self) -> Result<ScaleGradLoss, LossConfigError> {
        self.validate()?;
        Ok(ScaleGradLoss {
            gamma: self.gamma,
            ignore_index: self.ignore_index,
        })
    }

    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When [`validate`](Self::validate) fails; call [`try_init`](Self::try_init) to get
    /// the error instead.
    pub fn init(&self) -> ScaleGradLoss {
        self.try_init().unwrap_or_else(|err| panic!("{err}"))
    }
}

/// The ScaleGrad training loss.
///
/// At target position `t` with context set `C_t` (the distinct scored targets before
/// `t` in the same row) and model distribution `p = softmax(logits_t)`, ScaleGrad scales
/// every novel token's probability by `γ` and renormalises (paper eq. 3):
///
/// ```text
/// p̃_i = w_i p_i / Σ_j w_j p_j,   w_i = γ if i ∉ C_t else 1,   loss_t = -log p̃_{y_t}
/// ```
///
/// It is computed in closed form, with `P_t = Σ_{c ∈ C_t} p_c`:
///
/// ```text
/// loss_t = CE_t + log(γ + (1 - γ) P_t) - [y_t ∉ C_t] log γ
/// ```
///
/// which needs only the log-probabilities of the `T` earlier targets at each position
/// (`[B, T, T]`), never a `[B, T, V]` mask.
///
/// A worked example with a three-token vocabulary, uniform `p = (1/3, 1/3, 1/3)`,
/// `C_t = {0}` and `γ = 0.5`: the weights are `(1, 0.5, 0.5)`, the normaliser
/// `1/3 + 1/6 + 1/6 = 2/3`, so `p̃ = (1/2, 1/4, 1/4)`. A novel target (token 1) costs
/// `log 4` instead of MLE's `log 3`, and the gradient on each logit is `p̃_i - [i = y]`.
#[derive(Clone, Debug)]
pub struct ScaleGradLoss {
    gamma: f64,
    ignore_index: Option<i64>,
}

impl ScaleGradLoss {
    /// The configured gamma.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The configured ignore index.
    pub fn ignore_index(&self) -> Option<i64> {
        self.ignore_index
    }

    /// Mean loss over the scored targets, shape `[1]`.
    ///
    /// `logits` is `[B, T, V]` (batch, positions, vocabulary) and `targets` `[B, T]`.
    ///
    /// # Panics
    ///
    /// When the shapes disagree; the message names both shapes.
    pub fn forward(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
        self.forward_detailed(logits, targets).loss
    }

    /// The loss with its per-position terms, scored mask, novelty mask and count.
    ///
    /// # Panics
    ///
    /// When the shapes disagree; the message names both shapes.
    pub fn forward_detailed(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> LossOutput {
        check_shapes("ScaleGradLoss", &logits, &targets);
        let [batch, len, _] = logits.dims();
        let context = Context::new(targets, self.ignore_index);

        if self.gamma == 1.0 {
            // Plain cross-entropy: only the target's own log-probability is needed.
            let index = context.safe_targets.clone().reshape([batch, len, 1]);
            let nll = gathered_log_probs(logits, index)
                .reshape([batch, len])
                .neg();
            return LossOutput::new(nll.clone(), nll, context.scored, context.novel);
        }

        // log p_t(y_s) for every pair (t, s); the diagonal holds the target's own.
        let log_probs = gathered_log_probs(logits, context.gather_indices());
        let nll = diagonal(log_probs.clone()).neg();
        let context_mass = log_probs
            .exp()
            .mask_fill(context.members.clone().bool_not(), 0.0)
            .sum_dim(2)
            .reshape([batch, len]);
        let log_normaliser = (context_mass * (1.0 - self.gamma) + self.gamma).log();
        let novel_bonus = context.novel.clone().float() * (-self.gamma.ln());

        let token_loss = nll.clone() + log_normaliser + novel_bonus;
        LossOutput::new(token_loss, nll, context.scored, context.novel)
    }
}

/// The diagonal `x[b, t, t]` of a `[B, T, T]` tensor, as `[B, T]`, differentiably.
pub(crate) fn diagonal(values: Tensor<3>) -> Tensor<2> {
    let [batch, len, _] = values.dims();
    let off_diagonal = Tensor::<2, Bool>::diag_mask([len, len], 0, &values.device())
        .reshape([1, len, len])
        .expand([batch, len, len]);
    values
        .mask_fill(off_diagonal, 0.0)
        .sum_dim(2)
        .reshape([batch, len])
}
