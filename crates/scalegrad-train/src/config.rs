//! Experiment configs: one TOML file per run, readable on its own.
//!
//! Every section rejects unknown keys, so a typo fails before any work starts with an
//! error naming the file, the line and the key. Values are validated by
//! [`RunConfig::validate`] (gamma ranges, positive sizes, splits present, ...); checks
//! that need the model's own config (block size against its positions) happen when the
//! model config is known, still before training starts.

use std::path::{Path, PathBuf};

use scalegrad_loss::ObjectiveConfig;
use scalegrad_ops::Precision;
use serde::{Deserialize, Serialize};

use crate::schedule::Decay;

/// A configuration problem, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong type.
    #[error("config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// toml's message, with line, column and key.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config {path}: `{key}`: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Dotted key, e.g. `objective.gamma`.
        key: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// Which of the paper's two experiments a run belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Language modelling and continuation (GPT-2 on WikiText).
    OpenEnded,
    /// Abstractive summarisation (BERT2BERT on CNN/DailyMail).
    Summarization,
}

impl Experiment {
    /// The name used in paths and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenEnded => "open-ended",
            Self::Summarization => "summarization",
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Identity and seed.
    pub run: RunSection,
    /// The model to start from.
    pub model: ModelSection,
    /// The dataset, splits and tokenisation sizes.
    pub data: DataSection,
    /// The training objective: `{ kind = "mle" }`, `{ kind = "scalegrad", gamma = 0.2 }`
    /// or `{ kind = "unlikelihood", alpha = 1.0 }`.
    pub objective: ObjectiveConfig,
    /// AdamW and the learning-rate schedule.
    pub optimizer: OptimizerSection,
    /// Steps, batches, validation and checkpoints.
    pub training: TrainingSection,
    /// Test-set evaluation.
    #[serde(default)]
    pub evaluation: EvaluationSection,
}

/// `[run]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Which experiment this run belongs to.
    pub experiment: Experiment,
    /// The run's name within the experiment (`mle`, `sg0.2`, ...): its folder name.
    pub name: String,
    /// Seed of model initialisation, data order, dropout and sampling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// A sentence for the report.
    #[serde(default)]
    pub description: String,
    /// Evaluate the starting checkpoint without training (the "before fine-tuning" row).
    #[serde(default)]
    pub eval_only: bool,
}

fn default_seed() -> u64 {
    42
}

/// `[model]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A hub id (`distilgpt2`), a local model directory, or `"scratch"` to initialise
    /// randomly from `[model.scratch]`.
    pub source: String,
    /// Hub revision (branch, tag or commit) when `source` is a hub id.
    #[serde(default)]
    pub revision: Option<String>,
    /// For `source = "scratch"`: the model's config, with the keys of the Hugging Face
    /// `config.json` of the architecture (GPT-2: `n_layer`, `n_embd`, ...;
    /// BERT2BERT: `hidden_size`, `num_hidden_layers`, ... shared by encoder and decoder).
    #[serde(default)]
    pub scratch: Option<toml::Table>,
    /// Where the tokenizer comes from.
    #[serde(default)]
    pub tokenizer: TokenizerSection,
}

/// `[model.tokenizer]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSection {
    /// A hub id or directory holding `tokenizer.json` (or `vocab.txt`); defaults to the
    /// model's source.
    #[serde(default)]
    pub source: Option<String>,
    /// Train a tokenizer on the training split instead (the demo does this).
    #[serde(default)]
    pub train: Option<TrainTokenizer>,
}

/// `[model.tokenizer.train]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTokenizer {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Minimum pair frequency for a merge.
    #[serde(default = "default_min_frequency")]
    pub min_frequency: u64,
}

fn default_min_frequency() -> u64 {
    2
}

