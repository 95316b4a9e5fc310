//! Decoding settings and the pure functions that turn one row of next-token logits into
//! a token.
//!
//! Each function mirrors one of transformers' logits processors
//! (`generation/logits_process.py`) and is applied in the order `generate` applies them:
//! repetition penalty, no-repeat n-gram ban, then, when sampling, temperature, top-k and
//! top-p. They work on host `f32` rows, as the processors work on f32 scores, so their
//! outputs match transformers' on the same inputs (tested on toy rows recorded from
//! transformers). The generation loop in [`crate::generate`] reads one
//! `[batch, vocab]` logits block per step from the device and calls these.
//!
//! One deliberate difference: transformers' n-gram ban sees the padding of a padded
//! batch as tokens, so its result can depend on how much a prompt was padded. Here each
//! row's context is its real tokens only (prompt then generated), so a row decodes the
//! same alone or in any batch. The repetition penalty already ignores left padding in
//! transformers; here it ignores padding on either side.

use serde::{Deserialize, Serialize};

use crate::Gpt2Error;

/// How the next token is chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// The most likely token (`do_sample=False`); temperature, top-k and top-p do not
    /// apply, as in transformers.
    Greedy,
    /// A draw from the (tempered, top-k- and/or top-p-truncated) distribution
    /// (`do_sample=True`).
    Sample {
        /// Logits are divided by this (> 0); 1 leaves them as they are.
        temperature: f64,
        /// Keep only the `k` most likely tokens (ties with the k-th kept).
        top_k: Option<usize>,
        /// Keep the smallest set of most likely tokens whose probability reaches `p`.
        top_p: Option<f64>,
    },
}

impl Strategy {
    /// Top-k sampling with temperature 1.
    pub fn top_k(k: usize) -> Self {
        Self::Sample {
            temperature: 1.0,
            top_k: Some(k),
            top_p: None,
        }
    }

    /// Nucleus (top-p) sampling with temperature 1.
    pub fn top_p(p: f64) -> Self {
        Self::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: Some(p),
        }
    }

    /// The same strategy with another temperature (ignored by greedy decoding).
    pub fn with_temperature(self, t: f64) -> Self {
        match self {
            Self::Greedy => Self::Greedy,
            Self::Sample { top_k, top_p, .. } => Self::Sample {
                temperature: t,
                top_k,
                top_p,
            },
        }
    }
}

/// Which side of a batch's shorter prompts receives the padding. Both give the same
/// tokens per row; left padding is what transformers expects for decoder-only models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingSide {
    /// Padding before the prompt.
    #[default]
    Left,
    /// Padding after the prompt.
    Right,
}

/// Everything that decides a generation, as data (it serialises into run configs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// Maximum number of tokens to add to each prompt.
    pub max_new_tokens: usize,
    /// Greedy or sampling.
    pub strategy: Strategy,
    /// Seed of the sampler; row `i` of a batch draws from its own stream derived from
    /// `(seed, i)`.
    #[serde(default)]
    pub seed: u64,
    /// transformers' `repetition_penalty` (> 0): logits of tokens already in the row are
    /// divided by it when positive and multiplied when negative; 1 disables it.
    #[serde(default = "one")]
    pub repetition_penalty: f64,
    /// transformers' `no_repeat_ngram_size`: forbid tokens that would repeat an n-gram
    /// of the row; 0 disables it.
    #[serde(default)]
    pub no_repeat_ngram_size: usize,
    /// A row stops after producing any of these (the token is kept in its output).
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    /// Token fed at padding slots (never attended to); the first EOS id or 0 if `None`.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Where shorter prompts of a batch are padded.
    #[serde(default)]
    pub padding_side: PaddingSide,
}

fn one() -> f64 {
    1.0
}

