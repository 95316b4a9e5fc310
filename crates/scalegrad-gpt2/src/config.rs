//! The model configuration: Hugging Face's `config.json` for GPT-2, read unchanged.
//!
//! Fields keep the names of transformers' `GPT2Config`; a field missing from the file
//! takes the default of that class (old checkpoints such as distilgpt2's omit
//! `scale_attn_weights`, `n_inner` or `tie_word_embeddings`), exactly as transformers
//! reads it. Keys this crate does not use (`architectures`, `summary_*`,
//! `task_specific_params`, ...) are kept in [`Gpt2Config::extra`] and written back on
//! save. Values the implementation does not support are rejected by
//! [`Gpt2Config::validate`], never silently replaced.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Gpt2Error;

/// The activation of the MLP (`activation_function` in `config.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// GPT-2's GELU, tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    #[serde(rename = "gelu_new")]
    GeluNew,
    /// The same function under PyTorch's name.
    #[serde(rename = "gelu_pytorch_tanh")]
    GeluPytorchTanh,
    /// The exact GELU, `x Phi(x)` with the error function.
    #[serde(rename = "gelu")]
    Gelu,
    /// `max(0, x)`.
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    /// The names accepted in `config.json`.
    pub const SUPPORTED: &'static [&'static str] =
        &["gelu_new", "gelu_pytorch_tanh", "gelu", "relu"];
}

/// `eos_token_id` may be one id or a list of ids in `config.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids, any of which ends a sequence.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
        }
    }
}

/// GPT-2's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Number of tokens in the vocabulary (rows of `wte`).
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Maximum sequence length (rows of `wpe`).
    #[serde(default = "defaults::n_positions")]
    pub n_positions: usize,
    /// Hidden size.
    #[serde(default = "defaults::n_embd")]
    pub n_embd: usize,
    /// Number of transformer blocks.
    #[serde(default = "defaults::n_layer")]
    pub n_layer: usize,
    /// Number of attention heads; must divide `n_embd`.
    #[serde(default = "defaults::n_head")]
    pub n_head: usize,
    /// Inner size of the MLP; `None` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// Activation of the MLP.
    #[serde(default = "defaults::activation")]
    pub activation_function: Activation,
    /// Dropout on the output of attention and MLP, before each residual addition.
    #[serde(default = "defaults::pdrop")]
    pub resid_pdrop: f64,
    /// Dropout on the sum of token and position embeddings.
    #[serde(default = "defaults::pdrop")]
    pub embd_pdrop: f64,
    /// Dropout on the attention probabilities.
    #[serde(default = "defaults::pdrop")]
    pub attn_pdrop: f64,
    /// Epsilon of every LayerNorm.
    #[serde(default = "defaults::layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the random initialisation of weights.
    #[serde(default = "defaults::initializer_range")]
    pub initializer_range: f64,
    /// Scale attention scores by `1 / sqrt(head_dim)`.
    #[serde(default = "defaults::yes")]
    pub scale_attn_weights: bool,
    /// Additionally scale attention scores of block `i` by `1 / (i + 1)`.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Upcast attention to f32 under mixed precision; a no-op here: the softmax is always
    /// f32, and with a half `Precision` the score products take half operands either way.
    #[serde(default)]
    pub reorder_and_upcast_attn: bool,
    /// Cross-attention blocks (encoder-decoder use); not supported.
    #[serde(default)]
    pub add_cross_attention: bool,
    /// The LM head shares the token embedding; must be true.
    #[serde(default = "defaults::yes")]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token(s).
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// Padding token, if the checkpoint names one (GPT-2 does not).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// `"gpt2"` in every GPT-2 checkpoint.
    #[serde(default)]
    pub model_type: Option<String>,
    /// Every other key of the file, kept as is and written back on save.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

mod defaults {
    use super::Activation;

    pub fn vocab_size() -> usize {
        50257
    }
    pub fn n_positions() -> usize {
        1024
    }
    pub fn n_embd() -> usize {
        768
    }
    pub fn n_layer() -> usize {
        12
    }
    pub fn n_head() -> usize {
        12
    }
    pub fn activation() -> Activation {
        Activation::GeluNew
    }
    pub fn pdrop() -> f64 {
        0.1
    }
    pub fn layer_norm_epsilon() -> f64 {
        1e-5
    }
    pub fn initializer_range() -> f64 {
        0.02
    }
    pub fn yes() -> bool {
        true
    }
}