/// `[data]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `wikitext` or `cnn_dailymail`.
    pub dataset: String,
    /// Hub config (`wikitext-103-raw-v1`, `3.0.0`) or a label for local data.
    pub config: String,
    /// Read parquet files from this directory instead of the hub: `datasets/...` for the
    /// demo, relative to the workspace root or absolute.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Training split.
    #[serde(default = "default_train")]
    pub train_split: String,
    /// Validation split (checkpoint selection).
    #[serde(default = "default_valid")]
    pub valid_split: String,
    /// Test split (final evaluation).
    #[serde(default = "default_test")]
    pub test_split: String,
    /// Language modelling: tokens per training window (the authors used 300).
    #[serde(default)]
    pub block_size: Option<usize>,
    /// Summarisation: article tokens kept (including special tokens).
    #[serde(default)]
    pub max_source_length: Option<usize>,
    /// Summarisation: highlight tokens kept (including special tokens).
    #[serde(default)]
    pub max_target_length: Option<usize>,
    /// Use at most this many training examples/windows (`None`: all).
    #[serde(default)]
    pub max_train_examples: Option<usize>,
    /// Use at most this many validation examples/windows per evaluation.
    #[serde(default)]
    pub max_valid_examples: Option<usize>,
}

fn default_train() -> String {
    "train".into()
}
fn default_valid() -> String {
    "validation".into()
}
fn default_test() -> String {
    "test".into()
}

/// `[optimizer]`: AdamW with decoupled weight decay, warmup and decay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay, applied to weight matrices and embeddings only (not to
    /// biases and LayerNorm parameters, as Hugging Face's examples do).
    #[serde(default)]
    pub weight_decay: f64,
    /// Adam's beta1.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Adam's beta2.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Adam's epsilon.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Linear warmup steps.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Decay after warmup.
    #[serde(default)]
    pub decay: Decay,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    #[serde(default)]
    pub max_grad_norm: Option<f64>,
    /// Micro-batches accumulated per optimiser step.
    #[serde(default = "one")]
    pub grad_accumulation: usize,
}

fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn one() -> usize {
    1
}

/// What selects the best checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectBy {
    /// Lowest validation perplexity (language modelling).
    ValidPerplexity,
    /// Lowest validation loss (the training objective on the validation split).
    ValidLoss,
}

/// `[training]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Optimiser steps.
    pub steps: usize,
    /// Examples (windows or article/summary pairs) per micro-batch.
    pub batch_size: usize,
    /// Validate every this many optimiser steps (and at the end).
    pub eval_every: usize,
    /// Log the training loss every this many optimiser steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Write a resumable checkpoint every this many steps (default: at each validation).
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    /// MiB of `[rows, len, vocab]` f32 logits the LM head and the loss compute at once in
    /// training and validation; larger batches are cut into groups of rows (the results
    /// do not depend on it; default 512). Keeps every logits buffer under wgpu's 2 GiB
    /// limit on one buffer; lower it when the device runs out of memory.
    #[serde(default = "default_chunk_mib")]
    pub chunk_mib: usize,
    /// How the best checkpoint is chosen.
    #[serde(default = "default_select")]
    pub select_by: SelectBy,
    /// The type of the products in training and evaluation: `"f32"` (default), `"bf16"`
    /// or `"f16"` (with dynamic loss scaling); parameters, optimiser state, softmax,
    /// LayerNorm and the losses stay f32. `--precision` overrides it.
    #[serde(default)]
    pub precision: Precision,
}

fn default_log_every() -> usize {
    10
}
fn default_select() -> SelectBy {
    SelectBy::ValidPerplexity
}

/// A decoding strategy for continuations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DecodingSpec {
    /// Argmax at every step.
    Greedy,
    /// Sample from the `k` most likely tokens.
    TopK {
        /// How many tokens are kept.
        k: usize,
    },
    /// Nucleus sampling.
    TopP {
        /// Cumulative probability kept.
        p: f64,
    },
}

impl DecodingSpec {
    /// `greedy`, `top-k3`, `top-p0.9`.
    pub fn label(&self) -> String {
        match self {
            Self::Greedy => "greedy".into(),
            Self::TopK { k } => format!("top-k{k}"),
            Self::TopP { p } => format!("top-p{p}"),
        }
    }
}

