//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum identical to Google's `rouge_score` 0.1.2
//! (`rouge_scorer.py`), the implementation behind Hugging Face `evaluate`.
//!
//! - Tokens: [`rouge_tokenize`] (lower-case `[a-z0-9]+` runs, NLTK's Porter stemmer on
//!   tokens longer than three characters when enabled).
//! - ROUGE-N: clipped n-gram overlap; `P = overlap / max(prediction n-grams, 1)`,
//!   `R = overlap / max(target n-grams, 1)`, `F = 2PR / (P + R)` (0 when `P + R = 0`).
//! - ROUGE-L: longest common subsequence of the whole token sequences; 0 when either is
//!   empty.
//! - ROUGE-Lsum: both texts split into sentences on `\n` (empty lines dropped), then
//!   the summary-level union-LCS of Lin (2004), §3.2, counting each token at most as
//!   often as it occurs in both texts, as ROUGE-1.5.5 and rouge_score do. The LCS used
//!   for each sentence pair is the one rouge_score's backtracking picks, tie-breaking
//!   included, since the union depends on it.
//!
//! Argument order follows rouge_score: `score(target, prediction)`.

mod bootstrap;
pub(crate) mod porter;
pub(crate) mod tokenize;

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use bootstrap::{AggregateScore, BootstrapConfig, RougeAggregate, RougeReport, TypeReport};
use porter::PorterStemmer;

use crate::MetricsError;

/// Precision, recall and F-measure of one ROUGE type (rouge_score's `Score`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Matched units over prediction units.
    pub precision: f64,
    /// Matched units over target units.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub fmeasure: f64,
}

impl Score {
    /// The score from precision and recall, with rouge_score's F-measure.
    pub fn new(precision: f64, recall: f64) -> Self {
        Self {
            precision,
            recall,
            fmeasure: fmeasure(precision, recall),
        }
    }

    /// `[precision, recall, fmeasure]`.
    pub fn to_array(self) -> [f64; 3] {
        [self.precision, self.recall, self.fmeasure]
    }

