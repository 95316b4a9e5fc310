//! The data layer of scalegrad: WikiText and CNN/DailyMail from Hugging Face hub
//! parquet files (or local files, or the generated demo corpora), tokenised fast and
//! cached, cut into language-modelling windows and summarisation examples, and batched
//! in a seeded, resumable order.
//!
//! It mirrors what the Python pipeline of the paper's experiments does with
//! `huggingface_hub` (the HF cache layout), `datasets` (parquet shards of
//! `Salesforce/wikitext` and `abisee/cnn_dailymail`), `transformers`'
//! `BertTokenizerFast` / `GPT2TokenizerFast` (`models/bert/tokenization_bert.py`), and
//! the `run_clm.py` / bert2bert fine-tuning scripts' `group_texts` and label shifting.
//! Batches are plain Rust data (`Vec<i64>` plus a shape): the CLI turns them into burn
//! tensors, so this crate does not depend on burn.
//!
//! Modules:
//! - [`hub`]: the HF cache (`models--org--name/snapshots/<rev>/...`), downloads through
//!   `hf-hub` (cargo feature `hub`), offline use (`HF_HUB_OFFLINE`, `HF_HOME`, ...).
//! - [`source`]: datasets by name, config and split; local folders.
//! - [`reader`]: streaming parquet string columns with schema checks.
//! - [`tokenizer`]: [`tokenizer::load_tokenizer`], the BERT WordPiece built from
//!   `vocab.txt`, tokenizer training.
//! - [`tokenize`] and [`cache`]: parallel tokenisation into a checksummed on-disk cache.
//! - [`lm`], [`seq2seq`], [`batch`]: windows, examples, seeded batches.
//! - the generator of the embedded demo corpora is the `scalegrad-demo` crate (outside
//!   this library).
//!
//! Stable entry points used by other crates (keep these names):
//! - `tokenizer::load_tokenizer(model_dir: &Path) -> Result<tokenizers::Tokenizer, Error>`
//! - `hub::HubConfig::from_env()`, `hub::resolve_model_dir(&hub, id_or_path, revision)`,
//!   `hub::resolve_model(&hub, repo_id, revision, required, optional)`,
//!   `hub::dataset_parquet_files(&hub, repo_id, config, split, revision)`
//!
//! Public re-exports at the crate root: [`Error`], [`Result`], [`HubConfig`],
//! [`load_tokenizer`], [`DatasetName`], [`DatasetSource`], [`TokenizeSpec`],
//! [`TokenizeOptions`], [`tokenize_files`], [`TokenizedSplit`], [`WindowConfig`],
//! [`LastWindow`], [`LmWindows`], [`SummarizationConfig`], [`SummarizationSet`],
//! [`BatchSampler`], [`SamplerConfig`], [`Position`], [`LmBatch`], [`Seq2SeqBatch`],
//! [`collate_lm`], [`collate_seq2seq`], [`IGNORE_INDEX`].

pub mod batch;
pub mod cache;
mod error;
mod fastbpe;
mod hex;
pub mod hub;
pub mod lm;
pub mod reader;
pub mod seq2seq;
pub mod source;
pub mod stats;
pub mod tokenize;
pub mod tokenizer;
pub mod trained;

pub use batch::{BatchSampler, LmBatch, Position, SamplerConfig, collate_lm};
pub use cache::TokenizedSplit;
pub use error::{Error, Result};
pub use hub::HubConfig;
pub use lm::{IGNORE_INDEX, LastWindow, LmWindows, WindowConfig};
pub use seq2seq::{Seq2SeqBatch, SummarizationConfig, SummarizationSet, collate_seq2seq};
pub use source::{DatasetName, DatasetSource};
pub use tokenize::{TokenizeOptions, TokenizeSpec, tokenize_files};
pub use tokenizer::load_tokenizer;
