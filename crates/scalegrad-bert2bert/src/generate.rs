//! Generation with transformers' `generate()` semantics: greedy search and beam search
//! with `no_repeat_ngram_size`, `min_length`, `max_length`, `length_penalty` and
//! `early_stopping`, for batched sources with attention masks.
//!
//! Decoding is data plus pure functions. [`GenerationSettings`] is what a checkpoint's
//! files say (every knob optional, as in transformers' `GenerationConfig`);
//! [`GenerationConfig`] is the resolved, validated set of knobs a run uses, with explicit
//! builder overrides. The logits processors ([`no_repeat_ngram_bans`],
//! [`ban_eos_before_min_length`], [`log_softmax`]) are functions on host rows, and the
//! search algorithms ([`greedy_search`], [`beam_search`]) drive any [`Stepper`] (the model
//! with its key/value cache in [`generate`], toy logit tables in the tests).
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

use std::path::Path;

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;
use crate::model::Bert2Bert;

/// transformers' stand-in for minus infinity in beam bookkeeping.
const NEG_LARGE: f32 = -1.0e9;

/// When beam search stops for a source (transformers' `early_stopping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    /// `early_stopping=False` (default): stop when no running beam can plausibly beat
    /// the finished ones, estimated at the current length.
    #[default]
    Heuristic,
    /// `early_stopping=True`: stop as soon as `num_beams` hypotheses are finished.
    True,
    /// `early_stopping="never"`: estimate the best possible score at `max_length` (with a
    /// positive length penalty), the canonical beam search.
    Never,
}

impl EarlyStopping {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(true) => Some(Self::True),
            Value::Bool(false) => Some(Self::Heuristic),
            Value::String(s) if s == "never" => Some(Self::Never),
            _ => None,
        }
    }

    /// The value as transformers writes it (`true`, `false` or `"never"`).
    pub fn to_json(self) -> Value {
        match self {
            Self::True => Value::Bool(true),
            Self::Heuristic => Value::Bool(false),
            Self::Never => Value::from("never"),
        }
    }

    /// Parses `true`, `false` or `never` (command-line spelling).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "true" => Some(Self::True),
            "false" => Some(Self::Heuristic),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// Generation knobs as stored in a checkpoint (`config.json` or
/// `generation_config.json`); `None` means "not set", so transformers' global defaults
/// apply when resolving.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationSettings {
    /// Maximum sequence length, decoder start token included.
    pub max_length: Option<usize>,
    /// Minimum sequence length, decoder start token included.
    pub min_length: Option<usize>,
    /// Maximum number of generated tokens (takes precedence over `max_length`).
    pub max_new_tokens: Option<usize>,
    /// Minimum number of generated tokens.
    pub min_new_tokens: Option<usize>,
    /// Beam width; 1 is greedy search.
    pub num_beams: Option<usize>,
    /// Size of n-grams that may occur only once (0 = off).
    pub no_repeat_ngram_size: Option<usize>,
    /// Exponent of the length normalisation of finished beams.
    pub length_penalty: Option<f64>,
    /// Beam-search stopping rule.
    pub early_stopping: Option<EarlyStopping>,
    /// First decoder token.
    pub decoder_start_token_id: Option<u32>,
    /// Fallback for the first decoder token.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    pub eos_token_id: Option<Vec<u32>>,
    /// Padding token (fills finished rows).
    pub pad_token_id: Option<u32>,
}

/// Generation keys this implementation does not implement, with the value that makes
/// each of them a no-op (transformers writes these defaults into legacy configs).
const NEUTRAL_SETTINGS: &[(&str, &str)] = &[
    ("do_sample", "false"),
    ("num_beam_groups", "1"),
    ("diversity_penalty", "0.0"),
    ("repetition_penalty", "1.0"),
    ("encoder_repetition_penalty", "1.0"),
    ("encoder_no_repeat_ngram_size", "0"),
    ("bad_words_ids", "null"),
    ("force_words_ids", "null"),
    ("forced_bos_token_id", "null"),
    ("forced_eos_token_id", "null"),
    ("num_return_sequences", "1"),
    ("exponential_decay_length_penalty", "null"),
    ("suppress_tokens", "null"),
    ("begin_suppress_tokens", "null"),
    ("sequence_bias", "null"),
    ("guidance_scale", "null"),
    ("constraints", "null"),
    ("remove_invalid_values", "false"),
];

