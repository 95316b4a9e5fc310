//! Every committed config loads and validates, and bad configs fail before any work
//! with an error naming the file and the key.

use std::path::{Path, PathBuf};

use scalegrad_train::config::{ConfigError, RunConfig};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn all_configs() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for preset in std::fs::read_dir(configs_dir()).unwrap() {
        let preset = preset.unwrap().path();
        if preset.is_dir() {
            for file in std::fs::read_dir(&preset).unwrap() {
                let file = file.unwrap().path();
                if file.extension().is_some_and(|e| e == "toml") {
                    found.push(file);
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_committed_config_is_valid_and_names_its_run_uniquely() {
    let configs = all_configs();
    assert!(configs.len() >= 6, "found only {configs:?}");
    let mut seen = std::collections::HashSet::new();
    for path in &configs {
        let config = RunConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
        let preset = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            seen.insert((preset, config.run.experiment, config.run.name.clone())),
            "{}: run name {} is used twice in its preset",
            path.display(),
            config.run.name
        );
    }
}

fn demo_text() -> String {
    std::fs::read_to_string(configs_dir().join("demo/open-ended-2-sg0.2.toml")).unwrap()
}

fn parse(text: &str) -> Result<RunConfig, ConfigError> {
    let path = Path::new("configs/test.toml");
    let config = RunConfig::parse(text, path)?;
    config.validate(path)?;
    Ok(config)
}

#[test]
fn unknown_keys_are_rejected_with_file_line_and_key() {
    let text = demo_text().replace("block_size = 128", "block_size = 128\nblok_size = 64");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("configs/test.toml"), "{err}");
    assert!(err.contains("blok_size"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn out_of_range_values_name_their_key() {
    let cases = [
        ("\ngamma = 0.2", "\ngamma = 1.5", "objective.gamma"),
        ("\ngamma = 0.2", "\ngamma = 0.0", "objective.gamma"),
        // The old value stays behind as a comment, so the demo's value may change.
        ("\nlr = ", "\nlr = -1.0 # ", "optimizer.lr"),
        (
            "batch_size = 16\neval_every",
            "batch_size = 0\neval_every",
            "training.batch_size",
        ),
        (
            "\nwarmup_steps = ",
            "\nwarmup_steps = 4000 # ",
            "optimizer.warmup_steps",
        ),
        (
            "dataset = \"wikitext\"",
            "dataset = \"cnn_dailymail\"",
            "data.dataset",
        ),
        ("block_size = 128\n", "", "data.block_size"),
        ("name = \"sg0.2\"", "name = \"sg 0.2/x\"", "run.name"),
        // Names that would make --restart delete more than the run's folder.
        ("name = \"sg0.2\"", "name = \"..\"", "run.name"),
        ("name = \"sg0.2\"", "name = \".\"", "run.name"),
        ("name = \"sg0.2\"", "name = \".hidden\"", "run.name"),
        ("name = \"sg0.2\"", "name = \"sg0.\"", "run.name"),
        // Zero where the work would panic or mean nothing.
        ("window = 256", "window = 0", "evaluation.window"),
        ("prefix_len = 50", "prefix_len = 0", "evaluation.prefix_len"),
        (
            "continuation_len = 100",
            "continuation_len = 0",
            "evaluation.continuation_len",
        ),
        (
            "max_windows = 64",
            "max_windows = 0",
            "evaluation.max_windows",
        ),
        (
            "max_continuations = 100",
            "max_continuations = 0",
            "evaluation.max_continuations",
        ),
        (
            "log_every = 10",
            "log_every = 10\ncheckpoint_every = 0",
            "training.checkpoint_every",
        ),
        (
            "max_valid_examples = 64",
            "max_valid_examples = 64\nmax_train_examples = 0",
            "data.max_train_examples",
        ),
        (
            "max_valid_examples = 64",
            "max_valid_examples = 0",
            "data.max_valid_examples",
        ),
        (
            "log_every = 10",
            "log_every = 10\nchunk_mib = 0",
            "training.chunk_mib",
        ),
        (
            "decoding = [{ strategy = \"greedy\" }]",
            "decoding = [{ strategy = \"greedy\" }]\nchunk_mib = 0",
            "evaluation.chunk_mib",
        ),
    ];
    for (from, to, key) in cases {
        let text = demo_text().replacen(from, to, 1);
        assert_ne!(text, demo_text(), "{from} not found");
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
            "{from} -> {to}: expected an error on `{key}`, got: {err}"
        );
    }
}

#[test]
fn a_config_round_trips_through_its_toml_form() {
    let config = parse(&demo_text()).unwrap();
    let again = parse(&config.to_toml()).unwrap();
    assert_eq!(config, again);
}
