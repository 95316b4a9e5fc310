//! Every committed config loads and validates, and bad configs fail before any work
//! with an error naming the file and the key.

use std::path::{Path, PathBuf};

use scalegrad_train::config::{ConfigError, Range, RunConfig, changed_training_keys};

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

/// Sets the dotted `key` of a TOML document, creating tables on the way.
fn set(doc: &mut toml::Table, key: &str, value: toml::Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut table = doc;
    for part in &parts[..parts.len() - 1] {
        table = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
}

/// Values outside `range`: zero or just below the bottom, just above the top and far
/// beyond it, negative, NaN and infinite.
fn bad_values(range: Range) -> Vec<toml::Value> {
    match range {
        Range::Int(lo, hi) => {
            let mut v = vec![
                toml::Value::Integer(hi as i64 + 1),
                toml::Value::Integer(i64::MAX),
                toml::Value::Integer(-1),
            ];
            if lo > 0 {
                v.push(toml::Value::Integer(lo as i64 - 1));
            }
            v
        }
        Range::Real {
            lo,
            hi,
            open_low,
            open_high,
        } => vec![
            toml::Value::Float(f64::NAN),
            toml::Value::Float(f64::INFINITY),
            toml::Value::Float(f64::NEG_INFINITY),
            toml::Value::Float(if open_low { lo } else { lo - 1.0 }),
            toml::Value::Float(if open_high { hi } else { hi * 2.0 + 1.0 }),
        ],
    }
}

/// Every numeric leaf of a config, and every optional key (null when left out).
fn numeric_leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                numeric_leaves(&key, v, out);
            }
        }
        serde_json::Value::Number(_) | serde_json::Value::Null => out.push(prefix.to_string()),
        _ => {}
    }
}

#[test]
fn every_numeric_key_has_a_range_and_rejects_what_lies_outside_it() {
    let base_text = demo_text();
    let base = parse(&base_text).unwrap();
    let ranges = base.key_ranges();
    let checked: std::collections::HashSet<&str> = ranges.iter().map(|(k, _)| *k).collect();

    // Every number (and every optional key) of every section is in the table, except
    // the seed (any u64), names and paths, and the architecture (checked by the model).
    let mut leaves = Vec::new();
    numeric_leaves("", &serde_json::to_value(&base).unwrap(), &mut leaves);
    let exempt = [
        "run.seed",
        "model.revision",
        "model.tokenizer.source",
        "data.data_dir",
    ];
    for key in &leaves {
        if exempt.contains(&key.as_str()) || key.starts_with("model.scratch.") {
            continue;
        }
        assert!(checked.contains(key.as_str()), "{key} has no range check");
    }
    assert!(checked.len() >= 35, "only {} keys checked", checked.len());

    let doc: toml::Table = toml::from_str(&base_text).unwrap();
    let mut tried = 0;
    for (key, range) in ranges {
        if key == "evaluation.decoding" {
            continue;
        }
        for value in bad_values(range) {
            let mut bad = doc.clone();
            set(&mut bad, key, value.clone());
            let text = toml::to_string(&bad).unwrap();
            let err = parse(&text).expect_err(&format!("{key} = {value} was accepted"));
            let last = key.rsplit('.').next().unwrap();
            match &err {
                ConfigError::Invalid { key: k, .. } => {
                    assert_eq!(k, key, "{key} = {value}: {err}");
                }
                // A negative count or an integer beyond the field's type fails to parse;
                // the error shows the offending line, key included.
                ConfigError::Parse { message, .. } => {
                    assert!(
                        message.contains(last),
                        "{key} = {value}: the parse error does not show the key: {message}"
                    );
                }
                other => panic!("{key} = {value}: unexpected {other}"),
            }
            tried += 1;
        }
    }
    assert!(tried > 120, "tried only {tried} values");

    for (decoding, what) in [
        ("{ strategy = \"top-k\", k = 0 }", "k = 0"),
        ("{ strategy = \"top-k\", k = 100000000 }", "k too large"),
        ("{ strategy = \"top-p\", p = 0.0 }", "p = 0"),
        ("{ strategy = \"top-p\", p = 1.5 }", "p > 1"),
        ("{ strategy = \"top-p\", p = nan }", "p NaN"),
    ] {
        let text = base_text.replace(
            "decoding = [{ strategy = \"greedy\" }]",
            &format!("decoding = [{{ strategy = \"greedy\" }}, {decoding}]"),
        );
        let err = parse(&text).expect_err(what);
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == "evaluation.decoding"),
            "{what}: {err}"
        );
    }
}

#[test]
fn lengths_that_contradict_each_other_are_rejected() {
    // [evaluation] is the demo's last section.
    let text = format!("{}\nmin_length = 40\nmax_length = 20\n", demo_text());
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "evaluation.min_length"),
        "{err}"
    );
}

#[test]
fn a_checkpoint_from_before_a_key_existed_resumes_with_its_old_behaviour() {
    let config = parse(&demo_text()).unwrap();
    let now = config.training_keys();
    assert_eq!(now["training.precision"], "f32");
    // A checkpoint written before `training.precision` existed records no such key:
    // it trained in f32, so an f32 run resumes it...
    let mut saved = now.clone();
    saved.remove("training.precision");
    assert_eq!(changed_training_keys(&saved, &now), Vec::<String>::new());
    // ...and a bf16 run does not.
    let text = demo_text().replace("[training]", "[training]\nprecision = \"bf16\"");
    let bf16 = parse(&text).unwrap().training_keys();
    let changed = changed_training_keys(&saved, &bf16);
    assert_eq!(changed, ["training.precision: (absent) -> \"bf16\""]);
    // A key the checkpoint has and the config lost still counts.
    let mut fewer = now.clone();
    fewer.remove("optimizer.lr");
    assert_eq!(changed_training_keys(&now, &fewer).len(), 1);
}