impl GenerationSettings {
    /// The generation settings transformers 5.24 derives from a model's `config.json`
    /// when there is no `generation_config.json` (`GenerationConfig.from_model_config`):
    /// each key takes its top-level value when that is set and not null, otherwise the
    /// decoder sub-config's value (legacy configs store transformers 4 defaults there).
    pub fn from_model_config(config: &Value) -> Result<Self, Error> {
        let empty = Map::new();
        let top = config.as_object().unwrap_or(&empty);
        let decoder = top
            .get("decoder")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut merged = Map::new();
        for (key, value) in decoder {
            merged.insert(key.clone(), value.clone());
        }
        for (key, value) in top {
            if !value.is_null() && key != "decoder" && key != "encoder" {
                merged.insert(key.clone(), value.clone());
            }
        }
        Self::from_json_map(&merged, "config.json")
    }

    /// The settings of a `generation_config.json` (transformers uses it alone when it
    /// exists; `config.json`'s generation keys are then ignored).
    pub fn from_generation_config(config: &Value) -> Result<Self, Error> {
        let empty = Map::new();
        Self::from_json_map(
            config.as_object().unwrap_or(&empty),
            "generation_config.json",
        )
    }

    /// Reads a model directory as transformers' `from_pretrained` does:
    /// `generation_config.json` if present, else the generation keys of `config.json`.
    pub fn from_model_dir(dir: &Path) -> Result<Self, Error> {
        let generation = dir.join("generation_config.json");
        if generation.exists() {
            Self::from_generation_config(&read_json(&generation)?)
        } else {
            Self::from_model_config(&read_json(&dir.join("config.json"))?)
        }
    }

