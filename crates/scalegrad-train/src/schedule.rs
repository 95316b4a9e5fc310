//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

/// The shape of the learning rate over a run, after warmup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Linear decay to zero at the last step (Hugging Face's `get_linear_schedule_with_warmup`).
    #[default]
    Linear,
    /// Constant after warmup.
    Constant,
}

/// Linear warmup from 0 to `peak` over `warmup` steps, then `decay` until `total` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Peak learning rate, reached at the end of warmup.
    pub peak: f64,
    /// Number of warmup steps.
    pub warmup: usize,
    /// Total number of optimiser steps in the run.
    pub total: usize,
    /// What happens after warmup.
    pub decay: Decay,
}

impl Schedule {
    /// The learning rate of optimiser step `step` (0-based), as Hugging Face's
    /// `LambdaLR` computes it: `peak * step / warmup` during warmup, then
    /// `peak * (total - step) / (total - warmup)` for linear decay.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * step as f64 / self.warmup.max(1) as f64;
        }
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear => {
                let remaining = self.total.saturating_sub(step) as f64;
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                self.peak * (remaining / span).max(0.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay_matches_hugging_face() {
        let s = Schedule {
            peak: 1e-3,
            warmup: 10,
            total: 110,
            decay: Decay::Linear,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 5e-4).abs() < 1e-12);
        assert!((s.lr(10) - 1e-3).abs() < 1e-12);
        assert!((s.lr(60) - 5e-4).abs() < 1e-12);
        assert_eq!(s.lr(110), 0.0);
        assert_eq!(s.lr(500), 0.0);
    }

    #[test]
    fn constant_schedule_holds_after_warmup() {
        let s = Schedule {
            peak: 2e-5,
            warmup: 0,
            total: 100,
            decay: Decay::Constant,
        };
        assert_eq!(s.lr(0), 2e-5);
        assert_eq!(s.lr(99), 2e-5);
    }
}