    /// The score from `[precision, recall, fmeasure]`.
    pub fn from_array([precision, recall, fmeasure]: [f64; 3]) -> Self {
        Self {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// rouge_score's `scoring.fmeasure`: `2PR / (P + R)`, or 0 when `P + R` is not positive.
pub fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// The four ROUGE types of one prediction/target pair. Serialises with rouge_score's
/// names: `rouge1`, `rouge2`, `rougeL`, `rougeLsum`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RougeScores {
    /// Unigram overlap.
    pub rouge1: Score,
    /// Bigram overlap.
    pub rouge2: Score,
    /// Longest common subsequence over the whole texts.
    #[serde(rename = "rougeL")]
    pub rouge_l: Score,
    /// Summary-level (union) LCS over newline-separated sentences.
    #[serde(rename = "rougeLsum")]
    pub rouge_lsum: Score,
}

impl RougeScores {
    /// rouge_score's names of the four types, in the order of [`Self::get`].
    pub const TYPES: [&'static str; 4] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

    /// The score of type `i` in [`Self::TYPES`] order.
    ///
    /// # Panics
    /// If `i >= 4` (a programmer error).
    pub fn get(&self, i: usize) -> Score {
        [self.rouge1, self.rouge2, self.rouge_l, self.rouge_lsum][i]
    }
}

/// Scores predictions against targets (references) as rouge_score's
/// `RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer)` does.
///
/// ```
/// use scalegrad_metrics::RougeScorer;
///
/// let scorer = RougeScorer::new(true);
/// let s = scorer.score(
///     "The quick brown fox jumps over the lazy dog",
///     "The quick brown dog jumps on the log.",
/// );
/// assert_eq!(s.rouge1.precision, 0.75);
/// assert_eq!(s.rouge1.recall, 6.0 / 9.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RougeScorer {
    stemmer: Option<PorterStemmer>,
}

/// Tokens of one text: ids per token and the end offset of each sentence.
#[derive(Default)]
struct Tokenised {
    ids: Vec<u32>,
    sentence_ends: Vec<usize>,
}

impl Tokenised {
    fn sentences(&self) -> impl Iterator<Item = &[u32]> {
        let mut start = 0;
        self.sentence_ends.iter().map(move |&end| {
            let s = &self.ids[start..end];
            start = end;
            s
        })
    }
}

impl RougeScorer {
    /// A scorer with (`use_stemmer = true`) or without NLTK's Porter stemmer.
    pub fn new(use_stemmer: bool) -> Self {
        Self {
            stemmer: use_stemmer.then(PorterStemmer::new),
        }
    }

    /// Whether tokens longer than three characters are Porter-stemmed.
    pub fn use_stemmer(&self) -> bool {
        self.stemmer.is_some()
    }

    /// The tokens rouge_score would compare for `text`.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        tokenize::rouge_tokenize(text, self.stemmer.as_ref())
    }

    /// All four ROUGE types of `prediction` against `target`.
    pub fn score(&self, target: &str, prediction: &str) -> RougeScores {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut words = Vec::new();
        let mut buf = Vec::new();
        let mut tokenise = |text: &str| {
            let mut out = Tokenised::default();
            // rougeLsum's sentences: `text.split("\n")` without empty strings. The
            // whole-text tokens of rouge1/2/L are their concatenation, since `\n` is a
            // separator for the tokeniser.
            for sentence in text.split('\n').filter(|s| !s.is_empty()) {
                words.clear();
                tokenize::tokenize_into(sentence, self.stemmer.as_ref(), &mut words, &mut buf);
                for word in words.drain(..) {
                    let next = vocab.len() as u32;
                    out.ids.push(*vocab.entry(word).or_insert(next));
                }
                out.sentence_ends.push(out.ids.len());
            }
            out
        };
        let target = tokenise(target);
        let prediction = tokenise(prediction);
        let vocab_size = vocab.len();
        let mut table = Vec::new();
        RougeScores {
            rouge1: rouge_n(&target.ids, &prediction.ids, 1),
            rouge2: rouge_n(&target.ids, &prediction.ids, 2),
            rouge_l: rouge_l(&target.ids, &prediction.ids, &mut table),
            rouge_lsum: rouge_lsum(&target, &prediction, vocab_size, &mut table),
        }
    }

    /// Scores every pair, in parallel (rayon); `targets[i]` is the reference of
    /// `predictions[i]`.
    pub fn score_all<T, P>(
        &self,
        targets: &[T],
        predictions: &[P],
    ) -> Result<Vec<RougeScores>, MetricsError>
    where
        T: AsRef<str> + Sync,
        P: AsRef<str> + Sync,
    {
        if targets.len() != predictions.len() {
            return Err(MetricsError::LengthMismatch {
                what: "ROUGE pairs",
                left: "targets",
                left_len: targets.len(),
                right: "predictions",
                right_len: predictions.len(),
            });
        }
        Ok(targets
            .par_iter()
            .zip(predictions.par_iter())
            .with_min_len(16)
            .map(|(t, p)| self.score(t.as_ref(), p.as_ref()))
            .collect())
    }
}

/// ROUGE-N with clipped counts (`_score_ngrams`): the overlap is the sum over distinct
/// n-grams of the smaller of their two counts, found by merging the sorted n-gram lists.
fn rouge_n(target: &[u32], prediction: &[u32], n: usize) -> Score {
    let mut t: Vec<&[u32]> = target.windows(n).collect();
    let mut p: Vec<&[u32]> = prediction.windows(n).collect();
    t.sort_unstable();
    p.sort_unstable();
    let (mut i, mut j, mut overlap) = (0, 0, 0usize);
    while i < t.len() && j < p.len() {
        match t[i].cmp(p[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                overlap += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let precision = overlap as f64 / p.len().max(1) as f64;
    let recall = overlap as f64 / t.len().max(1) as f64;
    Score::new(precision, recall)
}

/// Fills `table` with the `(rows + 1) x (cols + 1)` LCS table of `_lcs_table` and
/// returns the LCS length.
fn lcs_table(reference: &[u32], candidate: &[u32], table: &mut Vec<u32>) -> u32 {
    let cols = candidate.len() + 1;
    table.clear();
    table.resize((reference.len() + 1) * cols, 0);
    for (i, &r) in reference.iter().enumerate() {
        let (prev, cur) = table[i * cols..(i + 2) * cols].split_at_mut(cols);
        for (j, &c) in candidate.iter().enumerate() {
            cur[j + 1] = if r == c {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
    }
    table[table.len() - 1]
}

/// ROUGE-L over whole token sequences (`_score_lcs`).
fn rouge_l(target: &[u32], prediction: &[u32], table: &mut Vec<u32>) -> Score {
    if target.is_empty() || prediction.is_empty() {
        return Score::default();
    }
    let lcs = lcs_table(target, prediction, table) as f64;
    Score::new(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// Marks in `in_union` the reference positions of the LCS that rouge_score's
/// `_backtrack_norec` reads out of the table (`lcs_ind`).
fn mark_lcs(reference: &[u32], candidate: &[u32], table: &mut Vec<u32>, in_union: &mut [bool]) {
    lcs_table(reference, candidate, table);
    let cols = candidate.len() + 1;
    let (mut i, mut j) = (reference.len(), candidate.len());
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            in_union[i - 1] = true;
            i -= 1;
            j -= 1;
        } else if table[i * cols + j - 1] > table[(i - 1) * cols + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
}

/// ROUGE-Lsum: summary-level union LCS (`_summary_level_lcs`).
fn rouge_lsum(
    target: &Tokenised,
    prediction: &Tokenised,
    vocab_size: usize,
    table: &mut Vec<u32>,
) -> Score {
    // rouge_score returns zeros when either text has no (non-empty) sentence, or no
    // token at all.
    let (m, n) = (target.ids.len(), prediction.ids.len());
    if target.sentence_ends.is_empty() || prediction.sentence_ends.is_empty() || m == 0 || n == 0 {
        return Score::default();
    }
    let mut count_r = vec![0u32; vocab_size];
    let mut count_c = vec![0u32; vocab_size];
    for &t in &target.ids {
        count_r[t as usize] += 1;
    }
    for &t in &prediction.ids {
        count_c[t as usize] += 1;
    }
    let mut hits = 0usize;
    let mut in_union = Vec::new();
    for r in target.sentences() {
        in_union.clear();
        in_union.resize(r.len(), false);
        for c in prediction.sentences() {
            mark_lcs(r, c, table, &mut in_union);
        }
        // The union in reference order; each token counts while both texts have
        // unmatched copies left (ROUGE-1.5.5's guard against double counting).
        for (&t, _) in r.iter().zip(&in_union).filter(|(_, hit)| **hit) {
            let t = t as usize;
            if count_c[t] > 0 && count_r[t] > 0 {
                hits += 1;
                count_c[t] -= 1;
                count_r[t] -= 1;
            }
        }
    }
    Score::new(hits as f64 / n as f64, hits as f64 / m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rouge_n_clips_repeated_ngrams() {
        // Target "a a b", prediction "a a a": unigram overlap min(2,3) + min(1,0) = 2.
        let s = RougeScorer::new(false).score("a a b", "a a a");
        assert_eq!(s.rouge1.precision, 2.0 / 3.0);
        assert_eq!(s.rouge1.recall, 2.0 / 3.0);
        // Bigrams: target {aa, ab}, prediction {aa, aa}: overlap 1 of 2 each.
        assert_eq!(s.rouge2.precision, 0.5);
        assert_eq!(s.rouge2.recall, 0.5);
    }

    #[test]
    fn rouge_l_is_lcs_over_lengths() {
        // LCS("a b c d e", "a c e x") = "a c e": P = 3/4, R = 3/5.
        let s = RougeScorer::new(false).score("a b c d e", "a c e x");
        assert_eq!(s.rouge_l, Score::new(0.75, 0.6));
        assert!((s.rouge_l.fmeasure - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-15);
    }

    #[test]
    fn rouge_lsum_takes_the_union_over_candidate_sentences() {
        // Reference sentence "a b c d"; candidate sentences "a b" and "c d": each LCS
        // covers half, the union covers all four tokens, so P = R = 1, while plain
        // ROUGE-L over the concatenation is also 1 here. Reordering the candidate
        // sentences keeps Lsum at 1 but drops L to 2/4.
        let s = RougeScorer::new(false).score("a b c d", "c d\na b");
        assert_eq!(s.rouge_lsum, Score::new(1.0, 1.0));
        assert_eq!(s.rouge_l, Score::new(0.5, 0.5));
    }

    #[test]
    fn empty_texts_score_zero() {
        let scorer = RougeScorer::new(true);
        for (t, p) in [
            ("", ""),
            ("a b", ""),
            ("", "a b"),
            ("!!!", "a"),
            ("\n\n", "a"),
        ] {
            let s = scorer.score(t, p);
            assert_eq!(s, RougeScores::default(), "target={t:?} prediction={p:?}");
        }
    }

    #[test]
    fn score_all_rejects_mismatched_lengths() {
        let err = RougeScorer::new(false)
            .score_all(&["a"], &["a", "b"])
            .unwrap_err();
        assert!(err.to_string().contains("1 targets"), "{err}");
    }
}