    fn from_json_map(map: &Map<String, Value>, file: &str) -> Result<Self, Error> {
        for (key, neutral) in NEUTRAL_SETTINGS {
            if let Some(value) = map.get(*key) {
                let neutral: Value = serde_json::from_str(neutral).expect("valid literal");
                let same = match (value.as_f64(), neutral.as_f64()) {
                    (Some(a), Some(b)) => a == b,
                    _ => *value == neutral,
                };
                if !same {
                    return Err(Error::Config {
                        field: format!("{file}: {key}"),
                        value: value.to_string(),
                        reason: format!(
                            "not implemented (only greedy and beam search with no_repeat_ngram_size, \
                             min/max length, length_penalty and early_stopping); use {neutral}"
                        ),
                    });
                }
            }
        }
        let bad = |key: &str, value: &Value, what: &str| Error::Config {
            field: format!("{file}: {key}"),
            value: value.to_string(),
            reason: format!("expected {what}"),
        };
        let count = |key: &str| -> Result<Option<usize>, Error> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| bad(key, v, "a non-negative integer")),
            }
        };
        let token = |key: &str| -> Result<Option<u32>, Error> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| bad(key, v, "a token id")),
            }
        };
        let eos_token_id = match map.get("eos_token_id") {
            None | Some(Value::Null) => None,
            Some(Value::Array(ids)) => Some(
                ids.iter()
                    .map(|v| {
                        v.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad("eos_token_id", v, "token ids"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(v) => Some(vec![
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| bad("eos_token_id", v, "a token id or a list of them"))?,
            ]),
        };
        let length_penalty = match map.get("length_penalty") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .ok_or_else(|| bad("length_penalty", v, "a number"))?,
            ),
        };
        let early_stopping = match map.get("early_stopping") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                EarlyStopping::from_json(v)
                    .ok_or_else(|| bad("early_stopping", v, "true, false or \"never\""))?,
            ),
        };
        Ok(Self {
            max_length: count("max_length")?,
            min_length: count("min_length")?,
            max_new_tokens: count("max_new_tokens")?,
            min_new_tokens: count("min_new_tokens")?,
            num_beams: count("num_beams")?,
            no_repeat_ngram_size: count("no_repeat_ngram_size")?,
            length_penalty,
            early_stopping,
            decoder_start_token_id: token("decoder_start_token_id")?,
            bos_token_id: token("bos_token_id")?,
            eos_token_id,
            pad_token_id: token("pad_token_id")?,
        })
    }

    /// Applies transformers' global defaults (`max_length` 20 new tokens, `min_length`
    /// 0, greedy, no n-gram ban, `length_penalty` 1, `early_stopping` false) and checks
    /// the result.
    pub fn resolve(&self) -> Result<GenerationConfig, Error> {
        // Decoder prompt length: the start token only.
        const PROMPT: usize = 1;
        let max_length = match (self.max_new_tokens, self.max_length) {
            (Some(new), _) => new + PROMPT,
            (None, Some(max)) => max,
            (None, None) => 20 + PROMPT,
        };
        let mut min_length = self.min_length.unwrap_or(0);
        if let Some(new) = self.min_new_tokens {
            min_length = min_length.max(new + PROMPT);
        }
        let decoder_start_token_id = self
            .decoder_start_token_id
            .or(self.bos_token_id)
            .ok_or_else(|| {
                Error::Generation(
                    "neither decoder_start_token_id nor bos_token_id is set".to_string(),
                )
            })?;
        let eos_token_ids = self.eos_token_id.clone().unwrap_or_default();
        let pad_token_id = self.pad_token_id.or(eos_token_ids.first().copied());
        let config = GenerationConfig {
            max_length,
            min_length,
            num_beams: self.num_beams.unwrap_or(1),
            no_repeat_ngram_size: self.no_repeat_ngram_size.unwrap_or(0),
            length_penalty: self.length_penalty.unwrap_or(1.0),
            early_stopping: self.early_stopping.unwrap_or_default(),
            decoder_start_token_id,
            eos_token_ids,
            pad_token_id,
        };
        config.validate()?;
        Ok(config)
    }
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// The resolved decoding knobs of a run. Build it with
/// [`GenerationSettings::resolve`] (checkpoint defaults) and override with the
/// `with_*` methods; every run should print it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    /// Maximum length, decoder start token included (at most `max_length - 1` new tokens).
    pub max_length: usize,
    /// EOS is banned while the sequence (start token included) is shorter than this.
    pub min_length: usize,
    /// Beam width; 1 is greedy search.
    pub num_beams: usize,
    /// n-grams of this size may occur only once per hypothesis (0 = off).
    pub no_repeat_ngram_size: usize,
    /// Finished beams are ranked by `sum log p / generated_len ^ length_penalty`.
    pub length_penalty: f64,
    /// Beam-search stopping rule.
    pub early_stopping: EarlyStopping,
    /// First decoder input token.
    pub decoder_start_token_id: u32,
    /// End-of-sequence tokens (empty: generate until `max_length`).
    pub eos_token_ids: Vec<u32>,
    /// Padding token used by transformers to fill finished rows (not part of the output).
    pub pad_token_id: Option<u32>,
}

impl GenerationConfig {
    /// Greedy decoding up to `max_length` with the given start and EOS tokens.
    pub fn greedy(max_length: usize, decoder_start_token_id: u32, eos: Option<u32>) -> Self {
        Self {
            max_length,
            min_length: 0,
            num_beams: 1,
            no_repeat_ngram_size: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            decoder_start_token_id,
            eos_token_ids: eos.into_iter().collect(),
            pad_token_id: eos,
        }
    }

    /// Overrides the beam width.
    pub fn with_num_beams(mut self, n: usize) -> Self {
        self.num_beams = n;
        self
    }

