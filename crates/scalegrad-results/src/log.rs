//! `log.jsonl`: the events of a training run, one JSON object per line.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One line of `log.jsonl`. The numbers that can be non-finite in a logged event (a
/// gradient norm that overflowed, a rate or share over nothing, a validation loss that
/// diverged) read back NaN where the file holds `null`, which is what serde_json writes
/// for them. A training loss that is not finite stops the run before it is logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Training statistics averaged over the steps since the previous `train` event.
    Train {
        /// Optimiser step (1-based: the number of steps completed).
        step: usize,
        /// Mean training objective over the interval.
        loss: f64,
        /// Mean negative log-likelihood (cross-entropy) over the interval.
        nll: f64,
        /// Learning rate of the last step.
        lr: f64,
        /// Global gradient norm before clipping, at the last step.
        #[serde(deserialize_with = "crate::files::nan_if_null")]
        grad_norm: f64,
        /// Target tokens per second over the interval.
        #[serde(deserialize_with = "crate::files::nan_if_null")]
        tokens_per_s: f64,
        /// Fraction of scored targets that were novel tokens.
        #[serde(deserialize_with = "crate::files::nan_if_null")]
        novel_fraction: f64,
        /// f16 training: the loss scale after the interval's last step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loss_scale: Option<f64>,
        /// f16 training: steps of the interval skipped because their gradients
        /// overflowed (their loss still counts in the averages).
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped: u64,
    },
    /// A validation pass.
    Valid {
        /// Optimiser step.
        step: usize,
        /// Mean training objective on the validation examples.
        #[serde(deserialize_with = "crate::files::nan_if_null")]
        loss: f64,
        /// Mean negative log-likelihood.
        #[serde(deserialize_with = "crate::files::nan_if_null")]
        nll: f64,
        /// `exp(nll)`.
        #[serde(deserialize_with = "crate::files::nan_if_null")]
        perplexity: f64,
        /// Whether this became the best checkpoint.
        best: bool,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Event {
    /// The step the event belongs to.
    pub fn step(&self) -> usize {
        match self {
            Self::Train { step, .. } | Self::Valid { step, .. } => *step,
        }
    }
}

/// Reads every event of a log file. A last line that does not parse is what a crash in
/// the middle of an append leaves: it is dropped with a warning (the events it would
/// hold are replayed from the checkpoint). A bad line anywhere else is an error.
pub fn read_events(path: &Path) -> std::io::Result<Vec<Event>> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, &(number, line)) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if i + 1 == lines.len() => {
                eprintln!(
                    "warning: {}: dropping a torn last line (line {}, {} bytes), left by an \
                     interrupted write",
                    path.display(),
                    number + 1,
                    line.len()
                );
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "line {} is not a log event ({e}): {line:?}; the file was edited or \
                         damaged, so delete it or restore it (the run resumes either way)",
                        number + 1
                    ),
                ));
            }
        }
    }
    Ok(events)
}
