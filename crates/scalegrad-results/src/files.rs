//! Reading and writing the files of a run folder.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::RunMetrics;

/// A run file that cannot be read or does not hold what its name says.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what scalegrad writes there.
    #[error(
        "{path}{}: {source}; the file was edited or damaged, or written by another version \
         of scalegrad",
        line.map_or(String::new(), |l| format!(" line {l}"))
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// The 1-based line of a JSON-lines file.
        line: Option<usize>,
        /// What did not parse.
        source: serde_json::Error,
    },
}

fn read_text(path: &Path) -> Result<String, ReadError> {
    std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a run's `metrics.json`.
pub fn read_metrics(path: &Path) -> Result<RunMetrics, ReadError> {
    serde_json::from_str(&read_text(path)?).map_err(|source| ReadError::Format {
        path: path.to_path_buf(),
        line: None,
        source,
    })
}

/// Reads a run's `samples.jsonl` as samples of type `T`.
pub fn read_samples<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ReadError> {
    read_text(path)?
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|source| ReadError::Format {
                path: path.to_path_buf(),
                line: Some(i + 1),
                source,
            })
        })
        .collect()
}

impl RunMetrics {
    /// The pretty-printed JSON of `metrics.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("run metrics serialise")
    }
}

/// JSON-lines text: one item per line (`samples.jsonl`, `log.jsonl`).
pub fn to_jsonl<T: Serialize>(items: &[T]) -> String {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item).expect("run files serialise"));
        text.push('\n');
    }
    text
}

/// A number that serde_json wrote as `null` (it writes every non-finite float so) reads
/// back as NaN instead of failing the whole file.
pub(crate) fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Option::<f64>::deserialize(deserializer).map(|v| v.unwrap_or(f64::NAN))
}
