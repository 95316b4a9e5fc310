//! `config.json` of a Hugging Face `EncoderDecoderModel` with BERT on both sides.
//!
//! The structs deserialize the file unchanged: known keys become typed fields (with the
//! defaults of transformers' `BertConfig` / `EncoderDecoderConfig`), every other key is
//! kept in `extra` so that saving writes back what was read. Generation settings stored
//! at the top level (as the real checkpoint does) are read by
//! [`GenerationSettings::from_model_config`](crate::GenerationSettings::from_model_config).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;

/// The activation of the feed-forward block and of the LM head's transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HiddenAct {
    /// `gelu`: the exact GELU with erf (BERT's default).
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl HiddenAct {
    /// Parses transformers' `hidden_act` names.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

/// One side of the encoder-decoder: transformers' `BertConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Size of the token vocabulary.
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Width of the hidden states.
    #[serde(default = "defaults::hidden_size")]
    pub hidden_size: usize,
    /// Number of transformer layers.
    #[serde(default = "defaults::num_hidden_layers")]
    pub num_hidden_layers: usize,
    /// Number of attention heads per layer.
    #[serde(default = "defaults::num_attention_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    #[serde(default = "defaults::intermediate_size")]
    pub intermediate_size: usize,
    /// Activation name (`gelu` = erf GELU).
    #[serde(default = "defaults::hidden_act")]
    pub hidden_act: String,
    /// Dropout on embeddings and on each sub-layer output (training only).
    #[serde(default = "defaults::dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (training only).
    #[serde(default = "defaults::dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Number of learned absolute positions.
    #[serde(default = "defaults::max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Number of token types (segment ids); the model always uses type 0.
    #[serde(default = "defaults::type_vocab_size")]
    pub type_vocab_size: usize,
    /// Standard deviation of the random initialisation.
    #[serde(default = "defaults::initializer_range")]
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    #[serde(default = "defaults::layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id of this side's vocabulary.
    #[serde(default = "defaults::pad_token_id")]
    pub pad_token_id: Option<u32>,
    /// Causal self-attention (true for the decoder).
    #[serde(default)]
    pub is_decoder: bool,
    /// Cross-attention on the encoder's states (true for the decoder).
    #[serde(default)]
    pub add_cross_attention: bool,
    /// Whether the LM head's projection is the word embedding matrix (decoder).
    #[serde(default = "defaults::yes")]
    pub tie_word_embeddings: bool,
    /// Every other key of the sub-config, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The whole checkpoint config: transformers' `EncoderDecoderConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bert2BertConfig {
    /// The encoder (`BertModel`).
    pub encoder: BertConfig,
    /// The decoder (`BertLMHeadModel` with cross-attention).
    pub decoder: BertConfig,
    /// First decoder input token ([CLS] = 101 for the real checkpoint).
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    /// Padding id used for decoder inputs built from labels.
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Legacy transformers 4 flag that shared encoder and decoder weights. transformers
    /// 5.24 ignores it (both stacks load independently from the file), and so does this
    /// crate; it is kept only so that saving writes it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_encoder_decoder: Option<bool>,
    /// Every other top-level key (generation settings, `architectures`, ...), verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

mod defaults {
    pub fn vocab_size() -> usize {
        30522
    }
    pub fn hidden_size() -> usize {
        768
    }
    pub fn num_hidden_layers() -> usize {
        12
    }
    pub fn num_attention_heads() -> usize {
        12
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn hidden_act() -> String {
        "gelu".to_string()
    }
    pub fn dropout() -> f64 {
        0.1
    }
    pub fn max_position_embeddings() -> usize {
        512
    }
    pub fn type_vocab_size() -> usize {
        2
    }
    pub fn initializer_range() -> f64 {
        0.02
    }
    pub fn layer_norm_eps() -> f64 {
        1e-12
    }
    pub fn pad_token_id() -> Option<u32> {
        Some(0)
    }
    pub fn yes() -> bool {
        true
    }
}

impl BertConfig {
    /// `google/bert_uncased_L-4_H-512_A-8` (BERT-small): 4 layers, 512 wide, 8 heads, 2048
    /// intermediate, vocabulary 30522, 512 positions. `decoder = true` turns on causal
    /// self-attention and cross-attention.
    pub fn bert_small(decoder: bool) -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 8,
            intermediate_size: 2048,
            hidden_act: "gelu".to_string(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            is_decoder: decoder,
            add_cross_attention: decoder,
            tie_word_embeddings: true,
            extra: Map::new(),
        }
    }

    /// transformers' initialiser for BERT weights: `normal(0, initializer_range)`.
    pub(crate) fn initializer(&self) -> burn::nn::Initializer {
        burn::nn::Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        }
    }

    /// The parsed activation.
    ///
    /// # Panics
    /// If the config was not validated (programmer error): [`Bert2BertConfig::validate`]
    /// rejects unknown activations.
    pub fn activation(&self) -> HiddenAct {
        HiddenAct::parse(&self.hidden_act).expect("validated config")
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    fn validate(&self, side: &str, decoder: bool) -> Result<(), Error> {
        let bad = |field: &str, value: String, reason: &str| Error::Config {
            field: format!("{side}.{field}"),
            value,
            reason: reason.to_string(),
        };
        if let Some(model_type) = self.extra.get("model_type")
            && model_type != "bert"
        {
            return Err(bad(
                "model_type",
                model_type.to_string(),
                "only BERT encoders and decoders are supported",
            ));
        }
        if let Some(kind) = self.extra.get("position_embedding_type")
            && kind != "absolute"
        {
            return Err(bad(
                "position_embedding_type",
                kind.to_string(),
                "only absolute position embeddings are supported (transformers 5 has no others)",
            ));
        }
        if HiddenAct::parse(&self.hidden_act).is_none() {
            return Err(bad(
                "hidden_act",
                self.hidden_act.clone(),
                "supported: gelu, gelu_new, gelu_pytorch_tanh, relu",
            ));
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return Err(bad(field, "0".to_string(), "must be positive"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(
                "num_attention_heads",
                self.num_attention_heads.to_string(),
                &format!("must divide hidden_size {}", self.hidden_size),
            ));
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(bad(
                "layer_norm_eps",
                self.layer_norm_eps.to_string(),
                "must be positive",
            ));
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(field, p.to_string(), "must be in [0, 1)"));
            }
        }
        if decoder {
            if !self.is_decoder || !self.add_cross_attention {
                return Err(bad(
                    "is_decoder/add_cross_attention",
                    format!("{}/{}", self.is_decoder, self.add_cross_attention),
                    "the decoder needs causal self-attention and cross-attention (both true)",
                ));
            }
            if !self.tie_word_embeddings {
                return Err(bad(
                    "tie_word_embeddings",
                    "false".to_string(),
                    "only decoders whose LM head is tied to the word embeddings are supported",
                ));
            }
        } else if self.is_decoder || self.add_cross_attention {
            return Err(bad(
                "is_decoder/add_cross_attention",
                format!("{}/{}", self.is_decoder, self.add_cross_attention),
                "the encoder must be bidirectional without cross-attention (both false)",
            ));
        }
        Ok(())
    }
}

