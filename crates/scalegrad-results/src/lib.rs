//! The files a finished scalegrad run leaves in its folder, as serde types shared by the
//! trainer that writes them and the report that reads them:
//!
//! - `metrics.json`: [`RunMetrics`] (what was trained, where the numbers came from, and the
//!   experiment's metrics),
//! - `samples.jsonl`: one [`ContinuationSample`] or [`SummarySample`] per line,
//! - `log.jsonl`: one [`Event`] per line.
//!
//! No burn: `xtask` links this crate without building a backend.

mod files;
pub mod log;
mod metrics;
mod samples;

pub use files::{ReadError, read_metrics, read_samples, to_jsonl};
pub use log::{Event, read_events};
pub use metrics::{
    CheckpointRecord, CheckpointSource, ContinuationSection, NextTokenSection, ObjectiveRecord,
    OpenEndedMetrics, Provenance, RunMetrics, SummarizationMetrics,
};
pub use samples::{ContinuationSample, SummarySample};
/// The metric reports nested in [`RunMetrics`], as `scalegrad-metrics` computes them.
pub use scalegrad_metrics::{
    BootstrapConfig, ContinuationReport, NextTokenReport, RepAtL, RougeReport, Score,
    SummaryReport, TypeReport,
};
