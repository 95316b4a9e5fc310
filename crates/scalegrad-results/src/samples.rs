//! `samples.jsonl`: a few model outputs kept for the report, one JSON object per line.

use serde::{Deserialize, Serialize};

/// One continuation of the open-ended experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContinuationSample {
    /// The strategy.
    pub decoding: String,
    /// Decoded prefix.
    pub prefix: String,
    /// Decoded continuation.
    pub continuation: String,
    /// Decoded human continuation.
    pub reference: String,
    /// Prefix ids.
    pub prefix_ids: Vec<u32>,
    /// Continuation ids.
    pub continuation_ids: Vec<u32>,
}

/// One summary of the summarisation experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummarySample {
    /// Row id of the example.
    pub id: String,
    /// The article's first 600 characters.
    pub article: String,
    /// Reference highlights.
    pub reference: String,
    /// Generated summary.
    pub summary: String,
    /// Generated ids.
    pub summary_ids: Vec<u32>,
}
