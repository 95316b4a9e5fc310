//! Reading and writing Hugging Face checkpoints of `EncoderDecoderModel` (BERT2BERT).
//!
//! The burn module tree names things differently from transformers (Rust has no field
//! called `self`, and the layer structure is flatter). The mapping, applied in order by
//! burn-store's `KeyRemapper` (`{i}` is a layer index, `X` a suffix):
//!
//! | Hugging Face key | burn module path |
//! | --- | --- |
//! | `encoder.embeddings.{word,position,token_type}_embeddings.weight` | same |
//! | `encoder.embeddings.LayerNorm.{weight,bias}` | `encoder.embeddings.layer_norm.{gamma,beta}` |
//! | `encoder.encoder.layer.{i}.attention.self.{query,key,value}.X` | `encoder.layers.{i}.self_attn.attention.{query,key,value}.X` |
//! | `encoder.encoder.layer.{i}.attention.output.dense.X` | `encoder.layers.{i}.self_attn.attention.output.X` |
//! | `encoder.encoder.layer.{i}.attention.output.LayerNorm.X` | `encoder.layers.{i}.self_attn.norm.X` |
//! | `encoder.encoder.layer.{i}.intermediate.dense.X` | `encoder.layers.{i}.ffn.intermediate.X` |
//! | `encoder.encoder.layer.{i}.output.dense.X` | `encoder.layers.{i}.ffn.output.X` |
//! | `encoder.encoder.layer.{i}.output.LayerNorm.X` | `encoder.layers.{i}.ffn.norm.X` |
//! | `encoder.pooler.dense.X` | `encoder.pooler.X` |
//! | `decoder.bert.embeddings.X` | `decoder.embeddings.X` (LayerNorm as above) |
//! | `decoder.bert.encoder.layer.{i}.attention.*` | `decoder.layers.{i}.self_attn.*` (as above) |
//! | `decoder.bert.encoder.layer.{i}.crossattention.self.X` | `decoder.layers.{i}.cross_attn.attention.X` |
//! | `decoder.bert.encoder.layer.{i}.crossattention.output.dense.X` | `decoder.layers.{i}.cross_attn.attention.output.X` |
//! | `decoder.bert.encoder.layer.{i}.crossattention.output.LayerNorm.X` | `decoder.layers.{i}.cross_attn.norm.X` |
//! | `decoder.bert.encoder.layer.{i}.{intermediate,output}.*` | `decoder.layers.{i}.ffn.*` (as above) |
//! | `decoder.cls.predictions.transform.dense.X` | `decoder.head.transform.X` |
//! | `decoder.cls.predictions.transform.LayerNorm.X` | `decoder.head.norm.X` |
//! | `decoder.cls.predictions.bias` | `decoder.head.bias` |
//! | `decoder.cls.predictions.decoder.{weight,bias}` | none: tied (see below) |
//! | `*.embeddings.position_ids`, `*.embeddings.token_type_ids` | none: constant buffers |
//!
//! BERT's `nn.Linear` weights are stored `[out, in]` and burn's `Linear` holds `[in, out]`,
//! so both directions go through burn-store's PyTorch adapters, which transpose linear
//! weights and rename LayerNorm `weight`/`bias` to `gamma`/`beta`.
//!
//! The LM head's matrix is not a parameter of its own: transformers ties
//! `cls.predictions.decoder.weight` to the decoder's word embeddings and
//! `cls.predictions.decoder.bias` to `cls.predictions.bias`. Legacy `.bin` files store
//! both keys (sharing storage); transformers 5 safetensors files leave the tied ones out.
//! The loader ignores the tied keys after checking that they equal their sources (a
//! checkpoint with an untied head is an error), and the saver leaves them out, as
//! transformers 5 does. After loading, the set of unmatched keys must be exactly these
//! tied keys and buffers; anything else is reported by name.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::Device;

use crate::config::Bert2BertConfig;
use crate::model::Bert2Bert;
use crate::{Error, GenerationSettings};

