//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong when reading a configuration, loading or saving weights,
/// or asking for a generation the model cannot do. Each message names the file, field
/// or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum Gpt2Error {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or has a field of the wrong type.
    #[error("parsing the GPT-2 config {path}: {source}")]
    ConfigJson {
        /// The file (or `<string>` when parsed from memory).
        path: PathBuf,
        /// The serde error, with line and column.
        source: serde_json::Error,
    },
    /// A configuration value this implementation does not support or that is invalid.
    #[error("unsupported GPT-2 config: `{field}` = {value}: {reason}")]
    UnsupportedConfig {
        /// The `config.json` field.
        field: &'static str,
        /// Its value, as written in JSON.
        value: String,
        /// Why it is rejected and what is supported.
        reason: String,
    },
    /// The model directory holds no weights file.
    #[error(
        "no weights in {dir}: expected model.safetensors or pytorch_model.bin (found: {found})"
    )]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
        /// The files the directory holds.
        found: String,
    },
    /// burn-store could not read or write a checkpoint.
    #[error("{action} {path}: {message}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// The checkpoint file.
        path: PathBuf,
        /// burn-store's message.
        message: String,
    },
    /// The checkpoint's tensors do not match the configuration. Names are Hugging Face
    /// names (without the `transformer.` prefix).
    #[error(
        "{path} does not match its config.json:{}{}{}{}",
        list("missing tensors", missing),
        list("unexpected tensors", unexpected),
        list("tensors of the wrong shape", mis_shaped),
        list("other errors", other)
    )]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// Tensors the model needs that the file lacks.
        missing: Vec<String>,
        /// Tensors in the file that the model has no place for.
        unexpected: Vec<String>,
        /// `name: file [a, b], model [c, d]` for each tensor of the wrong shape.
        mis_shaped: Vec<String>,
        /// Any other per-tensor error burn-store reported (e.g. an integer tensor).
        other: Vec<String>,
    },
    /// The generation request is invalid (empty prompt, too long, bad sampling parameter).
    #[error("invalid generation request: {0}")]
    Generation(String),
    /// The device could not run the work behind a read (an allocation it refused, a lost
    /// device): burn's error, with its causes.
    #[error("the device failed while {during}: {message}")]
    Device {
        /// What was being done ("decoding").
        during: &'static str,
        /// burn's error and its causes.
        message: String,
    },
}

fn list(title: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("\n  {title} ({}): {}", items.len(), items.join(", "))
    }
}

impl Gpt2Error {
    /// The device failed at a read made while decoding (burn's error, with its causes).
    pub(crate) fn decoding_read(error: impl std::fmt::Debug) -> Self {
        Self::Device {
            during: "decoding",
            message: format!("{error:?}"),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsupported(
        field: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::UnsupportedConfig {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
