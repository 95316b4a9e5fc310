//! Loading, saving and configuration errors.

use crate::common;

use std::path::Path;

use burn::tensor::Device;
use common::*;
use scalegrad_gpt2::{Activation, Gpt2, Gpt2Config, Gpt2Error};

/// The real distilgpt2 `config.json` from the hub (which omits several fields that take
/// transformers' defaults).
const DISTILGPT2_CONFIG: &str = r#"{
  "_num_labels": 1,
  "activation_function": "gelu_new",
  "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1,
  "bos_token_id": 50256,
  "embd_pdrop": 0.1,
  "eos_token_id": 50256,
  "id2label": {"0": "LABEL_0"},
  "initializer_range": 0.02,
  "label2id": {"LABEL_0": 0},
  "layer_norm_epsilon": 1e-05,
  "model_type": "gpt2",
  "n_ctx": 1024,
  "n_embd": 768,
  "n_head": 12,
  "n_layer": 6,
  "n_positions": 1024,
  "resid_pdrop": 0.1,
  "summary_activation": null,
  "summary_first_dropout": 0.1,
  "summary_proj_to_labels": true,
  "summary_type": "cls_index",
  "summary_use_proj": true,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
  "vocab_size": 50257
}"#;

#[test]
fn distilgpt2_config_json_reads_as_the_named_constructor() {
    let config = Gpt2Config::from_json_str(DISTILGPT2_CONFIG).expect("parses");
    let named = Gpt2Config::distilgpt2();
    assert_eq!(
        (
            config.n_layer,
            config.n_embd,
            config.n_head,
            config.n_positions,
            config.vocab_size
        ),
        (
            named.n_layer,
            named.n_embd,
            named.n_head,
            named.n_positions,
            named.vocab_size
        )
    );
    assert_eq!(config.activation_function, Activation::GeluNew);
    assert!(
        config.scale_attn_weights && config.tie_word_embeddings,
        "transformers' defaults"
    );
    assert_eq!(config.eos_token_ids(), vec![50256]);
    // Unused keys survive a round trip.
    let written: serde_json::Value = serde_json::from_str(&config.to_json_string()).expect("json");
    assert_eq!(
        written["task_specific_params"]["text-generation"]["max_length"],
        50
    );
    assert_eq!(written["n_ctx"], 1024);
    assert_eq!(written["architectures"][0], "GPT2LMHeadModel");
}