/// HF key patterns and their burn replacements, applied in this order when loading.
pub fn hf_to_burn_patterns() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"^encoder\.encoder\.layer\.", "encoder.layers."),
        (r"^decoder\.bert\.encoder\.layer\.", "decoder.layers."),
        (r"^decoder\.bert\.embeddings\.", "decoder.embeddings."),
        (r"\.embeddings\.LayerNorm\.", ".embeddings.layer_norm."),
        (r"\.attention\.self\.", ".self_attn.attention."),
        (
            r"\.attention\.output\.dense\.",
            ".self_attn.attention.output.",
        ),
        (r"\.attention\.output\.LayerNorm\.", ".self_attn.norm."),
        (r"\.crossattention\.self\.", ".cross_attn.attention."),
        (
            r"\.crossattention\.output\.dense\.",
            ".cross_attn.attention.output.",
        ),
        (
            r"\.crossattention\.output\.LayerNorm\.",
            ".cross_attn.norm.",
        ),
        (
            r"(\.layers\.\d+)\.intermediate\.dense\.",
            "$1.ffn.intermediate.",
        ),
        (r"(\.layers\.\d+)\.output\.dense\.", "$1.ffn.output."),
        (r"(\.layers\.\d+)\.output\.LayerNorm\.", "$1.ffn.norm."),
        (r"^encoder\.pooler\.dense\.", "encoder.pooler."),
        (
            r"^decoder\.cls\.predictions\.transform\.dense\.",
            "decoder.head.transform.",
        ),
        (
            r"^decoder\.cls\.predictions\.transform\.LayerNorm\.",
            "decoder.head.norm.",
        ),
        (r"^decoder\.cls\.predictions\.bias$", "decoder.head.bias"),
    ]
}

/// burn path patterns and their HF replacements, applied in this order when saving (and
/// to name tensors in error messages). The inverse of [`hf_to_burn_patterns`].
pub fn burn_to_hf_patterns() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\.(layer_norm|norm)\.gamma$", ".$1.weight"),
        (r"\.(layer_norm|norm)\.beta$", ".$1.bias"),
        (r"^decoder\.head\.bias$", "decoder.cls.predictions.bias"),
        (
            r"^decoder\.head\.norm\.",
            "decoder.cls.predictions.transform.LayerNorm.",
        ),
        (
            r"^decoder\.head\.transform\.",
            "decoder.cls.predictions.transform.dense.",
        ),
        (r"^encoder\.pooler\.", "encoder.pooler.dense."),
        (r"\.ffn\.norm\.", ".output.LayerNorm."),
        (r"\.ffn\.output\.", ".output.dense."),
        (r"\.ffn\.intermediate\.", ".intermediate.dense."),
        (r"\.cross_attn\.norm\.", ".crossattention.output.LayerNorm."),
        (
            r"\.cross_attn\.attention\.output\.",
            ".crossattention.output.dense.",
        ),
        (r"\.cross_attn\.attention\.", ".crossattention.self."),
        (r"\.self_attn\.norm\.", ".attention.output.LayerNorm."),
        (
            r"\.self_attn\.attention\.output\.",
            ".attention.output.dense.",
        ),
        (r"\.self_attn\.attention\.", ".attention.self."),
        (r"\.embeddings\.layer_norm\.", ".embeddings.LayerNorm."),
        (r"^decoder\.embeddings\.", "decoder.bert.embeddings."),
        (r"^decoder\.layers\.", "decoder.bert.encoder.layer."),
        (r"^encoder\.layers\.", "encoder.encoder.layer."),
    ]
}

/// The LM head keys tied to other tensors: `(tied key, source key after remapping)`.
const TIED: &[(&str, &str)] = &[
    (
        "decoder.cls.predictions.decoder.weight",
        "decoder.embeddings.word_embeddings.weight",
    ),
    ("decoder.cls.predictions.decoder.bias", "decoder.head.bias"),
];

fn remapper(patterns: Vec<(&'static str, &'static str)>) -> KeyRemapper {
    KeyRemapper::from_patterns(patterns).expect("the mapping patterns are valid regexes")
}

/// Translates a burn module path (or an unmapped key) to its HF key.
pub fn burn_to_hf(path: &str) -> String {
    rename(&remapper(burn_to_hf_patterns()), path)
}

/// Translates an HF key to the burn module path it loads into.
pub fn hf_to_burn(key: &str) -> String {
    rename(&remapper(hf_to_burn_patterns()), key)
}

fn rename(remapper: &KeyRemapper, name: &str) -> String {
    let mut out = name.to_string();
    for (pattern, replacement) in remapper.to_regex_pairs() {
        if pattern.is_match(&out) {
            out = pattern.replace_all(&out, replacement.as_str()).to_string();
        }
    }
    out
}

/// Whether an unmatched key is a constant buffer transformers does not load either.
fn is_buffer(key: &str) -> bool {
    key.ends_with(".embeddings.position_ids") || key.ends_with(".embeddings.token_type_ids")
}