impl Bert2BertConfig {
    /// The architecture of `mrm8488/bert-small2bert-small-finetuned-cnn_daily_mail-summarization`
    /// with its generation settings (decoder start [CLS] = 101, EOS [SEP] = 102, pad 0,
    /// 4 beams, no_repeat_ngram_size 3, length_penalty 2.0, early stopping, lengths
    /// 56..142), for tests and benchmarks with random weights.
    pub fn bert_small() -> Self {
        let mut extra = Map::new();
        for (key, value) in [
            ("model_type", Value::from("encoder-decoder")),
            ("is_encoder_decoder", Value::from(true)),
            ("eos_token_id", Value::from(102)),
            ("max_length", Value::from(142)),
            ("min_length", Value::from(56)),
            ("num_beams", Value::from(4)),
            ("no_repeat_ngram_size", Value::from(3)),
            ("length_penalty", Value::from(2.0)),
            ("early_stopping", Value::from(true)),
        ] {
            extra.insert(key.to_string(), value);
        }
        Self {
            encoder: BertConfig::bert_small(false),
            decoder: BertConfig::bert_small(true),
            decoder_start_token_id: Some(101),
            pad_token_id: Some(0),
            tie_encoder_decoder: None,
            extra,
        }
    }

    /// [`bert_small`](Self::bert_small)'s layout and generation settings at toy size,
    /// for tests and examples: encoder and decoder of 2 layers, 32 wide, 4 heads, 64
    /// intermediate and 64 positions, with the given vocabulary size.
    pub fn tiny(vocab_size: usize) -> Self {
        let mut config = Self::bert_small();
        for side in [&mut config.encoder, &mut config.decoder] {
            side.vocab_size = vocab_size;
            side.hidden_size = 32;
            side.num_hidden_layers = 2;
            side.num_attention_heads = 4;
            side.intermediate_size = 64;
            side.max_position_embeddings = 64;
        }
        config
    }

    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that this implementation supports every architectural value.
    pub fn validate(&self) -> Result<(), Error> {
        self.encoder.validate("encoder", false)?;
        self.decoder.validate("decoder", true)?;
        if self.encoder.hidden_size != self.decoder.hidden_size {
            return Err(Error::Config {
                field: "decoder.hidden_size".to_string(),
                value: self.decoder.hidden_size.to_string(),
                reason: format!(
                    "must equal encoder.hidden_size {} (the enc_to_dec_proj variant is not supported)",
                    self.encoder.hidden_size
                ),
            });
        }
        if let Some(size) = self.decoder.extra.get("cross_attention_hidden_size")
            && !size.is_null()
            && size.as_u64() != Some(self.encoder.hidden_size as u64)
        {
            return Err(Error::Config {
                field: "decoder.cross_attention_hidden_size".to_string(),
                value: size.to_string(),
                reason: "must be null or equal to encoder.hidden_size".to_string(),
            });
        }
        Ok(())
    }

