//! Continuation metrics (Welleck et al., ICLR 2020; Lin et al., ICML 2021, Table 1):
//! for each decoded continuation of a prefix, seq-rep-n for n = 1..4, averaged over
//! continuations, and uniq-seq, the number of distinct tokens over all continuations.
//!
//! The same accumulator serves token ids ([`ContinuationAccumulator<u32>`]) and words
//! ([`WordContinuationAccumulator`], which tokenises decoded text and drops
//! continuations of at most three words, as the reference evaluation does). Feed the
//! human continuations of the same prefixes (the ground-truth targets cut into segments
//! of the continuation length, e.g. `targets.chunks_exact(100)`) into a second
//! accumulator for the human reference values.
//!
//! A continuation with fewer than n tokens has no n-gram, so it does not enter the
//! seq-rep-n mean (the reference code would divide by zero); the report counts how
//! many continuations each mean covers. Accumulators merge, so shards of an evaluation
//! can run on different threads.

use std::collections::HashSet;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::ngram::seq_rep_n;
use crate::words::WordTokenizer;

/// The n of seq-rep-n that are reported.
pub const SEQ_REP_ORDERS: [usize; 4] = [1, 2, 3, 4];

/// Streaming seq-rep-n and uniq-seq over continuations of tokens of type `T`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize + Eq + Hash",
    deserialize = "T: Deserialize<'de> + Eq + Hash"
))]
pub struct ContinuationAccumulator<T> {
    unit: String,
    min_len: usize,
    continuations: usize,
    dropped: usize,
    tokens: usize,
    seq_rep_sum: [f64; 4],
    seq_rep_count: [usize; 4],
    distinct: HashSet<T>,
}

/// Means over continuations and the distinct-token count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContinuationReport {
    /// What a token is: `"token ids"` or the word tokeniser's description.
    pub unit: String,
    /// Continuations that were scored.
    pub continuations: usize,
    /// Continuations dropped for being shorter than the minimum length.
    pub dropped: usize,
    /// Tokens over the scored continuations.
    pub tokens: usize,
    /// Mean seq-rep-1 over continuations with at least 1 token.
    pub seq_rep_1: Option<f64>,
    /// Mean seq-rep-2 over continuations with at least 2 tokens.
    pub seq_rep_2: Option<f64>,
    /// Mean seq-rep-3 over continuations with at least 3 tokens.
    pub seq_rep_3: Option<f64>,
    /// Mean seq-rep-4 (the paper's headline) over continuations with at least 4 tokens.
    pub seq_rep_4: Option<f64>,
    /// How many continuations each seq-rep-n mean covers (n = 1..4).
    pub seq_rep_counted: [usize; 4],
    /// Distinct tokens over all scored continuations.
    pub uniq_seq: usize,
}

impl ContinuationReport {
    /// Mean seq-rep-n for n in 1..=4.
    pub fn seq_rep(&self, n: usize) -> Option<f64> {
        match n {
            1 => self.seq_rep_1,
            2 => self.seq_rep_2,
            3 => self.seq_rep_3,
            4 => self.seq_rep_4,
            _ => None,
        }
    }
}

impl<T: Eq + Hash + Clone> Default for ContinuationAccumulator<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Eq + Hash + Clone> ContinuationAccumulator<T> {
    /// An accumulator that scores every continuation (the token-level metrics).
    pub fn new() -> Self {
        Self::with_min_len("token ids", 0)
    }

    /// An accumulator that drops continuations of fewer than `min_len` tokens, whose
    /// tokens are described by `unit` in the report.
    pub fn with_min_len(unit: impl Into<String>, min_len: usize) -> Self {
        Self {
            unit: unit.into(),
            min_len,
            continuations: 0,
            dropped: 0,
            tokens: 0,
            seq_rep_sum: [0.0; 4],
            seq_rep_count: [0; 4],
            distinct: HashSet::new(),
        }
    }

    /// Adds one continuation.
    pub fn add(&mut self, continuation: &[T]) {
        if continuation.len() < self.min_len {
            self.dropped += 1;
            return;
        }
        self.continuations += 1;
        self.tokens += continuation.len();
        for (k, n) in SEQ_REP_ORDERS.into_iter().enumerate() {
            if let Some(v) = seq_rep_n(continuation, n) {
                self.seq_rep_sum[k] += v;
                self.seq_rep_count[k] += 1;
            }
        }
        self.distinct.extend(continuation.iter().cloned());
    }

    /// Adds everything `other` accumulated (e.g. another thread's shard).
    pub fn merge(&mut self, other: Self) {
        self.continuations += other.continuations;
        self.dropped += other.dropped;
        self.tokens += other.tokens;
        for k in 0..4 {
            self.seq_rep_sum[k] += other.seq_rep_sum[k];
            self.seq_rep_count[k] += other.seq_rep_count[k];
        }
        self.distinct.extend(other.distinct);
    }

    /// The means so far.
    pub fn report(&self) -> ContinuationReport {
        let mean = |k: usize| {
            (self.seq_rep_count[k] > 0).then(|| self.seq_rep_sum[k] / self.seq_rep_count[k] as f64)
        };
        ContinuationReport {
            unit: self.unit.clone(),
            continuations: self.continuations,
            dropped: self.dropped,
            tokens: self.tokens,
            seq_rep_1: mean(0),
            seq_rep_2: mean(1),
            seq_rep_3: mean(2),
            seq_rep_4: mean(3),
            seq_rep_counted: self.seq_rep_count,
            uniq_seq: self.distinct.len(),
        }
    }
}

/// Word-level continuation metrics on decoded text: tokenises with a
/// [`WordTokenizer`] and drops continuations of at most three words.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WordContinuationAccumulator {
    tokenizer: WordTokenizer,
    inner: ContinuationAccumulator<String>,
}

impl Default for WordContinuationAccumulator {
    fn default() -> Self {
        Self::new(WordTokenizer::Regex)
    }
}

impl WordContinuationAccumulator {
    /// Continuations with at most this many words are dropped.
    pub const MAX_DROPPED_WORDS: usize = 3;

    /// An accumulator using `tokenizer`.
    pub fn new(tokenizer: WordTokenizer) -> Self {
        Self {
            tokenizer,
            inner: ContinuationAccumulator::with_min_len(
                tokenizer.describe(),
                Self::MAX_DROPPED_WORDS + 1,
            ),
        }
    }

    /// Adds one decoded continuation.
    pub fn add(&mut self, text: &str) {
        let words: Vec<String> = self
            .tokenizer
            .tokenize(text)
            .into_iter()
            .map(str::to_string)
            .collect();
        self.inner.add(&words);
    }

    /// Adds everything `other` accumulated.
    ///
    /// # Panics
    /// If the two use different tokenisers (a programmer error).
    pub fn merge(&mut self, other: Self) {
        assert_eq!(
            self.tokenizer, other.tokenizer,
            "merging word metrics made with different tokenisers"
        );
        self.inner.merge(other.inner);
    }

    /// The means so far.
    pub fn report(&self) -> ContinuationReport {
        self.inner.report()
    }
}
