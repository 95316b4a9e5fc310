//! Decoding as data plus pure functions, with transformers' `generate()` semantics:
//! greedy search and beam search with `no_repeat_ngram_size`, `min_length`,
//! `max_length`, `length_penalty` and `early_stopping`, for batched sources.
//!
//! The logits processors ([`no_repeat_ngram_bans`], [`ban_eos_before_min_length`],
//! [`log_softmax`]) are functions on host rows; the n-gram ban, the token ban and the
//! arg-max are `scalegrad_ops::decoding`'s, shared with GPT-2. The search algorithms
//! ([`greedy_search`], [`beam_search`]) drive any [`Stepper`] (the model with its
//! key/value cache in [`generate`](crate::generate), toy logit tables in the tests).
//!
//! Mirrors `transformers/generation/utils.py` (5.24): `_sample` for `num_beams = 1` and
//! the vectorised `_beam_search` otherwise, `NoRepeatNGramLogitsProcessor` and
//! `MinLengthLogitsProcessor` from `logits_process.py`, `MaxLengthCriteria` and
//! `EosTokenCriteria`. Notable details it reproduces:
//! - `max_length` counts the decoder start token, so at most `max_length - 1` tokens are
//!   generated; `min_length` likewise counts it (EOS is banned while the sequence,
//!   start token included, is shorter than `min_length`).
//! - Beam scores are sums of log-probabilities of the *processed* distributions; a
//!   finished hypothesis is ranked by `score / generated_len ^ length_penalty`, where
//!   `generated_len` excludes the start token.
//! - `early_stopping`: `true` stops a source once `num_beams` hypotheses are finished;
//!   `false` stops when the best running beam, normalised at its current length, cannot
//!   beat the worst finished one; `never` makes that estimate at `max_length` when
//!   `length_penalty > 0`.
//! - Each step keeps the top `2 * num_beams` candidates (more with several EOS ids) so
//!   that `num_beams` unfinished beams always continue; only candidates among the top
//!   `num_beams` may become finished hypotheses.

use crate::settings::{EarlyStopping, GenerationConfig};

/// transformers' stand-in for minus infinity in beam bookkeeping.
const NEG_LARGE: f32 = -1.0e9;

/// One generated sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The generated tokens after the decoder start token, ending with EOS when the
    /// sequence finished before `max_length`.
    pub tokens: Vec<u32>,
    /// Beam search: the length-normalised score of the hypothesis; greedy: `None`.
    pub score: Option<f32>,
}

// ---------------------------------------------------------------------------------------
// Logits processors: pure functions on one row of the vocabulary.

/// In-place `log_softmax` of one row (max-shifted, as torch computes it).
pub fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return;
    }
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln() + max;
    for x in row.iter_mut() {
        *x -= log_sum;
    }
}

/// The index of the largest value, ties to the lower index (shared with GPT-2).
pub use scalegrad_ops::decoding::argmax;
/// Sets the listed tokens to minus infinity (shared with GPT-2).
pub use scalegrad_ops::decoding::ban_tokens;
/// transformers' `NoRepeatNGramLogitsProcessor` on a row's history (start token
/// included): the tokens that would repeat an n-gram (shared with GPT-2).
pub use scalegrad_ops::decoding::banned_ngram_tokens as no_repeat_ngram_bans;

/// `MinLengthLogitsProcessor`: bans every EOS token while `len` (the current sequence
/// length, start token included) is below `min_length`.
pub fn ban_eos_before_min_length(row: &mut [f32], len: usize, min_length: usize, eos: &[u32]) {
    if len < min_length {
        ban_tokens(row, eos);
    }
}

/// Applies the configured processors to one row whose sequence so far is `history`.
pub fn process_row(row: &mut [f32], history: &[u32], config: &GenerationConfig) {
    if config.no_repeat_ngram_size > 0 {
        ban_tokens(
            row,
            &no_repeat_ngram_bans(history, config.no_repeat_ngram_size),
        );
    }
    ban_eos_before_min_length(row, history.len(), config.min_length, &config.eos_token_ids);
}