    /// Overrides the maximum length (start token included).
    pub fn with_max_length(mut self, n: usize) -> Self {
        self.max_length = n;
        self
    }

    /// Overrides the minimum length (start token included).
    pub fn with_min_length(mut self, n: usize) -> Self {
        self.min_length = n;
        self
    }

    /// Overrides the n-gram ban size (0 = off).
    pub fn with_no_repeat_ngram_size(mut self, n: usize) -> Self {
        self.no_repeat_ngram_size = n;
        self
    }

    /// Overrides the length penalty.
    pub fn with_length_penalty(mut self, x: f64) -> Self {
        self.length_penalty = x;
        self
    }

    /// Overrides the stopping rule.
    pub fn with_early_stopping(mut self, rule: EarlyStopping) -> Self {
        self.early_stopping = rule;
        self
    }

    /// Overrides the EOS tokens (empty: never stop before `max_length`).
    pub fn with_eos_token_ids(mut self, ids: Vec<u32>) -> Self {
        self.eos_token_ids = ids;
        self
    }

    /// The settings with `overrides` applied: the one place a run config's
    /// `[evaluation]` and the `summarize` command's flags change a checkpoint's decoding.
    pub fn with_overrides(self, overrides: &GenerationOverrides) -> Self {
        let o = overrides;
        Self {
            num_beams: o.num_beams.unwrap_or(self.num_beams),
            max_length: o.max_length.unwrap_or(self.max_length),
            min_length: o.min_length.unwrap_or(self.min_length),
            no_repeat_ngram_size: o.no_repeat_ngram_size.unwrap_or(self.no_repeat_ngram_size),
            length_penalty: o.length_penalty.unwrap_or(self.length_penalty),
            early_stopping: o.early_stopping.unwrap_or(self.early_stopping),
            ..self
        }
    }

    /// Checks that `max_length` fits the decoder's `max_position_embeddings`.
    pub fn check_positions(&self, decoder_positions: usize) -> Result<(), Error> {
        if self.max_length > decoder_positions {
            return Err(Error::Generation(format!(
                "max_length {} exceeds the decoder's {decoder_positions} positions",
                self.max_length
            )));
        }
        Ok(())
    }

    /// Checks the knobs for values transformers would reject or that make no sense.
    pub fn validate(&self) -> Result<(), Error> {
        if self.num_beams == 0 {
            return Err(Error::Generation(
                "num_beams must be at least 1".to_string(),
            ));
        }
        if self.max_length < 2 {
            return Err(Error::Generation(format!(
                "max_length {} leaves no room for a token after the decoder start token \
                 (max_length counts it; use at least 2)",
                self.max_length
            )));
        }
        if !self.length_penalty.is_finite() {
            return Err(Error::Generation(format!(
                "length_penalty must be finite, got {}",
                self.length_penalty
            )));
        }
        Ok(())
    }
}

/// Decoding settings given on top of a checkpoint's own: a run config's `[evaluation]`
/// keys or the `summarize` command's flags. `None` keeps the checkpoint's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationOverrides {
    /// Beam width.
    pub num_beams: Option<usize>,
    /// Maximum length, decoder start token included.
    pub max_length: Option<usize>,
    /// Minimum length, decoder start token included.
    pub min_length: Option<usize>,
    /// n-gram ban size (0 = off).
    pub no_repeat_ngram_size: Option<usize>,
    /// Beam length penalty.
    pub length_penalty: Option<f64>,
    /// Beam-search stopping rule.
    pub early_stopping: Option<EarlyStopping>,
}

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

/// Tokens that would complete an n-gram already present in `history` (the fairseq /
/// transformers `NoRepeatNGramLogitsProcessor` rule): for every earlier window of `n`
/// tokens whose first `n - 1` tokens equal the last `n - 1` tokens of `history`, its
/// last token is banned. `history` includes the decoder start token. One pass over the
/// history, no allocation beyond the result.
pub fn no_repeat_ngram_bans(history: &[u32], n: usize) -> Vec<u32> {
    let len = history.len();
    if n == 0 || len < n {
        return Vec::new();
    }
    let prefix = &history[len + 1 - n..];
    let mut banned: Vec<u32> = (0..=len - n)
        .filter(|&start| history[start..start + n - 1] == *prefix)
        .map(|start| history[start + n - 1])
        .collect();
    banned.sort_unstable();
    banned.dedup();
    banned
}