/// The weights file of a model directory: `model.safetensors`, else `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf, Error> {
    ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::NoWeights {
            dir: dir.to_path_buf(),
        })
}

/// A model loaded from a Hugging Face directory, with its config and generation defaults.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model.
    pub model: Bert2Bert,
    /// `config.json`.
    pub config: Bert2BertConfig,
    /// Generation settings as transformers reads them from the directory.
    pub generation: GenerationSettings,
    /// The weights file that was read.
    pub weights: PathBuf,
}

/// Loads `config.json`, the generation settings and the weights (`model.safetensors` or
/// `pytorch_model.bin`) of a local Hugging Face `EncoderDecoderModel` directory.
pub fn load_pretrained(dir: &Path, device: &Device) -> Result<LoadedModel, Error> {
    let config = Bert2BertConfig::from_file(&dir.join("config.json"))?;
    let generation = GenerationSettings::from_model_dir(dir)?;
    let weights = weights_file(dir)?;
    let model = load_weights(&config, &weights, device)?;
    Ok(LoadedModel {
        model,
        config,
        generation,
        weights,
    })
}

/// Builds the model of `config` and fills it from a safetensors or torch pickle file
/// (chosen by the extension: `.safetensors`, anything else is read as a pickle).
pub fn load_weights(
    config: &Bert2BertConfig,
    path: &Path,
    device: &Device,
) -> Result<Bert2Bert, Error> {
    let file_error = |message: String| Error::WeightsFile {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(Error::Io {
            action: "reading",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let mut store = if safetensors {
        Store::Safetensors(
            SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .remap(remapper(hf_to_burn_patterns()))
                .allow_partial(true)
                .validate(false),
        )
    } else {
        Store::Pytorch(
            PytorchStore::from_file(path)
                .remap(remapper(hf_to_burn_patterns()))
                .map_indices_contiguous(false)
                .allow_partial(true)
                .validate(false),
        )
    };
    let keys = store.keys().map_err(file_error)?;
    let has_pooler = keys.iter().any(|k| k.starts_with("encoder.pooler."));
    let mut model = config.init_with_pooler(has_pooler, device);
    let result = store.apply(&mut model).map_err(file_error)?;
    check_tied(&mut store, &keys).map_err(|message| Error::WeightsMismatch {
        path: path.to_path_buf(),
        missing: Vec::new(),
        unexpected: Vec::new(),
        mismatched: vec![message],
    })?;
    report(path, &result)?;
    Ok(model)
}

/// A tensor's shape and raw bytes.
type ShapedBytes = (Vec<usize>, Vec<u8>);

/// Either burn-store reader, behind one interface.
enum Store {
    Safetensors(SafetensorsStore),
    Pytorch(PytorchStore),
}

impl Store {
    fn keys(&mut self) -> Result<Vec<String>, String> {
        match self {
            Self::Safetensors(s) => s.keys().map_err(|e| e.to_string()),
            Self::Pytorch(s) => s.keys().map_err(|e| e.to_string()),
        }
    }

    fn apply(&mut self, model: &mut Bert2Bert) -> Result<ApplyResult, String> {
        match self {
            Self::Safetensors(s) => model.load_from(s).map_err(|e| e.to_string()),
            Self::Pytorch(s) => model.load_from(s).map_err(|e| e.to_string()),
        }
    }

    fn bytes(&mut self, name: &str) -> Result<Option<ShapedBytes>, String> {
        let tensor = match self {
            Self::Safetensors(s) => s.get_tensor(name).map_err(|e| e.to_string())?,
            Self::Pytorch(s) => s.get_tensor(name).map_err(|e| e.to_string())?,
        };
        let Some(tensor) = tensor else {
            return Ok(None);
        };
        let shape = tensor.shape.to_vec();
        let bytes = tensor.to_bytes().map_err(|e| format!("{name}: {e:?}"))?;
        Ok(Some((shape, bytes.to_vec())))
    }
}

/// Checks that tied keys present in the file hold the same values as their sources.
fn check_tied(store: &mut Store, keys: &[String]) -> Result<(), String> {
    for (tied, source) in TIED {
        if !keys.iter().any(|k| k == tied) {
            continue;
        }
        let a = store.bytes(tied)?;
        let b = store.bytes(source)?;
        if let (Some(a), Some(b)) = (a, b)
            && a != b
        {
            return Err(format!(
                "{tied} differs from {} (an untied LM head is not supported)",
                burn_to_hf(source)
            ));
        }
    }
    Ok(())
}

/// Turns burn-store's apply result into an error naming every HF key that does not fit.
fn report(path: &Path, result: &ApplyResult) -> Result<(), Error> {
    let missing: Vec<String> = result.missing.iter().map(|(p, _)| burn_to_hf(p)).collect();
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !is_buffer(k) && !TIED.iter().any(|(t, _)| t == k))
        .map(|k| burn_to_hf(k))
        .collect();
    let mismatched: Vec<String> = result.errors.iter().map(describe_error).collect();
    if missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() {
        return Ok(());
    }
    Err(Error::WeightsMismatch {
        path: path.to_path_buf(),
        missing,
        unexpected,
        mismatched,
    })
}

/// One apply error in HF terms (linear weights shown in the file's `[out, in]` layout).
fn describe_error(error: &ApplyError) -> String {
    match error {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => {
            let linear = path.ends_with(".weight") && !path.contains("embeddings");
            let hf = |s: &burn::tensor::Shape| {
                let mut dims = s.to_vec();
                if linear {
                    dims.reverse();
                }
                format!("{dims:?}")
            };
            format!(
                "{}: the file has shape {}, config.json needs {}",
                burn_to_hf(path),
                hf(found),
                hf(expected)
            )
        }
        ApplyError::DTypeMismatch {
            path,
            expected,
            found,
        } => format!(
            "{}: the file has dtype {found:?}, the model needs {expected:?}",
            burn_to_hf(path)
        ),
        ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => {
            format!("{}: {message}", burn_to_hf(path))
        }
    }
}

/// Writes `model` and `config` as a Hugging Face directory that transformers'
/// `EncoderDecoderModel.from_pretrained` loads: `config.json` (the config as read, so
/// generation settings stay at its top level) and `model.safetensors` with HF key names,
/// `[out, in]` linear weights and no tied keys. Files are written atomically.
pub fn save_pretrained(
    model: &Bert2Bert,
    config: &Bert2BertConfig,
    dir: &Path,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    let weights = dir.join("model.safetensors");
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper(burn_to_hf_patterns()))
        .clear_metadata()
        .metadata("format", "pt")
        .overwrite(true);
    model
        .clone()
        .valid()
        .save_into(&mut store)
        .map_err(|e| Error::Save {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    let json = serde_json::to_string_pretty(&config.to_json()).expect("a config serializes");
    write_atomically(&dir.join("config.json"), json.as_bytes())
}

/// Copies the tokenizer files of a Hugging Face directory (vocab.txt, tokenizer.json,
/// tokenizer_config.json, special_tokens_map.json, whichever exist) to another.
pub fn copy_tokenizer_files(from: &Path, to: &Path) -> Result<(), Error> {
    for name in [
        "vocab.txt",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        let src = from.join(name);
        if src.is_file() {
            let bytes = std::fs::read(&src).map_err(|source| Error::Io {
                action: "reading",
                path: src.clone(),
                source,
            })?;
            write_atomically(&to.join(name), &bytes)?;
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    scalegrad_fs::write_atomic(path, bytes).map_err(|source| Error::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// Special-token ids a model built from scratch is configured with (those of the
/// tokenizer it is trained with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScratchIds {
    /// Padding.
    pub pad: u32,
    /// `[CLS]`: the decoder start token.
    pub cls: u32,
    /// `[SEP]`: end of sequence.
    pub sep: u32,
}

/// The config of a BERT2BERT trained from scratch, as a checkpoint's `config.json`
/// would hold it: `side` has the `BertConfig` keys shared by encoder and decoder
/// (`hidden_size`, `num_hidden_layers`, ...) and optionally the top-level generation
/// keys (`max_length`, `min_length`, `num_beams`, `no_repeat_ngram_size`,
/// `length_penalty`, `early_stopping`); the vocabulary size and special ids come from
/// the tokenizer. Returns the validated config with its generation settings.
pub fn scratch_config(
    side: &serde_json::Value,
    vocab_size: usize,
    ids: ScratchIds,
) -> Result<(Bert2BertConfig, GenerationSettings), Error> {
    use serde_json::json;
    let mut encoder = side.clone();
    encoder["vocab_size"] = json!(vocab_size);
    encoder["pad_token_id"] = json!(ids.pad);
    // Generation settings are top-level keys of config.json, not BERT keys.
    let mut top = serde_json::Map::new();
    for key in [
        "max_length",
        "min_length",
        "num_beams",
        "no_repeat_ngram_size",
        "length_penalty",
        "early_stopping",
    ] {
        if let Some(v) = encoder.as_object_mut().and_then(|o| o.remove(key)) {
            top.insert(key.to_string(), v);
        }
    }
    let mut decoder = encoder.clone();
    decoder["is_decoder"] = json!(true);
    decoder["add_cross_attention"] = json!(true);
    let mut full = json!({
        "model_type": "encoder-decoder",
        "is_encoder_decoder": true,
        "encoder": encoder,
        "decoder": decoder,
        "decoder_start_token_id": ids.cls,
        "pad_token_id": ids.pad,
        "eos_token_id": ids.sep,
    });
    for (k, v) in top {
        full[k] = v;
    }
    let config: Bert2BertConfig =
        serde_json::from_value(full.clone()).map_err(|e| Error::Config {
            field: "scratch".into(),
            value: side.to_string(),
            reason: e.to_string(),
        })?;
    config.validate()?;
    let generation = GenerationSettings::from_model_config(&full)?;
    Ok((config, generation))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HF_KEYS: &[&str] = &[
        "encoder.embeddings.word_embeddings.weight",
        "encoder.embeddings.LayerNorm.weight",
        "encoder.encoder.layer.0.attention.self.query.weight",
        "encoder.encoder.layer.1.attention.output.dense.bias",
        "encoder.encoder.layer.0.attention.output.LayerNorm.bias",
        "encoder.encoder.layer.3.intermediate.dense.weight",
        "encoder.encoder.layer.0.output.dense.weight",
        "encoder.encoder.layer.10.output.LayerNorm.weight",
        "encoder.pooler.dense.weight",
        "decoder.bert.embeddings.position_embeddings.weight",
        "decoder.bert.embeddings.LayerNorm.bias",
        "decoder.bert.encoder.layer.0.attention.self.value.bias",
        "decoder.bert.encoder.layer.2.crossattention.self.key.weight",
        "decoder.bert.encoder.layer.0.crossattention.output.dense.weight",
        "decoder.bert.encoder.layer.1.crossattention.output.LayerNorm.weight",
        "decoder.bert.encoder.layer.0.output.LayerNorm.bias",
        "decoder.cls.predictions.transform.dense.weight",
        "decoder.cls.predictions.transform.LayerNorm.weight",
        "decoder.cls.predictions.bias",
    ];

    #[test]
    fn key_mapping_round_trips() {
        for key in HF_KEYS {
            let burn = hf_to_burn(key);
            // burn-store's adapter renames LayerNorm weight/bias; emulate it.
            let burn_param = burn
                .replace("norm.weight", "norm.gamma")
                .replace("norm.bias", "norm.beta");
            assert_eq!(&burn_to_hf(&burn_param), key, "burn path {burn_param}");
        }
        assert_eq!(
            hf_to_burn("decoder.bert.encoder.layer.2.crossattention.self.key.weight"),
            "decoder.layers.2.cross_attn.attention.key.weight"
        );
        assert_eq!(
            hf_to_burn("encoder.encoder.layer.0.output.dense.weight"),
            "encoder.layers.0.ffn.output.weight"
        );
    }

    #[test]
    fn every_model_parameter_has_an_hf_name() {
        let model = Bert2BertConfig::tiny(10).init(&Device::flex());
        let names: Vec<String> = model
            .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
            .into_iter()
            .map(|t| burn_to_hf(&t.name))
            .collect();
        // 4 + 2 * 16 encoder layer tensors ... every name must be an HF key that maps back.
        for name in &names {
            let back = hf_to_burn(name)
                .replace("norm.weight", "norm.gamma")
                .replace("norm.bias", "norm.beta");
            assert_eq!(&burn_to_hf(&back), name);
            assert!(
                name.starts_with("encoder.embeddings.")
                    || name.starts_with("encoder.encoder.layer.")
                    || name.starts_with("encoder.pooler.dense.")
                    || name.starts_with("decoder.bert.")
                    || name.starts_with("decoder.cls.predictions."),
                "{name}"
            );
        }
        // Encoder: 5 embedding tensors + 16 per layer + 2 pooler; decoder: 5 + 26 per layer
        // + 5 head tensors.
        assert_eq!(names.len(), 5 + 2 * 16 + 2 + 5 + 2 * 26 + 5, "{names:#?}");
    }
}
