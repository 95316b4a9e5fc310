//! `metrics.json`: one finished run's metrics and provenance.

use scalegrad_metrics::{ContinuationReport, NextTokenReport, RougeReport, SummaryReport};
use serde::{Deserialize, Serialize};

/// Everything `metrics.json` holds. Its presence marks a run finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// `open-ended` or `summarization`.
    pub experiment: String,
    /// The run's name (its folder).
    pub run: String,
    /// The config's one-line description.
    pub description: String,
    /// The training objective.
    pub objective: ObjectiveRecord,
    /// Which model was evaluated.
    pub checkpoint: CheckpointRecord,
    /// Where the numbers came from.
    pub provenance: Provenance,
    /// The open-ended experiment's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_ended: Option<OpenEndedMetrics>,
    /// The summarisation experiment's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarization: Option<SummarizationMetrics>,
}

impl RunMetrics {
    /// Whether the evaluated model is the one training started from (a "before
    /// fine-tuning" row).
    pub fn is_initial(&self) -> bool {
        self.checkpoint.source == CheckpointSource::Initial
    }
}

/// The training objective as `metrics.json` records it (the `[objective]` table of the
/// run's config: `kind` and its parameter).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ObjectiveRecord {
    /// Maximum likelihood.
    Mle,
    /// ScaleGrad.
    #[serde(rename = "scalegrad")]
    ScaleGrad {
        /// Scale of novel tokens' probabilities.
        gamma: f64,
    },
    /// Token-level unlikelihood.
    Unlikelihood {
        /// Weight of the unlikelihood term.
        alpha: f64,
    },
}

impl ObjectiveRecord {
    /// The label of tables and figures: `MLE`, `ScaleGrad γ=0.2`, `UL α=1.0`.
    pub fn label(&self) -> String {
        match self {
            Self::Mle => "MLE".to_string(),
            Self::ScaleGrad { gamma } => format!("ScaleGrad γ={gamma:?}"),
            Self::Unlikelihood { alpha } => format!("UL α={alpha:?}"),
        }
    }

    /// ScaleGrad's gamma, with MLE as gamma = 1 (the two coincide there); `None` for
    /// unlikelihood.
    pub fn gamma(&self) -> Option<f64> {
        match self {
            Self::Mle => Some(1.0),
            Self::ScaleGrad { gamma } => Some(*gamma),
            Self::Unlikelihood { .. } => None,
        }
    }
}

/// Which model the metrics are of.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The best checkpoint of training, or the initial model of an evaluation-only run.
    pub source: CheckpointSource,
    /// The optimiser step of the checkpoint (0 for the initial model).
    pub step: usize,
    /// The validation NLL that made it the best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_nll: Option<f64>,
}

/// Where the evaluated model came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointSource {
    /// The best checkpoint of the run's training.
    Best,
    /// The model the config names, untrained (`run.eval_only`).
    Initial,
}

/// Where the numbers came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The config file as given on the command line.
    pub config_file: String,
    /// The git revision the binary was built from (`-dirty` with uncommitted changes).
    #[serde(default = "unknown")]
    pub git_revision: String,
    /// The burn backend.
    pub backend: String,
    /// The precision of training and evaluation (`f32`, `bf16`, `f16`); runs from before
    /// mixed precision computed in f32.
    #[serde(default = "f32_name")]
    pub precision: String,
    /// The device as burn prints it (with the CPU matrix kernels).
    pub device: String,
    /// The GPU (or software adapter) a GPU backend ran on, as its driver names it
    /// (`NVIDIA H200`, `llvmpipe (LLVM 15.0.6, 256 bits)`); absent on CPU backends and in
    /// runs from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Seconds spent training (over every resumption).
    pub train_seconds: f64,
    /// Target tokens per second of training.
    pub train_tokens_per_s: f64,
    /// Seconds of the test evaluation.
    pub eval_seconds: f64,
    /// Seconds of the whole command.
    pub wall_seconds: f64,
    /// When the run finished (Unix seconds).
    pub finished_unix: u64,
}

fn unknown() -> String {
    "unknown".to_string()
}

fn f32_name() -> String {
    "f32".to_string()
}

/// Everything the open-ended evaluation reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenEndedMetrics {
    /// Teacher-forced metrics.
    pub next_token: NextTokenSection,
    /// One entry per decoding strategy.
    pub continuations: Vec<ContinuationSection>,
}

impl OpenEndedMetrics {
    /// The continuation metrics of the strategy named `decoding`.
    pub fn continuation(&self, decoding: &str) -> Option<&ContinuationSection> {
        self.continuations.iter().find(|c| c.decoding == decoding)
    }
}

/// Next-token metrics of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextTokenSection {
    /// Tokens per window.
    pub window: usize,
    /// Tokens between window starts (equal to `window`: non-overlapping).
    pub stride: usize,
    /// Windows evaluated.
    pub windows: usize,
    /// `exp(mean NLL)` over all scored targets (`null` in the file, NaN here, when it
    /// overflowed).
    #[serde(deserialize_with = "crate::files::nan_if_null")]
    pub perplexity: f64,
    /// acc, rep/wrep/human rep at each l, uniq.
    pub metrics: NextTokenReport,
}

/// Continuation metrics of one decoding strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContinuationSection {
    /// The strategy (`greedy`, `top-k3`, `top-p0.9`).
    pub decoding: String,
    /// Tokens of each prefix.
    pub prefix_len: usize,
    /// Tokens generated after each prefix.
    pub new_tokens: usize,
    /// Prefixes continued.
    pub count: usize,
    /// seq-rep-n and uniq-seq on token ids.
    pub token: ContinuationReport,
    /// The same on words of the decoded text.
    pub word: ContinuationReport,
    /// The human continuations (the test text after each prefix), on token ids.
    pub human_token: ContinuationReport,
    /// The human continuations, on words.
    pub human_word: ContinuationReport,
}

/// Everything the summarisation evaluation reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummarizationMetrics {
    /// Articles summarised.
    pub examples: usize,
    /// The generation settings used (the checkpoint's `generation_config.json` fields
    /// with the run's overrides).
    pub generation: serde_json::Value,
    /// How predicted summaries were split into sentences for ROUGE-Lsum.
    pub prediction_sentence_split: String,
    /// ROUGE-1/2/L/Lsum means and bootstrap intervals.
    pub rouge: RougeReport,
    /// Repetition and novel n-grams of the generated summaries.
    pub summaries: SummaryReport,
    /// The same for the reference highlights.
    pub references: SummaryReport,
}