impl Gpt2Config {
    /// GPT-2 small (124M parameters): 12 layers, 768 wide, 12 heads, 1024 positions.
    pub fn gpt2() -> Self {
        Self {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: Activation::GeluNew,
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            reorder_and_upcast_attn: false,
            add_cross_attention: false,
            tie_word_embeddings: true,
            bos_token_id: Some(50256),
            eos_token_id: Some(TokenIds::One(50256)),
            pad_token_id: None,
            model_type: Some("gpt2".to_string()),
            extra: serde_json::Map::new(),
        }
    }

    /// distilgpt2 (81.9M parameters with the tied LM head): GPT-2 small with 6 layers.
    pub fn distilgpt2() -> Self {
        Self {
            n_layer: 6,
            ..Self::gpt2()
        }
    }

    /// A tiny GPT-2 for tests and examples: 2 layers, 64 wide, 4 heads of 16, 64
    /// positions, with the given vocabulary size and no dropout.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            n_positions: 64,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            bos_token_id: None,
            eos_token_id: None,
            ..Self::gpt2()
        }
        .with_dropout(0.0)
    }

    /// Sets all three dropout probabilities (`resid_pdrop`, `embd_pdrop`, `attn_pdrop`).
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.resid_pdrop = p;
        self.embd_pdrop = p;
        self.attn_pdrop = p;
        self
    }

    /// Parses a `config.json` string and validates it.
    pub fn from_json_str(json: &str) -> Result<Self, Gpt2Error> {
        let config: Self = serde_json::from_str(json).map_err(|source| Gpt2Error::ConfigJson {
            path: "<string>".into(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a `config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Gpt2Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Gpt2Error::io("reading", path, e))?;
        let config: Self = serde_json::from_str(&text).map_err(|source| Gpt2Error::ConfigJson {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as Hugging Face `config.json` text: every field, the kept extra
    /// keys, `model_type` and `architectures` filled in when absent.
    pub fn to_json_string(&self) -> String {
        let mut config = self.clone();
        config.model_type.get_or_insert_with(|| "gpt2".to_string());
        config
            .extra
            .entry("architectures")
            .or_insert_with(|| serde_json::json!(["GPT2LMHeadModel"]));
        serde_json::to_string_pretty(&config).expect("a config always serialises")
    }

    /// Checks that this implementation computes exactly what transformers computes for
    /// this configuration.
    pub fn validate(&self) -> Result<(), Gpt2Error> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(Gpt2Error::unsupported(field, value, "must be at least 1"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Gpt2Error::unsupported(
                "n_head",
                self.n_head,
                format!("must divide n_embd = {}", self.n_embd),
            ));
        }
        if self.n_inner == Some(0) {
            return Err(Gpt2Error::unsupported(
                "n_inner",
                0,
                "must be at least 1 (or null for 4 * n_embd)",
            ));
        }
        for (field, p) in [
            ("resid_pdrop", self.resid_pdrop),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Gpt2Error::unsupported(
                    field,
                    p,
                    "a dropout probability must be in [0, 1)",
                ));
            }
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return Err(Gpt2Error::unsupported(
                "layer_norm_epsilon",
                self.layer_norm_epsilon,
                "must be a positive number",
            ));
        }
        if self.add_cross_attention {
            return Err(Gpt2Error::unsupported(
                "add_cross_attention",
                true,
                "cross-attention blocks are not implemented (decoder-only GPT-2 only)",
            ));
        }
        if !self.tie_word_embeddings {
            return Err(Gpt2Error::unsupported(
                "tie_word_embeddings",
                false,
                "this GPT-2 always ties the LM head to the token embedding wte",
            ));
        }
        if let Some(model_type) = &self.model_type
            && model_type != "gpt2"
        {
            return Err(Gpt2Error::unsupported(
                "model_type",
                format!("\"{model_type}\""),
                "this crate loads GPT-2 checkpoints (model_type \"gpt2\") only",
            ));
        }
        if let Some(ids) = &self.eos_token_id
            && let Some(bad) = ids
                .to_vec()
                .into_iter()
                .find(|&id| id as usize >= self.vocab_size)
        {
            return Err(Gpt2Error::unsupported(
                "eos_token_id",
                bad,
                format!("must be below vocab_size = {}", self.vocab_size),
            ));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Inner size of the MLP.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// The end-of-sequence ids (empty when the config names none).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default()
    }

    /// Number of parameters of the model, counting the tied LM head once.
    pub fn num_params(&self) -> usize {
        let (e, i) = (self.n_embd, self.inner_dim());
        let layer_norm = 2 * e;
        let block = 2 * layer_norm + (e * 3 * e + 3 * e) + (e * e + e) + (e * i + i) + (i * e + e);
        self.vocab_size * e + self.n_positions * e + self.n_layer * block + layer_norm
    }
}
