//! Hugging Face checkpoints in and out.
//!
//! Tensor names, Hugging Face (`GPT2LMHeadModel`, prefix `transformer.` optional on
//! load) to this crate's [`Gpt2`] module:
//!
//! | Hugging Face                         | burn (`Gpt2`)                           | shape             |
//! |--------------------------------------|-----------------------------------------|-------------------|
//! | `wte.weight`                         | `token_embedding.weight`                | `[vocab, E]`      |
//! | `wpe.weight`                         | `position_embedding.weight`             | `[positions, E]`  |
//! | `h.{i}.ln_1.weight` / `.bias`        | `blocks.{i}.ln_1.gamma` / `.beta`       | `[E]`             |
//! | `h.{i}.attn.c_attn.weight` / `.bias` | `blocks.{i}.attn.qkv.weight` / `.bias`  | `[E, 3E]`, `[3E]` |
//! | `h.{i}.attn.c_proj.weight` / `.bias` | `blocks.{i}.attn.proj.weight` / `.bias` | `[E, E]`, `[E]`   |
//! | `h.{i}.ln_2.weight` / `.bias`        | `blocks.{i}.ln_2.gamma` / `.beta`       | `[E]`             |
//! | `h.{i}.mlp.c_fc.weight` / `.bias`    | `blocks.{i}.mlp.fc.weight` / `.bias`    | `[E, 4E]`, `[4E]` |
//! | `h.{i}.mlp.c_proj.weight` / `.bias`  | `blocks.{i}.mlp.proj.weight` / `.bias`  | `[4E, E]`, `[E]`  |
//! | `ln_f.weight` / `.bias`              | `ln_f.gamma` / `.beta`                  | `[E]`             |
//! | `lm_head.weight`                     | none: tied to `wte` (checked equal)     | `[vocab, E]`      |
//! | `h.{i}.attn.bias`, `.masked_bias`    | none: old causal-mask buffers, ignored  |                   |
//!
//! No weight is transposed. GPT-2 was written with a `Conv1D` layer whose weight is
//! stored `[in, out]`, which is exactly the layout of burn's `Linear`. (burn-store's
//! PyTorch adapter transposes every `Linear` weight because `nn.Linear` stores
//! `[out, in]`; applied here it would corrupt the model, and the square `[E, E]`
//! projections would still pass every shape check. So tensors are read through the
//! stores but applied with a plain float cast, and the parity tests compare logits.)
//!
//! The LM head is the token embedding (`tie_word_embeddings`): the model has a single
//! parameter for both, so after loading nothing may be missing at all, and the only
//! tolerated extra tensors are the tied `lm_head.weight` (which must equal `wte`) and
//! the buffers of old checkpoints.

use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    ApplyError, FloatCastAdapter, KeyRemapper, ModuleSnapshot, ModuleStore, PytorchStore,
    SafetensorsStore,
};
use burn::tensor::{DType, Device};

use crate::Gpt2Error;
use crate::config::Gpt2Config;
use crate::model::Gpt2;

/// Weight files, in order of preference.
pub const WEIGHT_FILES: &[&str] = &["model.safetensors", "pytorch_model.bin"];

/// Tokenizer and generation files copied next to a saved checkpoint when present.
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
];

/// Hugging Face to burn name rewrites, applied in order to every tensor name.
pub fn hf_to_burn_patterns() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"^transformer\.", ""),
        (r"^wte\.", "token_embedding."),
        (r"^wpe\.", "position_embedding."),
        (r"^h\.([0-9]+)\.", "blocks.$1."),
        (r"\.attn\.c_attn\.", ".attn.qkv."),
        (r"\.attn\.c_proj\.", ".attn.proj."),
        (r"\.mlp\.c_fc\.", ".mlp.fc."),
        (r"\.mlp\.c_proj\.", ".mlp.proj."),
        (r"(^|\.)(ln_1|ln_2|ln_f)\.weight$", "${1}${2}.gamma"),
        (r"(^|\.)(ln_1|ln_2|ln_f)\.bias$", "${1}${2}.beta"),
    ]
}

