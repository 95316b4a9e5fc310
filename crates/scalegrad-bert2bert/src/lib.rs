//! BERT2BERT for burn: the summariser of the ScaleGrad paper's directed-generation
//! experiment, `mrm8488/bert-small2bert-small-finetuned-cnn_daily_mail-summarization`.
//!
//! A Hugging Face `EncoderDecoderModel` pairs a BERT encoder (`BertModel`) with a BERT
//! decoder that has causal self-attention, cross-attention on the encoder's states and a
//! language-model head tied to its word embeddings (`BertLMHeadModel`). This crate
//! mirrors transformers 5.24's `models/encoder_decoder/modeling_encoder_decoder.py` and
//! `models/bert/modeling_bert.py` for training (teacher-forced logits with padding
//! masks, dropout on autodiff devices) and `generation/utils.py` for inference (greedy
//! and beam search with `generate()`'s exact semantics, a key/value cache, and
//! cross-attention keys computed once per source).
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use scalegrad_bert2bert::{GenerationOverrides, generate, load_pretrained};
//!
//! let device = Device::default();
//! let loaded = load_pretrained("model-dir".as_ref(), &device)?;
//! let config = loaded.generation.resolve()?.with_overrides(&GenerationOverrides {
//!     num_beams: Some(4),
//!     ..GenerationOverrides::default()
//! });
//! let ids = Tensor::<2, Int>::from_data([[101, 2023, 2003, 102]], &device);
//! let summaries = generate(&loaded.model, ids, None, &config)?;
//! # Ok::<(), scalegrad_bert2bert::Error>(())
//! ```
//!
//! Public items: [`Bert2BertConfig`], [`BertConfig`], [`HiddenAct`], [`Bert2Bert`],
//! [`BertEncoder`], [`BertDecoder`], [`DecoderCache`], [`shift_tokens_right`],
//! [`decoder_attention_mask`],
//! [`load_pretrained`], [`load_weights`], [`save_pretrained`], [`copy_tokenizer_files`],
//! [`LoadedModel`], [`GenerationSettings`], [`GenerationConfig`], [`EarlyStopping`],
//! [`Generated`], [`generate`], [`Stepper`], [`greedy_search`], [`beam_search`], the
//! logits processors [`log_softmax`], [`no_repeat_ngram_bans`],
//! [`ban_eos_before_min_length`], [`ban_tokens`], [`process_row`], [`argmax`],
//! [`top_k`], the key mapping [`hf_to_burn_patterns`], [`burn_to_hf_patterns`],
//! [`hf_to_burn`], [`burn_to_hf`], and [`Error`]. The building blocks live in
//! [`model`] and [`attention`].

pub mod attention;
mod config;
mod decoding;
mod error;
mod generate;
mod loader;
pub mod model;
mod settings;

pub use attention::DecoderCache;
pub use config::{Bert2BertConfig, BertConfig, HiddenAct};
pub use decoding::{
    Generated, Stepper, argmax, ban_eos_before_min_length, ban_tokens, beam_search, greedy_search,
    log_softmax, no_repeat_ngram_bans, process_row, top_k,
};
pub use error::Error;
pub use generate::generate;
pub use loader::{
    LoadedModel, ScratchIds, burn_to_hf, burn_to_hf_patterns, copy_tokenizer_files, hf_to_burn,
    hf_to_burn_patterns, load_pretrained, load_weights, save_pretrained, scratch_config,
    weights_file,
};
pub use model::{Bert2Bert, BertDecoder, BertEncoder, decoder_attention_mask, shift_tokens_right};
pub use settings::{EarlyStopping, GenerationConfig, GenerationOverrides, GenerationSettings};