/// `[evaluation]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSection {
    /// Open-ended: tokens per teacher-forced evaluation window (the authors: 1024).
    #[serde(default = "default_eval_window")]
    pub window: usize,
    /// Open-ended: evaluate at most this many windows of the test split.
    #[serde(default)]
    pub max_windows: Option<usize>,
    /// Open-ended: prefix tokens given to the model.
    #[serde(default = "default_prefix")]
    pub prefix_len: usize,
    /// Open-ended: tokens generated after each prefix.
    #[serde(default = "default_continuation")]
    pub continuation_len: usize,
    /// Open-ended: at most this many prefixes.
    #[serde(default)]
    pub max_continuations: Option<usize>,
    /// Open-ended: decoding strategies, each evaluated separately.
    #[serde(default = "default_decoding")]
    pub decoding: Vec<DecodingSpec>,
    /// Summarisation: at most this many test articles.
    #[serde(default)]
    pub max_examples: Option<usize>,
    /// Summarisation: beams (default: the checkpoint's `num_beams`).
    #[serde(default)]
    pub num_beams: Option<usize>,
    /// Summarisation: maximum summary length (default: the checkpoint's).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Summarisation: minimum summary length (default: the checkpoint's).
    #[serde(default)]
    pub min_length: Option<usize>,
    /// Summarisation: n-gram size that may not repeat (default: the checkpoint's).
    #[serde(default)]
    pub no_repeat_ngram_size: Option<usize>,
    /// Summarisation: beam length penalty (default: the checkpoint's).
    #[serde(default)]
    pub length_penalty: Option<f64>,
    /// Examples per generation batch.
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// Open-ended: MiB of `[positions, vocab]` f32 logits the next-token evaluation
    /// computes at once; a batch's positions are cut into chunks that fit (results do not
    /// depend on it). Keeps a window of 1024 at batch 32 (3.3 GB of GPT-2 logits) under
    /// wgpu's 2 GiB limit on one buffer; lower it when the device runs out of memory.
    #[serde(default = "default_chunk_mib")]
    pub chunk_mib: usize,
    /// ROUGE with the Porter stemmer (rouge_score's `use_stemmer`).
    #[serde(default = "yes")]
    pub rouge_stemmer: bool,
    /// Bootstrap resamples for ROUGE confidence intervals.
    #[serde(default = "default_bootstrap")]
    pub bootstrap_samples: usize,
}

fn default_eval_window() -> usize {
    1024
}
fn default_prefix() -> usize {
    50
}
fn default_continuation() -> usize {
    100
}
fn default_decoding() -> Vec<DecodingSpec> {
    vec![DecodingSpec::Greedy]
}
fn default_eval_batch() -> usize {
    8
}
fn default_chunk_mib() -> usize {
    512
}
fn yes() -> bool {
    true
}
fn default_bootstrap() -> usize {
    1000
}