/// burn to Hugging Face (`GPT2LMHeadModel`, with the `transformer.` prefix) rewrites,
/// the inverse of [`hf_to_burn_patterns`].
pub fn burn_to_hf_patterns() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"^token_embedding\.", "wte."),
        (r"^position_embedding\.", "wpe."),
        (r"^blocks\.([0-9]+)\.", "h.$1."),
        (r"\.attn\.qkv\.", ".attn.c_attn."),
        (r"\.attn\.proj\.", ".attn.c_proj."),
        (r"\.mlp\.fc\.", ".mlp.c_fc."),
        (r"\.mlp\.proj\.", ".mlp.c_proj."),
        (r"\.gamma$", ".weight"),
        (r"\.beta$", ".bias"),
        (r"^", "transformer."),
    ]
}

fn remapper(patterns: &[(&str, &str)]) -> KeyRemapper {
    patterns
        .iter()
        .fold(KeyRemapper::new(), |remapper, (from, to)| {
            remapper
                .add_pattern(*from, *to)
                .expect("the name patterns are valid regexes")
        })
}

/// The Hugging Face name of a burn parameter path (without the `transformer.` prefix),
/// for error messages.
pub fn hf_name(burn_path: &str) -> String {
    let remapper = remapper(&burn_to_hf_patterns());
    let mut name = burn_path.to_string();
    for (pattern, replacement) in &remapper.patterns {
        name = pattern
            .replace_all(&name, replacement.as_str())
            .into_owned();
    }
    name.trim_start_matches("transformer.").to_string()
}

/// Tensors a checkpoint may hold that the model has no parameter for: the tied LM
/// head and the causal-mask buffers old transformers versions saved.
fn is_tolerated_extra(burn_name: &str) -> bool {
    burn_name == "lm_head.weight"
        || (burn_name.starts_with("blocks.")
            && (burn_name.ends_with(".attn.bias") || burn_name.ends_with(".attn.masked_bias")))
}

/// What a load found, for logging.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The weights file read.
    pub path: PathBuf,
    /// Number of tensors applied to the model.
    pub applied: usize,
    /// Tolerated extra tensors that were skipped (Hugging Face names).
    pub ignored: Vec<String>,
}

