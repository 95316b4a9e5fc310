//! Loading and saving Hugging Face directories: a saved model reloads to the same logits
//! with transformers' key names, and weights that do not fit the config are reported by
//! their HF names.

use std::path::{Path, PathBuf};

use burn::store::{ModuleStore, SafetensorsStore};
use burn::tensor::{Device, Int, Tensor};
use scalegrad_bert2bert::{Bert2Bert, Error, load_pretrained, save_pretrained};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn logits(model: &Bert2Bert) -> Vec<f32> {
    let device = Device::flex();
    let src =
        Tensor::<2, Int>::from_data([[101, 150, 160, 170, 102], [101, 140, 102, 0, 0]], &device);
    let mask = Tensor::<2, Int>::from_data([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device);
    let tgt = Tensor::<2, Int>::from_data([[101, 120, 130], [101, 125, 135]], &device);
    model
        .forward(src, Some(mask), tgt, None)
        .try_into_vec_as::<f32>()
        .unwrap()
}

fn safetensors_keys(path: &Path) -> Vec<String> {
    let mut keys = SafetensorsStore::from_file(path).keys().unwrap();
    keys.sort();
    keys
}

/// A copy of a fixture directory whose config.json is edited by `edit`.
fn edited_copy(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    match load_pretrained(dir, &Device::flex()) {
        Ok(_) => panic!("{} loaded although it should not", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn saved_directory_reloads_to_identical_logits_with_hf_key_names() {
    let device = Device::flex();
    for name in ["tiny-bin", "tiny-st"] {
        let loaded = load_pretrained(&fixture(name), &device).unwrap();
        let out = tempfile::tempdir().unwrap();
        save_pretrained(&loaded.model, &loaded.config, out.path()).unwrap();
        let reloaded = load_pretrained(out.path(), &device).unwrap();
        assert_eq!(
            reloaded.config, loaded.config,
            "{name}: config.json round-trips"
        );
        assert_eq!(
            reloaded.generation, loaded.generation,
            "{name}: generation settings"
        );
        assert_eq!(
            logits(&reloaded.model),
            logits(&loaded.model),
            "{name}: logits"
        );
        if name == "tiny-st" {
            // transformers wrote this file itself: our key set must be the same.
            assert_eq!(
                safetensors_keys(&out.path().join("model.safetensors")),
                safetensors_keys(&fixture("tiny-st/model.safetensors"))
            );
        }
    }
}

#[test]
fn saved_weights_are_byte_identical_to_transformers_safetensors() {
    let device = Device::flex();
    let loaded = load_pretrained(&fixture("tiny-st"), &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_pretrained(&loaded.model, &loaded.config, out.path()).unwrap();
    let mut ours = SafetensorsStore::from_file(out.path().join("model.safetensors"));
    let mut theirs = SafetensorsStore::from_file(fixture("tiny-st/model.safetensors"));
    for key in theirs.keys().unwrap() {
        let a = ours.get_tensor(&key).unwrap().unwrap();
        let (a_shape, a_bytes) = (a.shape.to_vec(), a.to_bytes().unwrap().to_vec());
        let b = theirs.get_tensor(&key).unwrap().unwrap();
        assert_eq!(
            a_shape,
            b.shape.to_vec(),
            "{key}: shape ([out, in] for linear weights)"
        );
        assert!(
            a_bytes == b.to_bytes().unwrap().to_vec(),
            "{key}: values differ"
        );
    }
}

#[test]
fn mis_shaped_tensors_are_named_with_both_shapes() {
    let dir = edited_copy("tiny-st", |c| c["decoder"]["intermediate_size"] = 40.into());
    let e = load_error(dir.path());
    assert!(
        e.contains("decoder.bert.encoder.layer.0.intermediate.dense.weight: the file has shape [48, 32], config.json needs [40, 32]"),
        "{e}"
    );
    assert!(
        e.contains("decoder.bert.encoder.layer.2.output.dense.weight"),
        "{e}"
    );
}

#[test]
fn missing_and_unexpected_tensors_are_named() {
    // One decoder layer more than the file has: its tensors are missing.
    let dir = edited_copy("tiny-st", |c| c["decoder"]["num_hidden_layers"] = 4.into());
    let e = load_error(dir.path());
    assert!(e.contains("missing (26)"), "{e}");
    assert!(
        e.contains("decoder.bert.encoder.layer.3.crossattention.self.query.weight"),
        "{e}"
    );
    assert!(
        e.contains("decoder.bert.encoder.layer.3.output.LayerNorm.bias"),
        "{e}"
    );

    // One decoder layer fewer: the file's last layer is unexpected.
    let dir = edited_copy("tiny-bin", |c| c["decoder"]["num_hidden_layers"] = 1.into());
    let e = load_error(dir.path());
    assert!(e.contains("unexpected (26)"), "{e}");
    assert!(
        e.contains("decoder.bert.encoder.layer.1.attention.self.key.bias"),
        "{e}"
    );
    assert!(
        !e.contains("position_ids"),
        "buffers are not unexpected: {e}"
    );
    assert!(
        !e.contains("cls.predictions.decoder"),
        "tied keys are not unexpected: {e}"
    );
}

#[test]
fn unreadable_directories_and_files_are_clear_errors() {
    let empty = tempfile::tempdir().unwrap();
    let e = load_error(empty.path());
    assert!(e.contains("reading") && e.contains("config.json"), "{e}");

    let dir = edited_copy("tiny-st", |_| {});
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let e = load_pretrained(dir.path(), &Device::flex()).unwrap_err();
    assert!(matches!(e, Error::NoWeights { .. }), "{e}");

    let dir = edited_copy("tiny-st", |_| {});
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let e = load_error(dir.path());
    assert!(
        e.contains("reading weights from") && e.contains("model.safetensors"),
        "{e}"
    );

    let dir = edited_copy("tiny-bin", |c| c["decoder"]["hidden_act"] = "swish".into());
    let e = load_error(dir.path());
    assert!(e.contains("decoder.hidden_act = swish"), "{e}");
}
