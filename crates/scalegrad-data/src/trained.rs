//! Tokenizers trained on a training split, cached by everything they depend on.
//!
//! A run that trains its tokenizer (the demo) shares it with the other runs of its
//! experiment: the tokenizer is kept in a folder named by a digest of the training
//! settings and of the identity (canonical path, size, modification time) of every
//! input file, the same [`FileIdentity`] the token caches use, so an edited or replaced
//! data file trains a new tokenizer instead of reusing a stale one. Training is
//! deterministic (see [`train_wordpiece_tokenizer`]), so a fresh folder gives the same
//! tokenizer.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokenizers::Tokenizer;

use crate::Result;
use crate::cache::FileIdentity;
use crate::reader::read_columns;
use crate::tokenizer::{
    load_tokenizer, save_tokenizer, train_bpe_tokenizer, train_wordpiece_tokenizer,
};

/// The kind of tokenizer to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// GPT-2's byte-level BPE.
    Bpe,
    /// BERT's uncased WordPiece.
    WordPiece,
}

impl TokenizerKind {
    fn name(self) -> &'static str {
        match self {
            Self::Bpe => "bpe",
            Self::WordPiece => "wordpiece",
        }
    }
}

/// What to train a tokenizer on and how.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenizerTraining {
    /// BPE or WordPiece.
    pub kind: TokenizerKind,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Minimum pair frequency for a merge.
    pub min_frequency: u64,
    /// The text columns of the parquet files to train on.
    pub columns: Vec<String>,
}

/// Version of the cache key below; a change retrains every cached tokenizer.
const KEY_VERSION: u32 = 2;

#[derive(Serialize)]
struct Key<'a> {
    version: u32,
    training: &'a TokenizerTraining,
    files: Vec<FileIdentity>,
}

/// The tokenizer `training` describes, trained on `files` or read back from its cache
/// folder under `cache_parent` (`_tokenizer-<kind>-<vocab>-<digest>`), with that folder.
pub fn trained_tokenizer(
    training: &TokenizerTraining,
    files: &[PathBuf],
    cache_parent: &Path,
) -> Result<(Tokenizer, PathBuf)> {
    let key = Key {
        version: KEY_VERSION,
        training,
        files: files
            .iter()
            .map(|f| FileIdentity::of(f))
            .collect::<Result<_>>()?,
    };
    let digest = crate::hex::short_digest(&key);
    let dir = cache_parent.join(format!(
        "_tokenizer-{}-{}-{digest}",
        training.kind.name(),
        training.vocab_size
    ));
    let file = dir.join("tokenizer.json");
    if file.exists() {
        return Ok((load_tokenizer(&dir)?, dir));
    }
    eprintln!(
        "training a {} tokenizer ({} entries) on the training split",
        training.kind.name(),
        training.vocab_size
    );
    let columns: Vec<&str> = training.columns.iter().map(String::as_str).collect();
    let texts = read_columns(files, &columns)?;
    let all = texts.into_iter().flatten();
    let tokenizer = match training.kind {
        TokenizerKind::Bpe => {
            train_bpe_tokenizer(all, training.vocab_size, training.min_frequency)?
        }
        TokenizerKind::WordPiece => {
            train_wordpiece_tokenizer(all, training.vocab_size, training.min_frequency)?
        }
    };
    save_tokenizer(&tokenizer, &file)?;
    Ok((tokenizer, dir))
}
