//! The crate's one error type.
//!
//! Every variant names the file, column, repository or setting involved and, where there
//! is one, the fix, so that a CLI printing the error chain tells the user what to do.

use std::path::PathBuf;

/// Anything that can go wrong while finding, reading, tokenising or shaping data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A parquet file could not be opened or decoded.
    #[error(
        "{} is not a readable parquet file ({source}); it may be truncated or corrupt: \
         delete it and fetch it again (`scalegrad fetch dataset ...`)",
        path.display()
    )]
    Parquet {
        /// The parquet file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// The pages of a parquet file could not be decoded.
    #[error(
        "{}: decoding rows failed ({source}); the file may be truncated or corrupt: delete it \
         and fetch it again (`scalegrad fetch dataset ...`)",
        path.display()
    )]
    Decode {
        /// The parquet file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// A text column holds bytes that are not UTF-8.
    #[error(
        "{}: row {row} of `{column}` is not valid UTF-8 text; write the column as UTF-8 \
         strings, or, for a downloaded file, delete it and fetch it again (`scalegrad fetch \
         dataset ...`)",
        path.display()
    )]
    InvalidUtf8 {
        /// The parquet file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The row's index within the file (0-based).
        row: u64,
    },

    /// A required column is missing from a parquet file.
    #[error(
        "{}: no column `{column}` (expected a {expected} column; the file has: {found})",
        path.display()
    )]
    MissingColumn {
        /// The parquet file.
        path: PathBuf,
        /// The column that was asked for.
        column: String,
        /// The accepted type, in words.
        expected: &'static str,
        /// The columns the file has, with their types.
        found: String,
    },

    /// A column has a type other than a string type.
    #[error(
        "{}: column `{column}` has type {found}, expected {expected}",
        path.display()
    )]
    ColumnType {
        /// The parquet file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The accepted types, in words.
        expected: &'static str,
        /// The type found (the parquet type, or `string`).
        found: String,
    },

    /// A row has a null where text is required.
    #[error(
        "{}: row {row} has a null `{column}`, but every row needs text (an empty string is \
         fine)",
        path.display()
    )]
    NullText {
        /// The parquet file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The row's index within the file (0-based).
        row: u64,
    },

    /// A split was found but holds no rows.
    #[error("{what} has no rows")]
    EmptySplit {
        /// The split, in words (dataset, config, split and files).
        what: String,
    },

    /// No parquet file was found for a split.
    #[error("no parquet files for {what}: {hint}")]
    NoFiles {
        /// The split, in words.
        what: String,
        /// Where we looked and what to do.
        hint: String,
    },

    /// A dataset name, config or split that this crate does not know.
    #[error("{0}")]
    UnknownDataset(String),

    /// The hub cannot be reached (or is switched off) and the cache does not hold what
    /// was asked for.
    #[error(
        "{what} is not in the Hugging Face cache at {} and the hub cannot be used ({reason}).\n\
         To fill the cache, on a machine with network run\n    {command}\n\
         (or `huggingface-cli download ...` / `hf download ...` with the same repo and files), \
         then copy that machine's HF_HOME (default ~/.cache/huggingface) here and point HF_HOME \
         (or HF_HUB_CACHE at its hub/ folder) to it; or pass a local directory instead of a hub \
         id",
        cache_dir.display()
    )]
    NotCached {
        /// What was asked for, in words.
        what: String,
        /// The cache directory searched (the `hub` folder).
        cache_dir: PathBuf,
        /// Why the hub was not used: offline mode, a network error, or no `hub` feature.
        reason: String,
        /// A command that fills the cache.
        command: String,
    },

    /// The hub answered, but not with what was asked for.
    #[error("hub repository {repo}: {message}")]
    Hub {
        /// The repository id.
        repo: String,
        /// What went wrong.
        message: String,
    },

    /// A tokenizer could not be loaded, built, trained or run.
    #[error("tokenizer {context}: {source}")]
    Tokenizer {
        /// What was being done (usually with the file name).
        context: String,
        /// The underlying error.
        #[source]
        source: tokenizers::Error,
    },

    /// A JSON file could not be parsed.
    #[error("{}: invalid JSON ({source})", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// A setting has a value that cannot be used.
    #[error("invalid setting: {0}")]
    Config(String),

    /// A file of the HF cache does not match the SHA-256 its blob is named after.
    #[error(
        "{} is damaged: its SHA-256 is {found}, but the HF cache names it {expected}; delete \
         the file (and the snapshot link to it) and fetch it again",
        path.display()
    )]
    Checksum {
        /// The file (as given, usually a snapshot link).
        path: PathBuf,
        /// The SHA-256 in the blob's name.
        expected: String,
        /// The SHA-256 of the content.
        found: String,
    },

    /// A token cache file is damaged. Callers normally never see this: the cache is
    /// rebuilt with a warning.
    #[error("token cache {}: {reason}", path.display())]
    CorruptCache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a tokenizers error with what was being done.
    pub fn tokenizer(context: impl Into<String>, source: tokenizers::Error) -> Self {
        Self::Tokenizer {
            context: context.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
