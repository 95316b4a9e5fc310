//! The crate's one error type.

/// Input that a metric cannot be computed from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// Two inputs that pair up element by element have different lengths.
    #[error("{what}: {left_len} {left} but {right_len} {right}; they must pair up one to one")]
    LengthMismatch {
        /// What was being paired.
        what: &'static str,
        /// Name of the first input.
        left: &'static str,
        /// Length of the first input.
        left_len: usize,
        /// Name of the second input.
        right: &'static str,
        /// Length of the second input.
        right_len: usize,
    },
    /// Nothing was accumulated, so there is no mean to report.
    #[error("no {0} to aggregate: add at least one before reporting")]
    Empty(&'static str),
    /// The bootstrap confidence interval lies outside `[0, 1]`.
    #[error("bootstrap confidence interval must be in [0, 1] (0.95 is usual), got {0}")]
    ConfidenceInterval(f64),
    /// The bootstrap was asked for zero resamples.
    #[error("bootstrap needs at least one resample (rouge_score uses 1000), got 0")]
    NoBootstrapSamples,
    /// A context length of zero for rep/l.
    #[error("rep/l context lengths must be at least 1, got {0:?}")]
    ContextLength(Vec<usize>),
}