impl Gpt2 {
    /// Loads `config.json` and the weights (`model.safetensors`, else
    /// `pytorch_model.bin`) of a Hugging Face GPT-2 directory onto `device`.
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        device: &Device,
    ) -> Result<(Self, LoadReport), Gpt2Error> {
        let dir = dir.as_ref();
        let config = Gpt2Config::from_file(dir.join("config.json"))?;
        let weights = weights_file(dir)?;
        config.init(device).load_weights(&weights)
    }

    /// Replaces every parameter with the tensors of a safetensors or PyTorch checkpoint
    /// (chosen by extension: `.safetensors`, else a torch pickle), checking that the
    /// file holds exactly this configuration's tensors with their shapes.
    pub fn load_weights(mut self, path: impl AsRef<Path>) -> Result<(Self, LoadReport), Gpt2Error> {
        let path = path.as_ref();
        let store_error = |message: String| Gpt2Error::Store {
            action: "reading",
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(Gpt2Error::io(
                "reading",
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let remap = remapper(&hf_to_burn_patterns());
        let tensors: Vec<PackTensor> = if path.extension().is_some_and(|e| e == "safetensors") {
            let mut store = SafetensorsStore::from_file(path).remap(remap);
            let all = store
                .get_all_tensors()
                .map_err(|e| store_error(e.to_string()))?;
            all.values().cloned().collect()
        } else {
            let mut store = PytorchStore::from_file(path).remap(remap);
            let all = store
                .get_all_tensors()
                .map_err(|e| store_error(e.to_string()))?;
            all.values().cloned().collect()
        };

        let (tensors, extras): (Vec<_>, Vec<_>) = tensors
            .into_iter()
            .partition(|t| !is_tolerated_extra(&t.name));
        let lm_head = extras.iter().find(|t| t.name == "lm_head.weight").cloned();
        let ignored = extras.iter().map(|t| hf_name(&t.name)).collect();

        // A float cast (f16/bf16 checkpoints to f32) and nothing else: see the module docs
        // on why no weight is transposed.
        let result = self.apply(
            tensors,
            None,
            Some(Box::new(FloatCastAdapter::to(DType::F32))),
            false,
        );

        let mut mis_shaped = Vec::new();
        let mut other = Vec::new();
        for error in &result.errors {
            match error {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => mis_shaped.push(format!(
                    "{}: file {:?}, model {:?}",
                    hf_name(path),
                    found.as_slice(),
                    expected.as_slice()
                )),
                other_error => other.push(other_error.to_string()),
            }
        }
        let missing: Vec<String> = result.missing.iter().map(|(p, _)| hf_name(p)).collect();
        let unexpected: Vec<String> = result.unused.iter().map(|p| hf_name(p)).collect();
        if !(missing.is_empty()
            && unexpected.is_empty()
            && mis_shaped.is_empty()
            && other.is_empty())
        {
            return Err(Gpt2Error::Mismatch {
                path: path.to_path_buf(),
                missing,
                unexpected,
                mis_shaped,
                other,
            });
        }
        if let Some(lm_head) = lm_head {
            self.check_tied_head(&lm_head, path)?;
        }
        Ok((
            self,
            LoadReport {
                path: path.to_path_buf(),
                applied: result.applied.len(),
                ignored,
            },
        ))
    }

    /// An `lm_head.weight` in the file must be the token embedding: this model cannot
    /// represent an untied head, and silently dropping one would change the model.
    fn check_tied_head(&self, lm_head: &PackTensor, path: &Path) -> Result<(), Gpt2Error> {
        let mismatch = |reason: String| Gpt2Error::Mismatch {
            path: path.to_path_buf(),
            missing: vec![],
            unexpected: vec![],
            mis_shaped: vec![],
            other: vec![format!(
                "lm_head.weight differs from wte.weight ({reason}); this GPT-2 ties the LM head \
                 to the token embedding and cannot load an untied head"
            )],
        };
        let wte = self.token_embedding.weight.val();
        if lm_head.shape.as_slice() != wte.dims().as_slice() {
            return Err(mismatch(format!("shape {:?}", lm_head.shape.as_slice())));
        }
        let head = burn::store::bridge::to_data(lm_head)
            .map_err(|e| mismatch(format!("unreadable: {e}")))?
            .try_into_vec_as::<f32>()
            .map_err(|e| mismatch(format!("{e:?}")))?;
        let wte = wte
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| mismatch(format!("{e:?}")))?;
        if head != wte {
            return Err(mismatch("different values".to_string()));
        }
        Ok(())
    }

    /// Saves the model as a Hugging Face directory that
    /// `GPT2LMHeadModel.from_pretrained(dir)` loads: `config.json` and
    /// `model.safetensors` (f32, `transformer.`-prefixed names, no `lm_head.weight`, as
    /// transformers saves a tied head), plus the tokenizer files of `tokenizer_dir`
    /// ([`TOKENIZER_FILES`]) when given. Files are written atomically.
    pub fn save_pretrained(
        &self,
        dir: impl AsRef<Path>,
        tokenizer_dir: Option<&Path>,
    ) -> Result<(), Gpt2Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Gpt2Error::io("creating", dir, e))?;
        write_atomic(
            &dir.join("config.json"),
            self.config().to_json_string().as_bytes(),
        )?;
        let weights = dir.join("model.safetensors");
        let mut store = SafetensorsStore::from_file(&weights)
            .remap(remapper(&burn_to_hf_patterns()))
            .metadata("format", "pt")
            .overwrite(true);
        self.save_into(&mut store).map_err(|e| Gpt2Error::Store {
            action: "writing",
            path: weights.clone(),
            message: e.to_string(),
        })?;
        if let Some(source) = tokenizer_dir {
            for name in TOKENIZER_FILES {
                let from = source.join(name);
                if from.is_file() && source != dir {
                    let bytes =
                        std::fs::read(&from).map_err(|e| Gpt2Error::io("reading", &from, e))?;
                    write_atomic(&dir.join(name), &bytes)?;
                }
            }
        }
        Ok(())
    }
}

/// The weights file of a model directory: `model.safetensors`, else `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf, Gpt2Error> {
    if let Some(found) = WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    let found = match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        }
        Err(e) => return Err(Gpt2Error::io("listing", dir, e)),
    };
    Err(Gpt2Error::NoWeights {
        dir: dir.to_path_buf(),
        found,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Gpt2Error> {
    scalegrad_fs::write_atomic(path, bytes).map_err(|e| Gpt2Error::io("writing", path, e))
}