/// Sets the listed tokens to minus infinity (ids outside the row are ignored, as
/// transformers does for ids beyond the LM head).
pub fn ban_tokens(row: &mut [f32], tokens: &[u32]) {
    for &t in tokens {
        if let Some(x) = row.get_mut(t as usize) {
            *x = f32::NEG_INFINITY;
        }
    }
}

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

/// Index of the largest value; the first one on ties (as `torch.argmax`).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
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

// ---------------------------------------------------------------------------------------
// The model driver.

/// The model plus its cache, as a [`Stepper`].
struct ModelStepper<'a> {
    model: &'a Bert2Bert,
    cache: crate::DecoderCache,
    device: Device,
    vocab: usize,
}

impl Stepper for ModelStepper<'_> {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn step(&mut self, tokens: &[u32]) -> Vec<f32> {
        let ids = token_column(tokens, &self.device);
        let logits = self.model.decoder.step(ids, &mut self.cache);
        logits
            .try_into_vec_as::<f32>()
            .expect("the decoder produces f32 logits")
    }

    fn reorder(&mut self, rows: &[usize]) {
        self.cache.reorder(rows);
    }

    fn greedy_tokens(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        config: &GenerationConfig,
    ) -> Vec<u32> {
        if self.model.execution().is_host() {
            return OnHost(self).greedy_tokens(tokens, histories, config);
        }
        let scores = self.device_scores(tokens, histories, config, false);
        read_ids(scores.argmax(1))
    }

    fn beam_candidates(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        scores: &[f32],
        beams: usize,
        keep: usize,
        config: &GenerationConfig,
    ) -> Vec<Vec<(usize, f32)>> {
        if self.model.execution().is_host() {
            return OnHost(self).beam_candidates(tokens, histories, scores, beams, keep, config);
        }
        let rows = tokens.len();
        let sources = rows / beams;
        let running =
            Tensor::<2>::from_data(TensorData::new(scores.to_vec(), [rows, 1]), &self.device);
        let totals = (self.device_scores(tokens, histories, config, true) + running)
            .reshape([sources, beams * self.vocab]);
        let (values, indices) = totals.topk_with_indices(keep, 1);
        let values: Vec<f32> = values
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 scores");
        let indices = read_ids(indices.reshape([sources * keep]));
        values
            .chunks_exact(keep)
            .zip(indices.chunks_exact(keep))
            .map(|(v, i)| {
                i.iter()
                    .map(|&i| i as usize)
                    .zip(v.iter().copied())
                    .collect()
            })
            .collect()
    }
}

impl ModelStepper<'_> {
    /// One decoder step on the device with the processors applied there:
    /// `[rows, vocab]` logits (log-probabilities when `log_probs`), with every n-gram
    /// ban and early EOS as minus infinity. The banned ids come from the host histories,
    /// padded with a spare column so that each row's indices are distinct.
    fn device_scores(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        config: &GenerationConfig,
        log_probs: bool,
    ) -> Tensor<2> {
        let ids = token_column(tokens, &self.device);
        let logits = self.model.decoder.step(ids, &mut self.cache);
        let mut scores = if log_probs {
            burn::tensor::activation::log_softmax(logits, 1)
        } else {
            logits
        };
        let bans: Vec<Vec<u32>> = histories
            .iter()
            .map(|history| {
                let mut banned = no_repeat_ngram_bans(history, config.no_repeat_ngram_size);
                if history.len() < config.min_length {
                    banned.extend(&config.eos_token_ids);
                }
                banned.retain(|&t| (t as usize) < self.vocab);
                banned
            })
            .collect();
        if bans.iter().any(|b| !b.is_empty()) {
            let rows = tokens.len();
            let width = bans.iter().map(Vec::len).max().unwrap_or(1);
            let mut index = Vec::with_capacity(rows * width);
            for banned in &bans {
                index.extend(banned.iter().map(|&t| t as i64));
                index.extend(std::iter::repeat_n(self.vocab as i64, width - banned.len()));
            }
            let index =
                Tensor::<2, Int>::from_data(TensorData::new(index, [rows, width]), &self.device);
            let spare = Tensor::zeros([rows, 1], &self.device);
            let fill = Tensor::full([rows, width], f32::NEG_INFINITY, &self.device);
            scores = Tensor::cat(vec![scores, spare], 1)
                .scatter(1, index, fill, IndexingUpdateOp::Assign)
                .narrow(1, 0, self.vocab);
        }
        scores
    }
}

