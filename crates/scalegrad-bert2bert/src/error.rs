//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong when reading a checkpoint, building the model or
/// generating. User mistakes (a bad path, a corrupt or mismatched file, an unsupported
/// config value, impossible generation settings) are reported here, never by a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (config.json, generation_config.json) could not be parsed.
    #[error("parsing {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// A config value this implementation does not support, or an inconsistent config.
    #[error("config {field} = {value}: {reason}")]
    Config {
        /// The JSON key, e.g. `decoder.hidden_act`.
        field: String,
        /// The offending value as written in the file.
        value: String,
        /// Why it is rejected and what is supported.
        reason: String,
    },

    /// The model directory holds no weights file this crate can read.
    #[error(
        "no weights in {dir}: expected model.safetensors or pytorch_model.bin \
         (sharded checkpoints are not supported)"
    )]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
    },

    /// The weights file could not be opened or decoded by burn-store.
    #[error("reading weights from {path}: {message}")]
    WeightsFile {
        /// The weights file.
        path: PathBuf,
        /// burn-store's description of the failure.
        message: String,
    },

    /// The weights file does not fit the model described by config.json. Every
    /// offending tensor is named with its Hugging Face key.
    #[error(
        "{path}: the weights do not fit config.json:{}",
        describe_mismatch(missing, unexpected, mismatched)
    )]
    WeightsMismatch {
        /// The weights file.
        path: PathBuf,
        /// HF keys the model needs that the file lacks.
        missing: Vec<String>,
        /// HF keys in the file that the model has no place for.
        unexpected: Vec<String>,
        /// Tensors whose shape or type differs: "key: expected [..], found [..]".
        mismatched: Vec<String>,
    },

    /// Saving the model as a Hugging Face directory failed.
    #[error("saving weights to {path}: {message}")]
    Save {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        message: String,
    },

    /// Impossible generation settings or inputs (e.g. `num_beams = 0`, an empty source).
    #[error("generation: {0}")]
    Generation(String),
}

fn describe_mismatch(missing: &[String], unexpected: &[String], mismatched: &[String]) -> String {
    let mut out = String::new();
    for (label, list) in [
        ("missing", missing),
        ("unexpected", unexpected),
        ("mismatched", mismatched),
    ] {
        if !list.is_empty() {
            out.push_str(&format!(
                "\n  {label} ({}): {}",
                list.len(),
                list.join(", ")
            ));
        }
    }
    out
}