impl GenerationConfig {
    /// Greedy decoding of up to `max_new_tokens` tokens, no stop token, no penalties.
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            strategy: Strategy::Greedy,
            seed: 0,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            eos_token_ids: vec![],
            pad_token_id: None,
            padding_side: PaddingSide::Left,
        }
    }

    /// Sets the strategy.
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the stop tokens.
    pub fn with_eos(mut self, eos_token_ids: Vec<u32>) -> Self {
        self.eos_token_ids = eos_token_ids;
        self
    }

    /// Sets the repetition penalty.
    pub fn with_repetition_penalty(mut self, penalty: f64) -> Self {
        self.repetition_penalty = penalty;
        self
    }

    /// Sets the no-repeat n-gram size.
    pub fn with_no_repeat_ngram_size(mut self, n: usize) -> Self {
        self.no_repeat_ngram_size = n;
        self
    }

    /// Sets the padding side.
    pub fn with_padding_side(mut self, side: PaddingSide) -> Self {
        self.padding_side = side;
        self
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), Gpt2Error> {
        let bad = |what: String| Err(Gpt2Error::Generation(what));
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(format!(
                "repetition_penalty must be a positive number (1 disables it), got {}",
                self.repetition_penalty
            ));
        }
        if let Strategy::Sample {
            temperature,
            top_k,
            top_p,
        } = &self.strategy
        {
            if !(temperature.is_finite() && *temperature > 0.0) {
                return bad(format!(
                    "temperature must be a positive number, got {temperature}"
                ));
            }
            if *top_k == Some(0) {
                return bad("top_k must be at least 1".to_string());
            }
            if let Some(p) = top_p
                && !(*p > 0.0 && *p <= 1.0)
            {
                return bad(format!("top_p must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: every token occurring in `context`
/// (counted once) gets `score / penalty` if its score is positive, `score * penalty`
/// otherwise.
pub fn apply_repetition_penalty(scores: &mut [f32], context: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = vec![false; scores.len()];
    for &token in context {
        let t = token as usize;
        if t < scores.len() && !seen[t] {
            seen[t] = true;
            let s = scores[t];
            scores[t] = if s < 0.0 { s * penalty } else { s / penalty };
        }
    }
}

/// The tokens transformers' `NoRepeatNGramLogitsProcessor` bans after `context`: every
/// token that followed an earlier occurrence of the last `n - 1` tokens, so that no
/// n-gram occurs twice. Empty when `n` is 0 or the context is shorter than `n`.
pub use scalegrad_ops::decoding::banned_ngram_tokens;

/// Sets the scores of [`banned_ngram_tokens`] to minus infinity.
pub fn ban_repeated_ngrams(scores: &mut [f32], context: &[u32], n: usize) {
    scalegrad_ops::decoding::ban_tokens(scores, &banned_ngram_tokens(context, n));
}

/// transformers' `TemperatureLogitsWarper`: `scores / temperature`.
pub fn apply_temperature(scores: &mut [f32], temperature: f32) {
    if temperature != 1.0 {
        for s in scores.iter_mut() {
            *s /= temperature;
        }
    }
}

/// transformers' `TopKLogitsWarper`: scores below the k-th largest become minus
/// infinity (ties with the k-th largest are kept).
pub fn top_k_filter(scores: &mut [f32], k: usize) {
    let k = k.max(1);
    if k >= scores.len() {
        return;
    }
    let mut sorted = scores.to_vec();
    // The k-th largest, found in O(V) rather than by a full sort.
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let threshold = *kth;
    for s in scores.iter_mut() {
        if *s < threshold {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// transformers' `TopPLogitsWarper`: sort ascending, remove the tokens whose cumulative
/// probability is at most `1 - top_p`, always keeping the most likely token. The
/// probabilities are an f32 softmax and the running sum is accumulated in f64 and
/// compared in f32, as torch's CPU `cumsum` does.
pub fn top_p_filter(scores: &mut [f32], top_p: f64) {
    if top_p >= 1.0 {
        return;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Ascending; equal scores keep index order.
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let sorted: Vec<f32> = order.iter().map(|&i| scores[i]).collect();
    let probs = softmax(&sorted);
    let threshold = (1.0 - top_p) as f32;
    let mut cumulative = 0.0f64;
    let last = order.len() - 1;
    for (rank, (&index, p)) in order.iter().zip(probs).enumerate() {
        cumulative += p as f64;
        if cumulative as f32 <= threshold && rank != last {
            scores[index] = f32::NEG_INFINITY;
        }
    }
}

/// Softmax in f32 with the maximum subtracted, as torch computes it.
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; scores.len()];
    }
    let exps: Vec<f32> = scores.iter().map(|&s| (s - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The index of the largest score (the first one on ties, like `torch.argmax`).
pub fn argmax(scores: &[f32]) -> u32 {
    scalegrad_ops::decoding::argmax(scores) as u32
}

/// A draw from `softmax(scores)` (minus-infinity scores are never drawn).
pub fn sample(scores: &[f32], rng: &mut SplitMix64) -> u32 {
    let probs = softmax(scores);
    let total: f64 = probs.iter().map(|&p| p as f64).sum();
    let target = rng.next_f64() * total;
    let mut cumulative = 0.0f64;
    let mut last_possible = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cumulative += p as f64;
            last_possible = i;
            if target < cumulative {
                return i as u32;
            }
        }
    }
    // Rounding left `target` at the very top: the last token with non-zero probability.
    last_possible as u32
}

/// Applies the processors of `config` to one row of logits, in transformers' order, and
/// returns the next token. `context` is the row's real tokens so far (prompt, then the
/// tokens generated).
pub fn next_token(
    scores: &mut [f32],
    context: &[u32],
    config: &GenerationConfig,
    rng: &mut SplitMix64,
) -> u32 {
    apply_repetition_penalty(scores, context, config.repetition_penalty as f32);
    ban_repeated_ngrams(scores, context, config.no_repeat_ngram_size);
    match &config.strategy {
        Strategy::Greedy => argmax(scores),
        Strategy::Sample {
            temperature,
            top_k,
            top_p,
        } => {
            apply_temperature(scores, *temperature as f32);
            if let Some(k) = top_k {
                top_k_filter(scores, *k);
            }
            if let Some(p) = top_p {
                top_p_filter(scores, *p);
            }
            sample(scores, rng)
        }
    }
}

/// A small seeded random number generator whose stream is fixed forever, so that a
/// seed gives the same samples on every platform and version (the `rand` crate's
/// `StdRng` does not promise that, and this crate keeps its dependencies to burn and
/// serde). SplitMix64 (Steele, Lea and Flood, 2014) passes BigCrush and is plenty for
/// drawing tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The generator of row `row` of a batch decoded with `seed`.
    pub fn for_row(seed: u64, row: usize) -> Self {
        let mut mixer = Self::new(seed ^ (row as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        Self::new(mixer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw from `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