#[test]
fn unsupported_config_values_are_errors_naming_the_field() {
    let with = |key: &str, value: &str| -> String {
        let mut json: serde_json::Value = serde_json::from_str(DISTILGPT2_CONFIG).expect("json");
        json[key] = serde_json::from_str(value).expect("value");
        match Gpt2Config::from_json_str(&json.to_string()) {
            Ok(_) => panic!("{key} = {value} was accepted"),
            Err(e) => e.to_string(),
        }
    };
    let err = with("activation_function", r#""swish""#);
    assert!(
        err.contains("unknown variant `swish`") && err.contains("gelu_new"),
        "{err}"
    );
    assert!(with("n_head", "7").contains("`n_head` = 7: must divide n_embd = 768"));
    assert!(with("add_cross_attention", "true").contains("add_cross_attention"));
    assert!(with("tie_word_embeddings", "false").contains("tie_word_embeddings"));
    assert!(with("model_type", r#""bert""#).contains("model_type"));
    assert!(with("attn_pdrop", "1.5").contains("attn_pdrop"));
    assert!(
        with("n_layer", r#""six""#).contains("n_layer")
            || with("n_layer", r#""six""#).contains("invalid type")
    );
    let err = Gpt2Config::from_file("/nonexistent/config.json")
        .expect_err("missing file")
        .to_string();
    assert!(err.contains("reading /nonexistent/config.json"), "{err}");
}

/// The pickle fixture carries `transformer.` names, the tied `lm_head.weight` and the
/// old `attn.bias` / `attn.masked_bias` buffers: all accepted, the extras reported.
#[test]
fn pytorch_pickle_with_tied_head_and_legacy_buffers_loads() {
    let (_, report) =
        Gpt2::from_pretrained(fixture("tiny-gpt2-bin"), &Device::flex()).expect("loads");
    assert!(report.path.ends_with("pytorch_model.bin"));
    assert_eq!(
        report.applied,
        2 + 2 * 12 + 2,
        "every parameter of a 2-layer model"
    );
    let mut ignored = report.ignored.clone();
    ignored.sort();
    assert_eq!(
        ignored,
        [
            "h.0.attn.bias",
            "h.0.attn.masked_bias",
            "h.1.attn.bias",
            "h.1.attn.masked_bias",
            "lm_head.weight"
        ]
    );
}

/// The saved directory reloads to identical logits, keeps the config and the tokenizer.
#[test]
fn saved_checkpoint_reloads_to_the_same_logits() {
    let device = Device::flex();
    for name in MODELS {
        let model = load(name);
        let dir = tempfile::tempdir().expect("tempdir");
        model
            .save_pretrained(dir.path(), Some(&fixture(name)))
            .expect("saves");
        let (reloaded, report) = Gpt2::from_pretrained(dir.path(), &device).expect("reloads");
        assert!(
            report.ignored.is_empty(),
            "a saved tied model has no lm_head.weight"
        );
        let ids = u32s(&expected(name)["single"]["input_ids"]);
        let before = to_vec(model.forward(ids_tensor(std::slice::from_ref(&ids), &device), None));
        let after = to_vec(reloaded.forward(ids_tensor(&[ids], &device), None));
        assert_eq!(before, after, "{name}: logits after a save and reload");
        let written = Gpt2Config::from_json_str(&model.config().to_json_string()).expect("config");
        assert_eq!(
            reloaded.config(),
            &written,
            "{name}: config.json round trip"
        );
        let has_tokenizer = fixture(name).join("tokenizer.json").is_file();
        assert_eq!(
            dir.path().join("tokenizer.json").is_file(),
            has_tokenizer,
            "{name}: tokenizer copied"
        );
    }
}

/// A directory whose config.json is the fixture's with one change, and its weights.
fn edited_copy(name: &str, key: &str, value: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = fixture(name);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("config.json")).expect("config"))
            .expect("json");
    config[key] = value;
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write");
    for file in ["model.safetensors", "pytorch_model.bin"] {
        if source.join(file).is_file() {
            std::fs::copy(source.join(file), dir.path().join(file)).expect("copy");
        }
    }
    dir
}

fn load_error(dir: &Path) -> (String, Gpt2Error) {
    let err = Gpt2::from_pretrained(dir, &Device::flex()).expect_err("must not load");
    (err.to_string(), err)
}

#[test]
fn mis_shaped_tensors_are_named_with_both_shapes() {
    let dir = edited_copy("tiny-gpt2", "n_inner", serde_json::json!(128));
    let (message, err) = load_error(dir.path());
    let Gpt2Error::Mismatch {
        mis_shaped,
        missing,
        unexpected,
        ..
    } = err
    else {
        panic!("expected a mismatch, got {message}")
    };
    assert!(missing.is_empty() && unexpected.is_empty(), "{message}");
    assert!(
        mis_shaped
            .iter()
            .any(|m| m == "h.0.mlp.c_fc.weight: file [64, 256], model [64, 128]"),
        "{message}"
    );
    assert!(
        message.contains("tensors of the wrong shape (6)"),
        "{message}"
    );
}

#[test]
fn missing_and_unexpected_tensors_are_named() {
    let dir = edited_copy("tiny-gpt2", "n_layer", serde_json::json!(3));
    let (message, _) = load_error(dir.path());
    assert!(
        message.contains("missing tensors (12)") && message.contains("h.2.attn.c_attn.weight"),
        "{message}"
    );

    let dir = edited_copy("tiny-gpt2-bin", "n_layer", serde_json::json!(1));
    let (message, _) = load_error(dir.path());
    assert!(
        message.contains("unexpected tensors (12)") && message.contains("h.1.mlp.c_proj.bias"),
        "{message}"
    );
    assert!(message.contains("pytorch_model.bin"), "{message}");
}

#[test]
fn a_directory_without_weights_is_an_error_listing_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        fixture("tiny-gpt2").join("config.json"),
        dir.path().join("config.json"),
    )
    .expect("copy");
    let (message, _) = load_error(dir.path());
    assert!(
        message.contains("expected model.safetensors or pytorch_model.bin (found: config.json)"),
        "{message}"
    );
    let err = Gpt2::from_pretrained("/nonexistent-model-dir", &Device::flex()).expect_err("no dir");
    assert!(
        err.to_string()
            .contains("/nonexistent-model-dir/config.json"),
        "{err}"
    );
}

#[test]
fn a_corrupt_weights_file_is_an_error_naming_it() {
    let dir = edited_copy("tiny-gpt2", "n_layer", serde_json::json!(2));
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .expect("write");
    let (message, _) = load_error(dir.path());
    assert!(
        message.contains("reading") && message.contains("model.safetensors"),
        "{message}"
    );
}

/// `fixtures/check_transformers_loads.py` saved every fixture with `save_pretrained`
/// and loaded it with `GPT2LMHeadModel.from_pretrained`: its committed record must say
/// that nothing was missing, unexpected or mis-shaped, the head was tied, and the
/// logits matched.
#[test]
fn transformers_loaded_our_saved_checkpoints() {
    let record = expected("transformers_roundtrip");
    for name in MODELS {
        let result = &record["models"][name];
        assert_eq!(result["ok"], true, "{name}: {result}");
        let diff = result["max_abs_logit_diff"].as_f64().expect("diff");
        assert!(
            diff <= LOGITS_TOLERANCE as f64,
            "{name}: transformers logits differ by {diff}"
        );
    }
}