/// The `k` largest `(index, value)` pairs, best first; ties go to the lower index.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (i, &x) in values.iter().enumerate() {
        if best.len() == k && x.partial_cmp(&best[k - 1].1) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        // Insert after every entry that is >= x, so earlier indices win ties.
        let pos = best.partition_point(|&(_, y)| y >= x);
        best.insert(pos, (i, x));
        best.truncate(k);
    }
    best
}

// ---------------------------------------------------------------------------------------
// Search algorithms over any next-token scorer.

/// What a search needs from a model: next-token logits for the last tokens of every row,
/// and reordering of the rows' cached state when beams are reselected.
///
/// The searches ask for the two results they use, [`greedy_tokens`](Self::greedy_tokens)
/// and [`beam_candidates`](Self::beam_candidates); their default implementations read
/// [`step`](Self::step)'s logits on the host. A stepper whose model runs on a GPU
/// overrides them to compute the same on the device and read back only the result.
pub trait Stepper {
    /// Vocabulary size (length of each logits row).
    fn vocab_size(&self) -> usize;
    /// Feeds one new token per row and returns the logits of all rows, row-major
    /// (`rows * vocab_size` values).
    fn step(&mut self, tokens: &[u32]) -> Vec<f32>;
    /// Row `r` continues from old row `rows[r]` (beam search only).
    fn reorder(&mut self, rows: &[usize]);

    /// Feeds one token per row and returns each row's arg-max after the processors
    /// (`histories[r]`: row `r`'s sequence so far, start token included).
    fn greedy_tokens(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        config: &GenerationConfig,
    ) -> Vec<u32> {
        let vocab = self.vocab_size();
        let mut logits = self.step(tokens);
        logits
            .chunks_exact_mut(vocab)
            .zip(histories)
            .map(|(row, history)| {
                process_row(row, history, config);
                argmax(row) as u32
            })
            .collect()
    }

    /// Feeds one token per row (`beams` rows per source) and returns, per source, the
    /// `keep` best `(beam * vocab + token, score)` continuations, best first, where the
    /// score is the processed log-probability plus the row's running score `scores[r]`
    /// (steps b and c of transformers' beam search).
    fn beam_candidates(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        scores: &[f32],
        beams: usize,
        keep: usize,
        config: &GenerationConfig,
    ) -> Vec<Vec<(usize, f32)>> {
        let vocab = self.vocab_size();
        let mut logits = self.step(tokens);
        for ((row, history), score) in logits.chunks_exact_mut(vocab).zip(histories).zip(scores) {
            log_softmax(row);
            process_row(row, history, config);
            for x in row.iter_mut() {
                *x += score;
            }
        }
        logits
            .chunks_exact(beams * vocab)
            .map(|block| top_k(block, keep))
            .collect()
    }
}

/// Greedy search (transformers' `_sample` without sampling) for `sources` rows. Finished
/// rows are fed the pad token until every row is finished, as transformers does.
pub fn greedy_search<S: Stepper>(
    stepper: &mut S,
    sources: usize,
    config: &GenerationConfig,
) -> Vec<Generated> {
    let pad = config.pad_token_id.unwrap_or(0);
    let mut sequences = vec![vec![config.decoder_start_token_id]; sources];
    let mut finished = vec![false; sources];
    let mut next: Vec<u32> = sequences.iter().map(|s| s[0]).collect();
    while sequences[0].len() < config.max_length && finished.iter().any(|f| !f) {
        let histories: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
        let chosen = stepper.greedy_tokens(&next, &histories, config);
        let cur_len = sequences[0].len();
        for (r, &token) in chosen.iter().enumerate() {
            if finished[r] {
                next[r] = pad;
                sequences[r].push(pad);
                continue;
            }
            next[r] = token;
            sequences[r].push(token);
            if config.eos_token_ids.contains(&token) || cur_len + 1 >= config.max_length {
                finished[r] = true;
            }
        }
    }
    sequences
        .into_iter()
        .map(|s| {
            let end = s
                .iter()
                .skip(1)
                .position(|t| config.eos_token_ids.contains(t))
                .map_or(s.len(), |p| p + 2);
            Generated {
                tokens: s[1..end].to_vec(),
                score: None,
            }
        })
        .collect()
}

