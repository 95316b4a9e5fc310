//! Parquet files to token ids, in parallel, through the on-disk cache.
//!
//! One thread streams record batches out of the parquet files (decompression, column
//! projection, null checks, character counts) while the calling thread tokenises the
//! previous batch on rayon's thread pool (both cores here): GPT-2 style byte-level BPE
//! tokenizers go through the ids-only path of `fastbpe.rs` (one contiguous chunk
//! of rows and one piece memo per thread), every other tokenizer through `tokenizers`'
//! `encode_batch_fast`, which spreads the rows over the same pool. Each row is tokenised on its own
//! and the ids of the rows are stored back to back in reading order: that is how the
//! language-modelling stream is "the concatenation of the rows" (as HF `run_clm.py`
//! does: tokenise rows, then concatenate ids; no separator is inserted, since WikiText
//! rows carry their own `\n` and empty rows add no tokens).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::cache::{
    self, CacheKey, FORMAT_VERSION, FileIdentity, RaggedTokens, TokenArray, TokenizedColumn,
    TokenizedSplit,
};
use crate::error::{Error, Result};
use crate::fastbpe::{FastBpe, PieceCache};
use crate::reader::{ParquetTextReader, TextBatch, count_rows};
use crate::tokenizer::tokenizer_fingerprint;

/// One column to tokenise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The column name.
    pub name: String,
    /// Keep at most this many ids of each row (the first ones); `None` keeps all.
    pub max_tokens: Option<usize>,
}

/// What to tokenise and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizeSpec {
    /// The columns, in the order they are stored.
    pub columns: Vec<ColumnSpec>,
    /// Let the tokenizer's post-processor add its special tokens (BERT's `[CLS]` /
    /// `[SEP]`; nothing for GPT-2). The shaping code adds them itself, so this is
    /// normally false.
    pub add_special_tokens: bool,
}

impl TokenizeSpec {
    /// The whole `text` column, no special tokens: language modelling.
    pub fn lm_text() -> Self {
        Self {
            columns: vec![ColumnSpec {
                name: "text".into(),
                max_tokens: None,
            }],
            add_special_tokens: false,
        }
    }

    /// `article` and `highlights`, truncated to `max_article` and `max_highlights` ids,
    /// no special tokens: summarisation (see [`crate::seq2seq`] for how many ids to keep).
    pub fn summarization(max_article: usize, max_highlights: usize) -> Self {
        Self {
            columns: vec![
                ColumnSpec {
                    name: "article".into(),
                    max_tokens: Some(max_article),
                },
                ColumnSpec {
                    name: "highlights".into(),
                    max_tokens: Some(max_highlights),
                },
            ],
            add_special_tokens: false,
        }
    }
}

/// Whether and where the tokenised split is cached, and whether progress is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizeOptions {
    /// The cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Show a progress bar on standard error (drawn only on a terminal; elsewhere one
    /// summary line is printed instead).
    pub progress: bool,
    /// Rows per batch handed to the tokenizer at once.
    pub batch_rows: usize,
    /// Use the ids-only path for GPT-2 style byte-level BPE tokenizers
    /// ([`crate::fastbpe`]); false forces `tokenizers`' full pipeline (same ids,
    /// slower).
    pub fast_bpe: bool,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        Self {
            cache_dir: Some(cache::default_cache_dir()),
            progress: true,
            batch_rows: 4096,
            fast_bpe: true,
        }
    }
}

/// How the tokenised split was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// No cache folder was given.
    Disabled,
    /// Read from this cache file.
    Hit(PathBuf),
    /// Tokenised and written to this new cache file.
    Built(PathBuf),
    /// The cache file was damaged: tokenised again and rewritten.
    Rebuilt {
        /// The cache file.
        path: PathBuf,
        /// What was wrong with the old one.
        reason: String,
    },
}

impl CacheStatus {
    /// The cache file, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Disabled => None,
            Self::Hit(p) | Self::Built(p) | Self::Rebuilt { path: p, .. } => Some(p),
        }
    }
}

