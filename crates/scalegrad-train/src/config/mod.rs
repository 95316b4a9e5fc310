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

mod checks;
mod resume;

pub use checks::Range;
pub use resume::{RESUMABLE_KEYS, changed_training_keys};

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
/// The default of `training.chunk_mib` and `evaluation.chunk_mib`.
pub const DEFAULT_CHUNK_MIB: usize = 512;

fn default_chunk_mib() -> usize {
    DEFAULT_CHUNK_MIB
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

impl Default for EvaluationSection {
    fn default() -> Self {
        toml::from_str("").expect("every evaluation key has a default")
    }
}

impl RunConfig {
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
}