/// Beam-search state of one source (the per-item slices of transformers' tensors).
struct SourceBeams {
    /// Running hypotheses, best first.
    running: Vec<Vec<u32>>,
    /// Their accumulated log-probabilities.
    running_scores: Vec<f32>,
    /// Finished-hypothesis slots (some hold placeholders until filled).
    finished: Vec<Vec<u32>>,
    /// Their normalised scores (`NEG_LARGE` for placeholders).
    finished_scores: Vec<f32>,
    /// Whether each slot holds a real finished hypothesis.
    is_finished: Vec<bool>,
    /// Whether a running beam may still beat the finished ones.
    improvable: bool,
}

/// Beam search with transformers 5's vectorised algorithm, for `sources` sources whose
/// rows in the stepper are laid out source-major (`num_beams` rows per source).
pub fn beam_search<S: Stepper>(
    stepper: &mut S,
    sources: usize,
    config: &GenerationConfig,
) -> Vec<Generated> {
    let nb = config.num_beams;
    let vocab = stepper.vocab_size();
    let prompt = 1;
    let n_eos = config.eos_token_ids.len();
    let keep = (1 + n_eos).max(2) * nb;
    let start = config.decoder_start_token_id;
    let lp = config.length_penalty;
    let norm = |len: usize| (len as f64).powf(lp) as f32;

    let mut states: Vec<SourceBeams> = (0..sources)
        .map(|_| SourceBeams {
            running: vec![vec![start]; nb],
            running_scores: (0..nb)
                .map(|j| if j == 0 { 0.0 } else { NEG_LARGE })
                .collect(),
            finished: vec![vec![start]; nb],
            finished_scores: vec![NEG_LARGE; nb],
            is_finished: vec![false; nb],
            improvable: true,
        })
        .collect();
    let mut cur_len = prompt;
    let mut tokens: Vec<u32> = vec![start; sources * nb];
    loop {
        // b, c. Processed log-probabilities plus running scores, flattened over beams;
        // the top `keep` continuations of each source.
        let histories: Vec<&[u32]> = states
            .iter()
            .flat_map(|s| s.running.iter().map(Vec::as_slice))
            .collect();
        let scores: Vec<f32> = states
            .iter()
            .flat_map(|s| s.running_scores.iter().copied())
            .collect();
        let all_candidates =
            stepper.beam_candidates(&tokens, &histories, &scores, nb, keep, config);
        let mut parents = Vec::with_capacity(sources * nb);
        let mut all_hit = true;
        for ((b, state), candidates) in states.iter_mut().enumerate().zip(all_candidates) {
            let seqs: Vec<Vec<u32>> = candidates
                .iter()
                .map(|&(i, _)| {
                    let mut s = state.running[i / vocab].clone();
                    s.push((i % vocab) as u32);
                    s
                })
                .collect();
            // d. Which candidates hit a stopping criterion (EOS or max_length).
            let hits: Vec<bool> = candidates
                .iter()
                .map(|&(i, _)| {
                    config.eos_token_ids.contains(&((i % vocab) as u32))
                        || cur_len + 1 >= config.max_length
                })
                .collect();
            all_hit &= hits.iter().all(|&h| h);
            // e. The best unfinished candidates keep running.
            let running_scores: Vec<f32> = candidates
                .iter()
                .zip(&hits)
                .map(|(&(_, s), &hit)| if hit { s + NEG_LARGE } else { s })
                .collect();
            let next = top_k(&running_scores, nb);
            // f. Candidates among the top num_beams that just finished may enter the
            // finished slots, ranked by length-normalised score.
            let full = state.is_finished.iter().all(|&f| f)
                && config.early_stopping == EarlyStopping::True;
            let denom = norm(cur_len + 1 - prompt);
            let mut merged_scores = state.finished_scores.clone();
            let mut merged_flags = state.is_finished.clone();
            for (k, (&(_, s), &hit)) in candidates.iter().zip(&hits).enumerate() {
                let just_finished = hit && k < nb;
                let mut score = s / denom;
                if full {
                    score += NEG_LARGE;
                }
                if !state.improvable {
                    score += NEG_LARGE;
                }
                if !just_finished {
                    score += NEG_LARGE;
                }
                merged_scores.push(score);
                merged_flags.push(just_finished);
            }
            let chosen = top_k(&merged_scores, nb);
            let finished: Vec<Vec<u32>> = chosen
                .iter()
                .map(|&(m, _)| {
                    if m < nb {
                        state.finished[m].clone()
                    } else {
                        seqs[m - nb].clone()
                    }
                })
                .collect();
            state.finished = finished;
            state.finished_scores = chosen.iter().map(|&(_, s)| s).collect();
            state.is_finished = chosen.iter().map(|&(m, _)| merged_flags[m]).collect();
            // g. Running beams for the next step and the cache rows they continue.
            state.running = next.iter().map(|&(k, _)| seqs[k].clone()).collect();
            state.running_scores = next.iter().map(|&(_, s)| s).collect();
            for &(k, _) in &next {
                parents.push(b * nb + candidates[k].0 / vocab);
            }
        }
        cur_len += 1;
        for state in &mut states {
            let best_len = if config.early_stopping == EarlyStopping::Never && lp > 0.0 {
                config.max_length - prompt
            } else {
                cur_len - prompt
            };
            let best_possible = state.running_scores[0] / norm(best_len);
            let worst = state
                .finished_scores
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            let beatable = state
                .is_finished
                .iter()
                .any(|&f| best_possible > if f { worst } else { NEG_LARGE });
            state.improvable &= beatable;
        }
        let improvement_possible = states.iter().any(|s| s.improvable);
        let all_done = config.early_stopping == EarlyStopping::True
            && states.iter().all(|s| s.is_finished.iter().all(|&f| f));
        if !improvement_possible || all_done || all_hit {
            break;
        }
        stepper.reorder(&parents);
        tokens = states
            .iter()
            .flat_map(|s| s.running.iter().map(|r| *r.last().expect("non-empty")))
            .collect();
    }
    states
        .into_iter()
        .map(|s| Generated {
            tokens: s.finished[0][1..].to_vec(),
            score: Some(s.finished_scores[0]),
        })
        .collect()
}

