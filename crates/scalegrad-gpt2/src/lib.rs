//! GPT-2 in burn: the model the ScaleGrad open-ended experiment fine-tunes (distilgpt2).
//!
//! GPT-2 (Radford et al., 2019) is a decoder-only transformer language model: token and
//! learned position embeddings, pre-LayerNorm blocks of causal self-attention and a
//! GELU MLP, a final LayerNorm, and an output layer that shares the token embedding.
//! This crate computes what Hugging Face transformers' `GPT2LMHeadModel`
//! (`src/transformers/models/gpt2/modeling_gpt2.py`) computes, with the same
//! checkpoints:
//!
//! - [`Gpt2Config`] is `config.json`, read unchanged ([`config`]);
//! - [`Gpt2`] is the model: [`Gpt2::forward`] gives `[batch, len, vocab]` logits for
//!   training and evaluation, on any burn device (`Device::flex()`, `.autodiff()` to
//!   train); [`Gpt2::forward_cached`] feeds new positions through a [`KvCache`];
//! - [`Gpt2::from_pretrained`] / [`Gpt2::save_pretrained`] read and write Hugging Face
//!   directories (`model.safetensors` or `pytorch_model.bin`; the name mapping is in
//!   [`loader`]);
//! - [`generate`] decodes batched prompts (greedy, top-k, top-p, temperature, seeded
//!   sampling, EOS, repetition penalty, no-repeat n-grams), configured by a
//!   [`GenerationConfig`]; the per-token rules are pure functions in [`decoding`].
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use scalegrad_gpt2::{Gpt2, GenerationConfig, generate};
//!
//! let device = Device::flex();
//! let (model, _report) = Gpt2::from_pretrained("models/distilgpt2", &device)?;
//! let ids = Tensor::<2, Int>::from_data([[464i64, 2068, 7586]], &device);
//! let logits = model.forward(ids, None); // [1, 3, 50257]
//! let config = GenerationConfig::greedy(20).with_eos(model.config().eos_token_ids());
//! let out = generate(&model, &[vec![464, 2068, 7586]], &config)?;
//! # Ok::<(), scalegrad_gpt2::Gpt2Error>(())
//! ```
//!
//! Public names: [`Gpt2Config`], [`Activation`], [`TokenIds`], [`Gpt2`], [`Block`],
//! [`Mlp`], [`Attention`], [`KvCache`], [`shift_for_next_token`], [`LoadReport`],
//! [`GenerationConfig`], [`Strategy`], [`PaddingSide`], [`Generation`], [`generate`],
//! [`Gpt2Error`], and the modules [`config`], [`loader`], [`decoding`].

mod attention;
mod cache;
pub mod config;
mod decode_weights;
pub mod decoding;
mod device_decoding;
mod error;
mod generate;
pub mod loader;
mod model;

pub use attention::Attention;
pub use cache::KvCache;
pub use config::{Activation, Gpt2Config, TokenIds};
pub use decoding::{GenerationConfig, PaddingSide, Strategy};
pub use error::Gpt2Error;
pub use generate::{Generation, generate};
pub use loader::LoadReport;
pub use model::{Block, Gpt2, Mlp, shift_for_next_token};
