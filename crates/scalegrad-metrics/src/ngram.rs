//! n-gram statistics shared by the continuation and summary metrics.

use std::collections::HashSet;
use std::hash::Hash;

/// The number of distinct n-grams of `tokens` (0 when `n == 0` or there are fewer than
/// `n` tokens).
pub fn distinct_ngrams<T: Eq + Hash>(tokens: &[T], n: usize) -> usize {
    if n == 0 || tokens.len() < n {
        return 0;
    }
    tokens.windows(n).collect::<HashSet<_>>().len()
}

/// seq-rep-n of one sequence: `1 - |distinct n-grams| / |n-grams|` (Welleck et al.,
/// ICLR 2020), the share of n-grams that repeat an earlier one.
///
/// Returns `None` when the sequence has no n-gram (fewer than `n` tokens, or `n == 0`),
/// where the reference code divides by zero.
///
/// ```
/// use scalegrad_metrics::seq_rep_n;
///
/// let tokens = ["a", "b", "a", "b", "a", "b"];
/// // 5 bigrams, 2 distinct (ab, ba).
/// assert_eq!(seq_rep_n(&tokens, 2), Some(1.0 - 2.0 / 5.0));
/// assert_eq!(seq_rep_n(&tokens, 7), None);
/// ```
pub fn seq_rep_n<T: Eq + Hash>(tokens: &[T], n: usize) -> Option<f64> {
    if n == 0 || tokens.len() < n {
        return None;
    }
    let total = tokens.len() - n + 1;
    Some(1.0 - distinct_ngrams(tokens, n) as f64 / total as f64)
}

/// The share of `summary`'s n-grams (counted with multiplicity) that never occur in
/// `source`: the novel n-gram measure of abstractiveness. `None` when the summary has
/// no n-gram.
///
/// ```
/// use scalegrad_metrics::novel_ngram_share;
///
/// let article = ["the", "cat", "sat"];
/// let summary = ["the", "cat", "ran", "the", "cat"];
/// // Bigrams: the cat, cat ran, ran the, the cat: two of four are novel.
/// assert_eq!(novel_ngram_share(&summary, &article, 2), Some(0.5));
/// ```
pub fn novel_ngram_share<T: Eq + Hash>(summary: &[T], source: &[T], n: usize) -> Option<f64> {
    if n == 0 || summary.len() < n {
        return None;
    }
    let known: HashSet<&[T]> = if source.len() >= n {
        source.windows(n).collect()
    } else {
        HashSet::new()
    };
    let total = summary.len() - n + 1;
    let novel = summary.windows(n).filter(|g| !known.contains(g)).count();
    Some(novel as f64 / total as f64)
}