/// The cache key of tokenising `files` with `tokenizer` under `spec`.
pub fn cache_key(
    files: &[PathBuf],
    tokenizer: &Tokenizer,
    spec: &TokenizeSpec,
) -> Result<CacheKey> {
    Ok(CacheKey {
        format: FORMAT_VERSION,
        files: files
            .iter()
            .map(|f| FileIdentity::of(f))
            .collect::<Result<_>>()?,
        tokenizer: tokenizer_fingerprint(tokenizer)?,
        settings: serde_json::to_value(spec).expect("settings serialise"),
    })
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The cache file for `key` in `dir`: `<label>-<digest>.sgtok`.
pub fn cache_path(dir: &Path, label: &str, key: &CacheKey) -> PathBuf {
    dir.join(format!("{}-{}.sgtok", sanitize(label), key.digest()))
}

/// Tokenises the columns of `files` (or reads them from the cache). `label` names the
/// split in the cache file name and in messages, e.g. `wikitext-2-raw-v1-test`.
///
/// A damaged cache file is rebuilt with a warning on standard error; a split with no
/// rows is an error ([`Error::EmptySplit`]).
pub fn tokenize_files(
    files: &[PathBuf],
    tokenizer: &Tokenizer,
    spec: &TokenizeSpec,
    options: &TokenizeOptions,
    label: &str,
) -> Result<(TokenizedSplit, CacheStatus)> {
    if spec.columns.is_empty() {
        return Err(Error::Config("no columns to tokenise".into()));
    }
    if files.is_empty() {
        return Err(Error::NoFiles {
            what: label.to_string(),
            hint: "the file list is empty".into(),
        });
    }
    let columns: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    // Check every file's schema before any work, and learn the row count.
    let total_rows = count_rows(files, &columns)?;
    if total_rows == 0 {
        return Err(Error::EmptySplit {
            what: format!(
                "{label} ({})",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let key = cache_key(files, tokenizer, spec)?;
    let mut rebuild_reason = None;
    let path = options
        .cache_dir
        .as_ref()
        .map(|dir| cache_path(dir, label, &key));
    if let Some(path) = path.as_ref().filter(|p| p.exists()) {
        match cache::load(path) {
            Ok(split) if split.key == key => {
                return Ok((split, CacheStatus::Hit(path.clone())));
            }
            Ok(_) => rebuild_reason = Some("its key differs from the inputs'".to_string()),
            Err(err) => rebuild_reason = Some(err.to_string()),
        }
        if let Some(reason) = &rebuild_reason {
            eprintln!(
                "warning: rebuilding token cache {}: {reason}",
                path.display()
            );
        }
    }
    let split = tokenize_uncached(files, tokenizer, spec, options, label, total_rows, key)?;
    let status = match (path, rebuild_reason) {
        (None, _) => CacheStatus::Disabled,
        (Some(path), reason) => {
            cache::save(&path, &split)?;
            match reason {
                None => CacheStatus::Built(path),
                Some(reason) => CacheStatus::Rebuilt { path, reason },
            }
        }
    };
    Ok((split, status))
}

fn progress_bar(show: bool, rows: u64, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} rows ({per_sec}, ETA {eta})",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("tokenising {label}"));
    bar
}

fn tokenize_uncached(
    files: &[PathBuf],
    tokenizer: &Tokenizer,
    spec: &TokenizeSpec,
    options: &TokenizeOptions,
    label: &str,
    total_rows: u64,
    key: CacheKey,
) -> Result<TokenizedSplit> {
    let start = Instant::now();
    for file in files {
        crate::hub::verify_blob(file)?;
    }
    let columns: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    let reader = ParquetTextReader::new(files.to_vec(), &columns).batch_rows(options.batch_rows);
    let bar = progress_bar(options.progress, total_rows, label);
    let n_cols = spec.columns.len();
    let mut ids: Vec<Vec<u32>> = vec![Vec::new(); n_cols];
    let mut offsets: Vec<Vec<u64>> = vec![vec![0u64]; n_cols];
    let mut chars = vec![0u64; n_cols];
    let fast = options
        .fast_bpe
        .then(|| FastBpe::new(tokenizer, spec.add_special_tokens))
        .flatten();
    let caches: Vec<Mutex<PieceCache>> = (0..rayon::current_num_threads().max(1))
        .map(|_| Mutex::new(PieceCache::new()))
        .collect();

    // The reader thread decodes the next batch (and counts its characters) while this
    // thread tokenises the current one. Two batches in flight bound the memory.
    let (tx, rx) = sync_channel::<Result<(TextBatch, Vec<u64>)>>(2);
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            for batch in reader {
                let item = batch.map(|b| {
                    let counts = b
                        .columns
                        .iter()
                        .map(|c| c.iter().map(|s| s.chars().count() as u64).sum())
                        .collect();
                    (b, counts)
                });
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        for item in rx {
            let (batch, counts) = item?;
            for (c, column) in batch.columns.iter().enumerate() {
                chars[c] += counts[c];
                let texts: Vec<&str> = column.iter().collect();
                let limit = spec.columns[c].max_tokens.unwrap_or(usize::MAX);
                if let Some(fast) = &fast {
                    // Contiguous chunks, one per thread, each with its own piece memo.
                    let chunk = texts.len().div_ceil(caches.len()).max(1);
                    let parts: Vec<Result<(Vec<u32>, Vec<usize>)>> = texts
                        .par_chunks(chunk)
                        .enumerate()
                        .map(|(i, rows)| {
                            let mut cache = caches[i].lock().expect("a worker panicked");
                            let mut part = Vec::new();
                            let mut lens = Vec::with_capacity(rows.len());
                            for row in rows {
                                let before = part.len();
                                fast.encode(tokenizer, row, &mut cache, &mut part)?;
                                lens.push(part.len() - before);
                            }
                            Ok((part, lens))
                        })
                        .collect();
                    for part in parts {
                        let (part, lens) = part?;
                        let mut at = 0;
                        for len in lens {
                            ids[c].extend_from_slice(&part[at..at + len.min(limit)]);
                            offsets[c].push(ids[c].len() as u64);
                            at += len;
                        }
                    }
                    continue;
                }
                let encodings = tokenizer
                    .encode_batch_fast(texts, spec.add_special_tokens)
                    .map_err(|e| {
                        Error::tokenizer(
                            format!(
                                "encoding `{}` rows {}.. of {}",
                                spec.columns[c].name,
                                batch.first_row,
                                files[batch.file].display()
                            ),
                            e,
                        )
                    })?;
                for encoding in &encodings {
                    let row = encoding.get_ids();
                    ids[c].extend_from_slice(&row[..row.len().min(limit)]);
                    offsets[c].push(ids[c].len() as u64);
                }
            }
            bar.inc(batch.num_rows() as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let vocab_size = tokenizer.get_vocab_size(true);
    let columns: Vec<TokenizedColumn> = spec
        .columns
        .iter()
        .zip(ids.into_iter().zip(offsets).zip(chars))
        .map(|(spec, ((ids, offsets), chars))| TokenizedColumn {
            name: spec.name.clone(),
            chars,
            rows: RaggedTokens {
                offsets,
                tokens: TokenArray::pack(ids, vocab_size),
            },
        })
        .collect();
    // Pack every column with the same width (save() requires it).
    let columns = if columns.iter().any(|c| c.rows.tokens.width() == 4) {
        columns
            .into_iter()
            .map(|mut c| {
                if let TokenArray::U16(v) = &c.rows.tokens {
                    c.rows.tokens = TokenArray::U32(v.iter().map(|&t| t as u32).collect());
                }
                c
            })
            .collect()
    } else {
        columns
    };
    if options.progress {
        let tokens: usize = columns.iter().map(|c| c.rows.tokens.len()).sum();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "tokenised {label}: {total_rows} rows, {tokens} tokens in {secs:.1} s ({:.0} tokens/s)",
            tokens as f64 / secs.max(1e-9)
        );
    }
    Ok(TokenizedSplit {
        key,
        vocab_size,
        columns,
    })
}
