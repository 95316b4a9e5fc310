//! Generation settings with transformers' semantics: what a checkpoint's files say
//! ([`GenerationSettings`], every knob optional, as transformers' `GenerationConfig`),
//! the resolved, validated knobs a run uses ([`GenerationConfig`]) and the overrides a
//! run config or the command line applies to them ([`GenerationOverrides`]).
//!
//! Mirrors `transformers/generation/configuration_utils.py` (5.24): `max_length` and
//! `min_length` count the decoder start token; `early_stopping` is `true`, `false` or
//! `"never"` (see [`EarlyStopping`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;

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
/// [`GenerationSettings::resolve`] (checkpoint defaults) and override with
/// [`with_overrides`](Self::with_overrides) or by setting fields; every run should print
/// it.
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

#[cfg(test)]
mod tests {
    use super::*;

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
