//! Repetition inside summaries and their abstractiveness (novel n-grams).
//!
//! Both use rouge_score's tokens without stemming (lower-cased `[a-z0-9]+` runs, see
//! [`crate::rouge_tokenize`]), so punctuation neither counts as a repeat nor as a novel
//! word, and case does not matter. For each summary:
//!
//! - seq-rep-n (n = 1..4): `1 - |distinct n-grams| / |n-grams|` of the summary;
//! - novel-n (n = 1..4): the share of the summary's n-grams, counted with multiplicity,
//!   that do not occur anywhere in its article.
//!
//! Both are averaged over summaries that have at least n tokens.

use serde::{Deserialize, Serialize};

use crate::ngram::{novel_ngram_share, seq_rep_n};
use crate::rouge::tokenize::rouge_tokenize;

/// Streaming repetition and novelty of summaries; mergeable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryAccumulator {
    summaries: usize,
    seq_rep_sum: [f64; 4],
    seq_rep_count: [usize; 4],
    novel_sum: [f64; 4],
    novel_count: [usize; 4],
}

/// Mean repetition and novelty over summaries (`None` where no summary had n tokens).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryReport {
    /// How texts were tokenised.
    pub unit: String,
    /// Summaries added.
    pub summaries: usize,
    /// Mean seq-rep-n of summaries, n = 1..4.
    pub seq_rep: [Option<f64>; 4],
    /// Mean share of summary n-grams absent from the article, n = 1..4.
    pub novel: [Option<f64>; 4],
}

impl SummaryAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one summary of `article`.
    pub fn add(&mut self, article: &str, summary: &str) {
        let article = rouge_tokenize(article, None);
        let summary = rouge_tokenize(summary, None);
        self.add_tokens(&article, &summary);
    }

    /// Adds one already tokenised summary of an already tokenised article.
    pub fn add_tokens<T: Eq + std::hash::Hash>(&mut self, article: &[T], summary: &[T]) {
        self.summaries += 1;
        for k in 0..4 {
            if let Some(v) = seq_rep_n(summary, k + 1) {
                self.seq_rep_sum[k] += v;
                self.seq_rep_count[k] += 1;
            }
            if let Some(v) = novel_ngram_share(summary, article, k + 1) {
                self.novel_sum[k] += v;
                self.novel_count[k] += 1;
            }
        }
    }

    /// Adds everything `other` accumulated.
    pub fn merge(&mut self, other: &Self) {
        self.summaries += other.summaries;
        for k in 0..4 {
            self.seq_rep_sum[k] += other.seq_rep_sum[k];
            self.seq_rep_count[k] += other.seq_rep_count[k];
            self.novel_sum[k] += other.novel_sum[k];
            self.novel_count[k] += other.novel_count[k];
        }
    }

    /// The means so far.
    pub fn report(&self) -> SummaryReport {
        let mean = |sum: f64, count: usize| (count > 0).then(|| sum / count as f64);
        SummaryReport {
            unit: "rouge_score tokens without stemming (lower-case [a-z0-9]+ runs)".to_string(),
            summaries: self.summaries,
            seq_rep: std::array::from_fn(|k| mean(self.seq_rep_sum[k], self.seq_rep_count[k])),
            novel: std::array::from_fn(|k| mean(self.novel_sum[k], self.novel_count[k])),
        }
    }
}
