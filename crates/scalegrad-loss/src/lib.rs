//! Training losses that teach text generators to use novel tokens.
//!
//! This crate implements ScaleGrad (Lin, Han and Joty, "Straight to the Gradient:
//! Learning to Use Novel Tokens for Neural Text Generation", ICML 2021) for burn, beside
//! plain maximum likelihood and token-level unlikelihood training (Welleck et al., ICLR
//! 2020), the baseline the paper compares against.
//!
//! All three take `[B, T, V]` logits and `[B, T]` integer targets and return a mean over
//! the scored targets. The context set of position `t` is the set of distinct, scored
//! targets at positions `< t` of the same row; targets equal to the ignore index are
//! neither scored nor context members. The losses use only tensor operations, so they
//! run on every burn device (CPU, wgpu, CUDA, LibTorch), with or without autodiff, and
//! their extra memory is `O(B * T * T)`: no `[B, T, V]` mask is ever built.
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use scalegrad_loss::ScaleGradConfig;
//!
//! let device = Device::default();
//! let loss = ScaleGradConfig::new(0.2).with_ignore_index(Some(-100)).init();
//! let logits = Tensor::<3>::zeros([2, 8, 100], &device);
//! let targets = Tensor::<2, Int>::zeros([2, 8], &device);
//! let value = loss.forward(logits, targets); // shape [1]
//! ```

mod context;
mod error;
mod output;
mod scalegrad;
mod unlikelihood;

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

pub use error::LossConfigError;
pub use output::LossOutput;
pub use scalegrad::{ScaleGradConfig, ScaleGradLoss};
pub use unlikelihood::{ONE_MINUS_PROB_FLOOR, UnlikelihoodConfig, UnlikelihoodLoss};

/// The training objective of a run, as written in an experiment config:
/// `{ kind = "mle" }`, `{ kind = "scalegrad", gamma = 0.2 }` or
/// `{ kind = "unlikelihood", alpha = 1.0 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ObjectiveConfig {
    /// Maximum likelihood: cross-entropy.
    Mle,
    /// ScaleGrad with the given gamma in `(0, 1]`.
    #[serde(rename = "scalegrad")]
    ScaleGrad {
        /// Scale of novel tokens' probabilities.
        gamma: f64,
    },
    /// Token-level unlikelihood with the given alpha.
    Unlikelihood {
        /// Weight of the unlikelihood term.
        alpha: f64,
    },
}

impl ObjectiveConfig {
    /// Checks the objective's parameter.
    pub fn validate(&self) -> Result<(), LossConfigError> {
        self.init(None).map(|_| ())
    }

    /// A short label for tables and file names: `mle`, `sg0.2`, `ul1`.
    pub fn label(&self) -> String {
        match self {
            Self::Mle => "mle".to_string(),
            Self::ScaleGrad { gamma } => format!("sg{gamma}"),
            Self::Unlikelihood { alpha } => format!("ul{alpha}"),
        }
    }

    /// Builds the objective with the given ignore index.
    pub fn init(&self, ignore_index: Option<i64>) -> Result<Objective, LossConfigError> {
        Ok(match *self {
            Self::Mle => Objective::ScaleGrad(
                ScaleGradConfig::new(1.0)
                    .with_ignore_index(ignore_index)
                    .try_init()?,
            ),
            Self::ScaleGrad { gamma } => Objective::ScaleGrad(
                ScaleGradConfig::new(gamma)
                    .with_ignore_index(ignore_index)
                    .try_init()?,
            ),
            Self::Unlikelihood { alpha } => Objective::Unlikelihood(
                UnlikelihoodConfig::new(alpha)
                    .with_ignore_index(ignore_index)
                    .try_init()?,
            ),
        })
    }
}

/// A built training objective: one of the losses of this crate behind one interface.
/// MLE is ScaleGrad with `γ = 1`, which takes the cross-entropy fast path.
#[derive(Clone, Debug)]
pub enum Objective {
    /// MLE or ScaleGrad.
    ScaleGrad(ScaleGradLoss),
    /// Unlikelihood.
    Unlikelihood(UnlikelihoodLoss),
}

impl Objective {
    /// Mean loss over scored targets, shape `[1]`.
    pub fn forward(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
        self.forward_detailed(logits, targets).loss
    }

    /// The loss with its per-position terms; see [`LossOutput`].
    pub fn forward_detailed(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> LossOutput {
        match self {
            Self::ScaleGrad(loss) => loss.forward_detailed(logits, targets),
            Self::Unlikelihood(loss) => loss.forward_detailed(logits, targets),
        }
    }
}

/// `[B, T, V]` mask that is true where vocabulary entry `v` is a novel token at position
/// `t`, i.e. not among the scored targets of positions `< t` of row `b`.
///
/// This materialises the vocabulary axis, which the losses never do; it exists for
/// inspection and for reference implementations in tests and benchmarks.
pub fn novel_mask(
    targets: Tensor<2, Int>,
    vocab_size: usize,
    ignore_index: Option<i64>,
) -> Tensor<3, Bool> {
    let [batch, len] = targets.dims();
    let context = context::Context::new(targets, ignore_index);
    let occurrences = context.safe_targets.one_hot::<3>(vocab_size).mask_fill(
        context
            .scored
            .bool_not()
            .reshape([batch, len, 1])
            .expand([batch, len, vocab_size]),
        0,
    );
    // Occurrences at positions <= t, minus the one at t itself: the count before t.
    let seen_before = occurrences.clone().cumsum(1) - occurrences;
    seen_before.equal_elem(0)
}