    /// The config as the JSON object written to `config.json`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a config always serializes")
    }

    /// The decoder start token, from the top level (or, as transformers falls back to, the
    /// top-level `bos_token_id`).
    pub fn decoder_start(&self) -> Option<u32> {
        self.decoder_start_token_id.or_else(|| {
            self.extra
                .get("bos_token_id")
                .and_then(Value::as_u64)
                .map(|v| v as u32)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "encoder": {"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "intermediate_size": 16},
        "decoder": {"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "intermediate_size": 16,
                    "is_decoder": true, "add_cross_attention": true},
        "decoder_start_token_id": 1, "pad_token_id": 0, "num_beams": 4,
        "architectures": ["EncoderDecoderModel"]
    }"#;

    #[test]
    fn missing_keys_take_transformers_bert_defaults() {
        let config: Bert2BertConfig = serde_json::from_str(MINIMAL).unwrap();
        config.validate().unwrap();
        assert_eq!(config.encoder.layer_norm_eps, 1e-12);
        assert_eq!(config.encoder.max_position_embeddings, 512);
        assert_eq!(config.decoder.activation(), HiddenAct::Gelu);
        assert_eq!(config.decoder.pad_token_id, Some(0));
        assert!(config.decoder.tie_word_embeddings);
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let config: Bert2BertConfig = serde_json::from_str(MINIMAL).unwrap();
        let back = config.to_json();
        assert_eq!(back["num_beams"], 4);
        assert_eq!(back["architectures"][0], "EncoderDecoderModel");
        let again: Bert2BertConfig = serde_json::from_value(back).unwrap();
        assert_eq!(config, again);
    }

    fn error_of(edit: impl FnOnce(&mut Bert2BertConfig)) -> String {
        let mut config: Bert2BertConfig = serde_json::from_str(MINIMAL).unwrap();
        edit(&mut config);
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn unsupported_values_are_named_in_the_error() {
        let e = error_of(|c| c.decoder.hidden_act = "swish".into());
        assert!(
            e.contains("decoder.hidden_act") && e.contains("swish"),
            "{e}"
        );
        let e = error_of(|c| c.decoder.add_cross_attention = false);
        assert!(e.contains("decoder.is_decoder/add_cross_attention"), "{e}");
        let e = error_of(|c| c.encoder.is_decoder = true);
        assert!(e.contains("encoder.is_decoder"), "{e}");
        let e = error_of(|c| c.decoder.hidden_size = 16);
        assert!(
            e.contains("decoder.hidden_size") && e.contains("enc_to_dec_proj"),
            "{e}"
        );
        let e = error_of(|c| c.encoder.num_attention_heads = 3);
        assert!(e.contains("must divide hidden_size 8"), "{e}");
        let e = error_of(|c| {
            c.encoder
                .extra
                .insert("position_embedding_type".into(), "relative_key".into());
        });
        assert!(e.contains("position_embedding_type"), "{e}");
        let e = error_of(|c| c.decoder.tie_word_embeddings = false);
        assert!(e.contains("tie_word_embeddings"), "{e}");
    }

    #[test]
    fn bert_small_is_valid_and_matches_the_reference_architecture() {
        let config = Bert2BertConfig::bert_small();
        config.validate().unwrap();
        assert_eq!(config.encoder.head_dim(), 64);
        assert_eq!(config.decoder_start(), Some(101));
    }
}