//

#[cfg(test)]
mod tests {
    use super::*;

    fn config(beams: usize) -> GenerationConfig {
        GenerationConfig {
            num_beams: beams,
            ..GenerationConfig::greedy(6, 0, Some(3))
        }
    }

    #[test]
    fn min_length_bans_eos_until_the_sequence_is_long_enough() {
        let mut row = vec![0.0, 1.0, 2.0, 3.0];
        ban_eos_before_min_length(&mut row, 2, 3, &[3]);
        assert_eq!(row, vec![0.0, 1.0, 2.0, f32::NEG_INFINITY]);
        let mut row = vec![0.0, 1.0, 2.0, 3.0];
        ban_eos_before_min_length(&mut row, 3, 3, &[3]);
        assert_eq!(row, vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn log_softmax_matches_the_hand_computed_row() {
        // log_softmax([0, ln 3]) = [ln 1/4, ln 3/4].
        let mut row = vec![0.0, 3f32.ln()];
        log_softmax(&mut row);
        assert!((row[0] - 0.25f32.ln()).abs() < 1e-6, "{row:?}");
        assert!((row[1] - 0.75f32.ln()).abs() < 1e-6, "{row:?}");
    }

    #[test]
    fn top_k_is_sorted_and_breaks_ties_by_lower_index() {
        let values = [1.0, 5.0, 3.0, 5.0, f32::NEG_INFINITY, 3.0];
        assert_eq!(
            top_k(&values, 4),
            vec![(1, 5.0), (3, 5.0), (2, 3.0), (5, 3.0)]
        );
        assert_eq!(argmax(&values), 1);
    }

    /// A stepper whose next-token logits depend only on the last token (a 4-token toy
    /// vocabulary: 0 = start, 3 = EOS).
    struct Table {
        table: Vec<[f32; 4]>,
        rows: Vec<Vec<u32>>,
    }

    impl Stepper for Table {
        fn vocab_size(&self) -> usize {
            4
        }
        fn step(&mut self, tokens: &[u32]) -> Vec<f32> {
            if self.rows.is_empty() {
                self.rows = vec![Vec::new(); tokens.len()];
            }
            for (row, &t) in self.rows.iter_mut().zip(tokens) {
                row.push(t);
            }
            tokens
                .iter()
                .flat_map(|&t| self.table[t as usize])
                .collect()
        }
        fn reorder(&mut self, rows: &[usize]) {
            self.rows = rows.iter().map(|&r| self.rows[r].clone()).collect();
        }
    }

    fn table() -> Table {
        Table {
            table: vec![
                [0.0, 2.0, 1.0, 0.5], // after start: 1 is likely
                [0.0, 2.0, 0.0, 1.8], // after 1: 1 again, EOS close behind
                [0.0, 0.0, 0.0, 3.0], // after 2: EOS
                [0.0, 0.0, 0.0, 0.0],
            ],
            rows: Vec::new(),
        }
    }

    #[test]
    fn greedy_repeats_without_processors_and_obeys_the_ngram_ban() {
        let out = greedy_search(&mut table(), 1, &config(1));
        assert_eq!(
            out[0].tokens,
            vec![1, 1, 1, 1, 1],
            "runs to max_length - 1 tokens"
        );
        // With a bigram ban, after 0 1 1 the pair (1, 1) may not repeat: EOS wins.
        let out = greedy_search(
            &mut table(),
            1,
            &GenerationConfig {
                no_repeat_ngram_size: 2,
                ..config(1)
            },
        );
        assert_eq!(out[0].tokens, vec![1, 1, 3]);
    }

    #[test]
    fn greedy_min_length_delays_eos() {
        let mut t = table();
        t.table[1] = [0.0, 1.0, 0.0, 2.0]; // after 1, EOS wins.
        let out = greedy_search(&mut t, 1, &config(1));
        assert_eq!(out[0].tokens, vec![1, 3]);
        let mut t = table();
        t.table[1] = [0.0, 1.0, 0.0, 2.0];
        let min_length = GenerationConfig {
            min_length: 4,
            ..config(1)
        };
        let out = greedy_search(&mut t, 1, &min_length);
        // EOS banned while the length (start included) is < 4: 0 1 1 1, then EOS.
        assert_eq!(out[0].tokens, vec![1, 1, 1, 3]);
    }

    #[test]
    fn beam_search_prefers_the_better_normalised_hypothesis() {
        // Two beams; with length_penalty 0 the raw sum wins. The 2-token hypothesis
        // "2 EOS" scores log p(2|0) + log p(3|2); compare with greedy-ish "1 ...".
        let cfg = GenerationConfig {
            length_penalty: 0.0,
            early_stopping: EarlyStopping::Never,
            ..config(2)
        };
        let out = beam_search(&mut table(), 1, &cfg);
        let mut probe = table();
        let lp = |t: &mut Table, prev: usize, tok: usize| {
            let mut row = t.table[prev].to_vec();
            log_softmax(&mut row);
            row[tok]
        };
        let two_eos = lp(&mut probe, 0, 2) + lp(&mut probe, 2, 3);
        let one_eos = lp(&mut probe, 0, 1) + lp(&mut probe, 1, 3);
        let expect = if two_eos > one_eos {
            vec![2, 3]
        } else {
            vec![1, 3]
        };
        assert_eq!(out[0].tokens, expect);
        let score = out[0].score.unwrap();
        assert!((score - two_eos.max(one_eos)).abs() < 1e-5, "score {score}");
    }
}