/// One token per row as `[rows, 1]` ids: a decoding step's input.
fn token_column(tokens: &[u32], device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(ids, [tokens.len(), 1]), device)
}

/// The chosen ids of a device tensor (the step's one read back).
fn read_ids<const D: usize>(ids: Tensor<D, Int>) -> Vec<u32> {
    ids.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("integer ids")
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

/// A stepper seen with the trait's default (host) searches, for a stepper that
/// overrides them but takes the host route on some devices.
struct OnHost<'a, S>(&'a mut S);

impl<S: Stepper> Stepper for OnHost<'_, S> {
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn step(&mut self, tokens: &[u32]) -> Vec<f32> {
        self.0.step(tokens)
    }
    fn reorder(&mut self, rows: &[usize]) {
        self.0.reorder(rows)
    }
}

/// Generates one sequence per source with transformers' `generate()` semantics.
///
/// `source_ids` is `[B, S]`; `source_mask` (1 = token, 0 = padding) marks padded
/// positions of shorter sources (`None`: no padding). The encoder runs once per source;
/// beam search keeps the decoder's keys and values in a cache, so every step feeds one
/// token per beam.
pub fn generate(
    model: &Bert2Bert,
    source_ids: Tensor<2, Int>,
    source_mask: Option<Tensor<2, Int>>,
    config: &GenerationConfig,
) -> Result<Vec<Generated>, Error> {
    config.validate()?;
    let [sources, len] = source_ids.dims();
    if sources == 0 {
        return Ok(Vec::new());
    }
    let max_source = model.encoder.embeddings.max_positions();
    if len == 0 || len > max_source {
        return Err(Error::Generation(format!(
            "source length {len} is outside 1..={max_source} (the encoder's positions); truncate the input"
        )));
    }
    let max_target = model.decoder.embeddings.max_positions();
    config.check_positions(max_target)?;
    if let Some(mask) = &source_mask {
        if mask.dims() != [sources, len] {
            return Err(Error::Generation(format!(
                "source mask shape {:?} differs from the ids' [{sources}, {len}]",
                mask.dims()
            )));
        }
        let tokens: Vec<i64> = mask
            .clone()
            .sum_dim(1)
            .try_into_vec_as::<i64>()
            .map_err(|e| Error::Generation(format!("reading the source mask: {e}")))?;
        if let Some(row) = tokens.iter().position(|&n| n == 0) {
            return Err(Error::Generation(format!(
                "source {row} is empty (all padding)"
            )));
        }
    }
    let device = source_ids.device();
    let vocab = model.decoder.head.bias.dims()[0];
    let states = model.encoder.forward(source_ids, source_mask.clone());
    let cache = model.decoder.init_cache(
        states,
        source_mask,
        config.num_beams,
        (config.max_length + 1).min(max_target),
    );
    let mut stepper = ModelStepper {
        model,
        cache,
        device,
        vocab,
    };
    Ok(if config.num_beams == 1 {
        greedy_search(&mut stepper, sources, config)
    } else {
        beam_search(&mut stepper, sources, config)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(beams: usize) -> GenerationConfig {
        GenerationConfig::greedy(6, 0, Some(3)).with_num_beams(beams)
    }

    #[test]
    fn ngram_ban_blocks_tokens_that_would_repeat_a_trigram() {
        // History 0 1 2 1 2: the suffix (1, 2) occurred before followed by 1, so a
        // trigram ban forbids 1; the window starting at the suffix itself bans nothing.
        assert_eq!(no_repeat_ngram_bans(&[0, 1, 2, 1, 2], 3), vec![1]);
        // Bigram ban after 0 1 0: the suffix (0) was followed by 1.
        assert_eq!(no_repeat_ngram_bans(&[0, 1, 0], 2), vec![1]);
        // Too short for a complete n-gram: nothing banned.
        assert_eq!(no_repeat_ngram_bans(&[5, 6], 3), Vec::<u32>::new());
        // Unigram ban forbids every token seen so far.
        assert_eq!(no_repeat_ngram_bans(&[4, 2, 4], 1), vec![2, 4]);
        // Several earlier windows with the same prefix ban each continuation once.
        assert_eq!(no_repeat_ngram_bans(&[7, 1, 7, 2, 7], 2), vec![1, 2]);
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
        let out = greedy_search(&mut table(), 1, &config(1).with_no_repeat_ngram_size(2));
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
        let out = greedy_search(&mut t, 1, &config(1).with_min_length(4));
        // EOS banned while the length (start included) is < 4: 0 1 1 1, then EOS.
        assert_eq!(out[0].tokens, vec![1, 1, 1, 3]);
    }

    #[test]
    fn beam_search_prefers_the_better_normalised_hypothesis() {
        // Two beams; with length_penalty 0 the raw sum wins. The 2-token hypothesis
        // "2 EOS" scores log p(2|0) + log p(3|2); compare with greedy-ish "1 ...".
        let cfg = config(2)
            .with_length_penalty(0.0)
            .with_early_stopping(EarlyStopping::Never);
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

    #[test]
    fn settings_follow_transformers_precedence_and_defaults() {
        let config = serde_json::json!({
            "decoder_start_token_id": 101, "eos_token_id": 102, "num_beams": 4,
            "max_length": null,
            "decoder": {"max_length": 20, "min_length": 3, "num_beams": 1,
                        "no_repeat_ngram_size": 0, "do_sample": false, "repetition_penalty": 1.0}
        });
        let s = GenerationSettings::from_model_config(&config).unwrap();
        assert_eq!(s.num_beams, Some(4), "top level wins");
        assert_eq!(
            s.max_length,
            Some(20),
            "a null top-level value falls back to the decoder"
        );
        assert_eq!(s.min_length, Some(3));
        let g = s.resolve().unwrap();
        assert_eq!(g.pad_token_id, Some(102), "pad falls back to eos");
        assert_eq!(g.early_stopping, EarlyStopping::Heuristic);
        let defaults = GenerationSettings {
            decoder_start_token_id: Some(1),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(defaults.max_length, 21, "20 new tokens by default");
    }

    #[test]
    fn unsupported_generation_settings_are_errors() {
        let config = serde_json::json!({"decoder_start_token_id": 1, "do_sample": true});
        let e = GenerationSettings::from_model_config(&config)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("do_sample") && e.contains("not implemented"),
            "{e}"
        );
        let config =
            serde_json::json!({"decoder_start_token_id": 1, "early_stopping": "sometimes"});
        let e = GenerationSettings::from_model_config(&config)
            .unwrap_err()
            .to_string();
        assert!(e.contains("early_stopping"), "{e}");
        let e = GenerationSettings::default()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("decoder_start_token_id"), "{e}");
        let e = config_error(GenerationConfig::greedy(1, 0, None));
        assert!(e.contains("max_length 1"), "{e}");
    }

    fn config_error(c: GenerationConfig) -> String {
        c.validate().unwrap_err().to_string()
    }
}