/// Whether `name` is a safe single folder name: ASCII letters, digits, `-`, `_`, and
/// dots that are neither first nor last (so never `.`, `..` or a hidden folder).
pub fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The allowed values of a numeric key ([`RunConfig::key_ranges`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// Integers `lo..=hi`.
    Int(u64, u64),
    /// Reals in `lo..=hi` (`open_low`: `lo` itself excluded; `open_high`: `hi` excluded).
    Real {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
        /// Whether `lo` itself is excluded.
        open_low: bool,
        /// Whether `hi` itself is excluded.
        open_high: bool,
    },
}

fn real(lo: f64, hi: f64) -> Range {
    Range::Real {
        lo,
        hi,
        open_low: false,
        open_high: false,
    }
}

/// `(lo, hi]`: positive reals up to `hi`.
fn positive(hi: f64) -> Range {
    Range::Real {
        lo: 0.0,
        hi,
        open_low: true,
        open_high: false,
    }
}

/// A value of one key: `None` for an optional key left out.
#[derive(Clone, Copy)]
enum Value {
    Int(Option<u64>),
    Real(Option<f64>),
}

fn int(v: usize) -> Value {
    Value::Int(Some(v as u64))
}

fn opt_int(v: Option<usize>) -> Value {
    Value::Int(v.map(|v| v as u64))
}

/// Largest count or interval accepted (steps, examples, windows): far beyond any
/// real run, small enough to catch a typo of a few extra digits.
const MAX_COUNT: u64 = 1_000_000_000_000;
/// Largest length in tokens accepted (block, window, source, summary).
const MAX_TOKENS: u64 = 1 << 20;
/// Largest batch, beam count or micro-batch count accepted.
const MAX_BATCH: u64 = 1 << 16;

impl Default for EvaluationSection {
    fn default() -> Self {
        toml::from_str("").expect("every evaluation key has a default")
    }
}

/// Keys that may change when a run resumes: they affect evaluation, logging, the run's
/// label or how a step is laid out in memory, never the trained weights. Everything else
/// (data, model, tokenizer, objective, optimiser, schedule, batch, steps, validation
/// cadence, seed) is part of what the checkpoints mean.
pub const RESUMABLE_KEYS: &[&str] = &[
    "run.name",
    "run.description",
    "run.eval_only",
    "data.test_split",
    "training.log_every",
    "training.checkpoint_every",
    "training.chunk_mib",
    "evaluation",
];

impl RunConfig {
    /// The keys that shape training, flattened to dotted names (`optimizer.lr`), with
    /// their values: what a checkpoint records and `--resume` compares.
    pub fn training_keys(&self) -> serde_json::Map<String, serde_json::Value> {
        fn flatten(
            prefix: &str,
            value: serde_json::Value,
            out: &mut serde_json::Map<String, serde_json::Value>,
        ) {
            if RESUMABLE_KEYS.contains(&prefix) {
                return;
            }
            match value {
                serde_json::Value::Object(map) if !map.is_empty() => {
                    for (key, value) in map {
                        let name = if prefix.is_empty() {
                            key
                        } else {
                            format!("{prefix}.{key}")
                        };
                        flatten(&name, value, out);
                    }
                }
                other => {
                    out.insert(prefix.to_string(), other);
                }
            }
        }
        let mut out = serde_json::Map::new();
        flatten(
            "",
            serde_json::to_value(self).expect("a parsed config serialises"),
            &mut out,
        );
        out
    }

    /// The training keys whose values differ between a checkpoint's record (`saved`) and
    /// this config, as `key: saved -> now` lines (keys only one side has count too).
    pub fn changed_training_keys(
        &self,
        saved: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<String> {
        let now = self.training_keys();
        let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
        keys.sort();
        keys.dedup();
        let show =
            |v: Option<&serde_json::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
        keys.into_iter()
            .filter(|k| saved.get(*k) != now.get(*k))
            .map(|k| format!("{k}: {} -> {}", show(saved.get(k)), show(now.get(k))))
            .collect()
    }

    /// Every number of the config with its allowed range, section by section: counts,
    /// lengths, intervals, batch sizes, beams, probabilities and rates. What a table-driven
    /// test walks through (`tests/suite/configs.rs`).
    fn ranges(&self) -> Vec<(&'static str, Value, Range)> {
        let (d, o, t, e) = (
            &self.data,
            &self.optimizer,
            &self.training,
            &self.evaluation,
        );
        let tokens = |lo| Range::Int(lo, MAX_TOKENS);
        let counts = Range::Int(1, MAX_COUNT);
        let steps_lo = u64::from(!self.run.eval_only);
        let mut table = vec![
            (
                "model.tokenizer.train.vocab_size",
                opt_int(self.model.tokenizer.train.as_ref().map(|t| t.vocab_size)),
                Range::Int(64, 1 << 22),
            ),
            (
                "model.tokenizer.train.min_frequency",
                Value::Int(self.model.tokenizer.train.as_ref().map(|t| t.min_frequency)),
                Range::Int(1, MAX_COUNT),
            ),
            ("data.block_size", opt_int(d.block_size), tokens(2)),
            (
                "data.max_source_length",
                opt_int(d.max_source_length),
                tokens(3),
            ),
            (
                "data.max_target_length",
                opt_int(d.max_target_length),
                tokens(3),
            ),
            (
                "data.max_train_examples",
                opt_int(d.max_train_examples),
                counts,
            ),
            (
                "data.max_valid_examples",
                opt_int(d.max_valid_examples),
                Range::Int(1, MAX_COUNT),
            ),
            ("optimizer.lr", Value::Real(Some(o.lr)), positive(10.0)),
            (
                "optimizer.weight_decay",
                Value::Real(Some(o.weight_decay)),
                real(0.0, 10.0),
            ),
            (
                "optimizer.beta1",
                Value::Real(Some(o.beta1)),
                Range::Real {
                    lo: 0.0,
                    hi: 1.0,
                    open_low: false,
                    open_high: true,
                },
            ),
            (
                "optimizer.beta2",
                Value::Real(Some(o.beta2)),
                Range::Real {
                    lo: 0.0,
                    hi: 1.0,
                    open_low: false,
                    open_high: true,
                },
            ),
            ("optimizer.eps", Value::Real(Some(o.eps)), positive(1.0)),
            (
                "optimizer.warmup_steps",
                int(o.warmup_steps),
                Range::Int(0, MAX_COUNT),
            ),
            (
                "optimizer.max_grad_norm",
                Value::Real(o.max_grad_norm),
                positive(1e6),
            ),
            (
                "optimizer.grad_accumulation",
                int(o.grad_accumulation),
                Range::Int(1, MAX_BATCH),
            ),
            (
                "training.steps",
                int(t.steps),
                Range::Int(steps_lo, MAX_COUNT),
            ),
            (
                "training.batch_size",
                int(t.batch_size),
                Range::Int(1, MAX_BATCH),
            ),
            (
                "training.eval_every",
                int(t.eval_every),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "training.log_every",
                int(t.log_every),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "training.checkpoint_every",
                opt_int(t.checkpoint_every),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "training.chunk_mib",
                int(t.chunk_mib),
                Range::Int(1, 1 << 20),
            ),
            ("evaluation.window", int(e.window), tokens(2)),
            (
                "evaluation.max_windows",
                opt_int(e.max_windows),
                Range::Int(1, MAX_COUNT),
            ),
            ("evaluation.prefix_len", int(e.prefix_len), tokens(1)),
            (
                "evaluation.continuation_len",
                int(e.continuation_len),
                tokens(1),
            ),
            (
                "evaluation.max_continuations",
                opt_int(e.max_continuations),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "evaluation.max_examples",
                opt_int(e.max_examples),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "evaluation.num_beams",
                opt_int(e.num_beams),
                Range::Int(1, 256),
            ),
            ("evaluation.max_length", opt_int(e.max_length), tokens(2)),
            ("evaluation.min_length", opt_int(e.min_length), tokens(0)),
            (
                "evaluation.no_repeat_ngram_size",
                opt_int(e.no_repeat_ngram_size),
                Range::Int(0, 1024),
            ),
            (
                "evaluation.length_penalty",
                Value::Real(e.length_penalty),
                real(-100.0, 100.0),
            ),
            (
                "evaluation.batch_size",
                int(e.batch_size),
                Range::Int(1, MAX_BATCH),
            ),
            (
                "evaluation.chunk_mib",
                int(e.chunk_mib),
                Range::Int(1, 1 << 20),
            ),
            (
                "evaluation.bootstrap_samples",
                int(e.bootstrap_samples),
                Range::Int(1, 1_000_000),
            ),
        ];
        match self.objective {
            ObjectiveConfig::ScaleGrad { gamma } => {
                table.push(("objective.gamma", Value::Real(Some(gamma)), positive(1.0)));
            }
            ObjectiveConfig::Unlikelihood { alpha } => {
                table.push((
                    "objective.alpha",
                    Value::Real(Some(alpha)),
                    real(0.0, 100.0),
                ));
            }
            ObjectiveConfig::Mle => {}
        }
        for d in &e.decoding {
            match *d {
                DecodingSpec::TopK { k } => {
                    table.push(("evaluation.decoding", int(k), Range::Int(1, 1 << 22)));
                }
                DecodingSpec::TopP { p } => {
                    table.push(("evaluation.decoding", Value::Real(Some(p)), positive(1.0)));
                }
                DecodingSpec::Greedy => {}
            }
        }
        table
    }

    /// Every numeric key this config sets or could set, with its allowed range (keys of
    /// the objective and of `evaluation.decoding` as the config chooses them).
    pub fn key_ranges(&self) -> Vec<(&'static str, Range)> {
        self.ranges().into_iter().map(|(k, _, r)| (k, r)).collect()
    }

    /// Checks every value of [`RunConfig::ranges`]: one error naming the first key out of
    /// its range, with the range.
    fn check_ranges(&self, path: &Path) -> Result<(), ConfigError> {
        for (key, value, range) in self.ranges() {
            let problem = match (value, &range) {
                (Value::Int(Some(v)), Range::Int(lo, hi)) if v < *lo || v > *hi => {
                    Some(format!("{v} is outside {lo}..={hi}"))
                }
                (
                    Value::Real(Some(v)),
                    Range::Real {
                        lo,
                        hi,
                        open_low,
                        open_high,
                    },
                ) => {
                    let above = if *open_low { v > *lo } else { v >= *lo };
                    let below = if *open_high { v < *hi } else { v <= *hi };
                    (!(v.is_finite() && above && below)).then(|| {
                        format!(
                            "{v} is outside {}{lo}, {hi}{}",
                            if *open_low { "(" } else { "[" },
                            if *open_high { ")" } else { "]" }
                        )
                    })
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key: key.to_string(),
                    message: format!("out of range: {problem}"),
                });
            }
        }
        Ok(())
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })
    }

    /// Serialises the config back to TOML (what a run folder records).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a parsed config serialises")
    }

    /// Checks every value that does not need the model: ranges, sizes and the presence of
    /// the sizes the experiment needs.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if let Err(err) = self.objective.validate() {
            let key = match self.objective {
                ObjectiveConfig::ScaleGrad { .. } => "objective.gamma",
                ObjectiveConfig::Unlikelihood { .. } => "objective.alpha",
                ObjectiveConfig::Mle => "objective",
            };
            return Err(invalid(key, err.to_string()));
        }
        if !is_folder_name(&self.run.name) {
            return Err(invalid(
                "run.name",
                format!(
                    "{:?} must be one folder name: letters, digits, '-', '_' and dots inside \
                     the name (not first or last, so never \".\" or \"..\"); it names the \
                     run's folder, which --restart deletes",
                    self.run.name
                ),
            ));
        }
        match self.data.dataset.as_str() {
            "wikitext" | "cnn_dailymail" => {}
            other => {
                return Err(invalid(
                    "data.dataset",
                    format!(
                        "unknown dataset {other:?}; expected \"wikitext\" or \"cnn_dailymail\""
                    ),
                ));
            }
        }
        let expected_dataset = match self.run.experiment {
            Experiment::OpenEnded => "wikitext",
            Experiment::Summarization => "cnn_dailymail",
        };
        if self.data.dataset != expected_dataset {
            return Err(invalid(
                "data.dataset",
                format!(
                    "the {} experiment uses {expected_dataset:?}, not {:?}",
                    self.run.experiment.name(),
                    self.data.dataset
                ),
            ));
        }
        match self.run.experiment {
            Experiment::OpenEnded => match self.data.block_size {
                None => {
                    return Err(invalid(
                        "data.block_size",
                        "required for open-ended runs".into(),
                    ));
                }
                Some(0) | Some(1) => {
                    return Err(invalid(
                        "data.block_size",
                        "must be at least 2 tokens".into(),
                    ));
                }
                Some(_) => {}
            },
            Experiment::Summarization => {
                for (key, value) in [
                    ("data.max_source_length", self.data.max_source_length),
                    ("data.max_target_length", self.data.max_target_length),
                ] {
                    match value {
                        None => return Err(invalid(key, "required for summarization runs".into())),
                        Some(n) if n < 3 => {
                            return Err(invalid(key, format!("{n} leaves no room for text")));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        self.check_ranges(path)?;
        let (o, t, e) = (&self.optimizer, &self.training, &self.evaluation);
        if o.warmup_steps > t.steps {
            return Err(invalid(
                "optimizer.warmup_steps",
                format!("{} exceeds training.steps = {}", o.warmup_steps, t.steps),
            ));
        }
        if let (Some(min), Some(max)) = (e.min_length, e.max_length)
            && min > max
        {
            return Err(invalid(
                "evaluation.min_length",
                format!("{min} exceeds evaluation.max_length = {max}"),
            ));
        }
        if e.decoding.is_empty() {
            return Err(invalid(
                "evaluation.decoding",
                "list at least one strategy".into(),
            ));
        }
        if self.model.source == "scratch" && self.model.scratch.is_none() {
            return Err(invalid(
                "model.scratch",
                "source = \"scratch\" needs a [model.scratch] table with the architecture".into(),
            ));
        }
        Ok(())
    }
}
