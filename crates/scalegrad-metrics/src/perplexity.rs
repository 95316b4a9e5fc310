//! Perplexity from summed negative log-likelihoods.

use serde::{Deserialize, Serialize};

/// Streaming perplexity: the sum of per-token negative log-likelihoods (natural log)
/// and the number of scored tokens. Accumulators from different batches or threads
/// merge by addition, so `exp(total NLL / total tokens)` is exact however the work was
/// split (unlike averaging per-batch perplexities).
///
/// ```
/// use scalegrad_metrics::Perplexity;
///
/// let mut a = Perplexity::new();
/// a.add_nlls(&[1.0, 2.0]);
/// let mut b = Perplexity::new();
/// b.add_sum(3.0, 1);
/// a.merge(&b);
/// assert_eq!(a.tokens(), 3);
/// assert_eq!(a.mean_nll(), Some(2.0));
/// assert_eq!(a.perplexity(), Some(2f64.exp()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Perplexity {
    nll_sum: f64,
    tokens: u64,
}

impl Perplexity {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a batch given as its summed NLL (nats) over `tokens` scored tokens, e.g. a
    /// mean loss times the number of non-padding targets.
    pub fn add_sum(&mut self, nll_sum: f64, tokens: u64) {
        self.nll_sum += nll_sum;
        self.tokens += tokens;
    }

    /// Adds per-token NLLs (nats), summed in `f64`.
    pub fn add_nlls(&mut self, nlls: &[f32]) {
        self.nll_sum += nlls.iter().map(|&x| f64::from(x)).sum::<f64>();
        self.tokens += nlls.len() as u64;
    }

    /// Adds another accumulator's totals.
    pub fn merge(&mut self, other: &Self) {
        self.nll_sum += other.nll_sum;
        self.tokens += other.tokens;
    }

    /// Scored tokens so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Summed NLL so far, in nats.
    pub fn nll_sum(&self) -> f64 {
        self.nll_sum
    }

    /// Mean NLL per token in nats; `None` before any token. A NaN loss stays NaN.
    pub fn mean_nll(&self) -> Option<f64> {
        (self.tokens > 0).then(|| self.nll_sum / self.tokens as f64)
    }

    /// `exp(mean NLL)`; `None` before any token.
    pub fn perplexity(&self) -> Option<f64> {
        self.mean_nll().map(f64::exp)
    }
}

impl std::ops::Add for Perplexity {
    type Output = Self;

    fn add(mut self, rhs: Self) -> Self {
        self.merge(&rhs);
        self
    }
}

impl std::iter::Sum for Perplexity {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::new(), |a, b| a + b)
    }
}
