//! The crate's one error type.

/// A loss configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossConfigError {
    /// ScaleGrad's gamma must lie in `(0, 1]`.
    #[error(
        "ScaleGrad gamma must be in (0, 1] (1 is plain cross-entropy; the paper uses 0.2 for \
         open-ended generation and 0.8 for summarisation), got {0}"
    )]
    Gamma(f64),
    /// Unlikelihood's alpha must be finite and non-negative.
    #[error(
        "unlikelihood alpha must be a finite number >= 0 (0 is plain cross-entropy; Welleck et \
         al. use 1.0), got {0}"
    )]
    Alpha(f64),
}
