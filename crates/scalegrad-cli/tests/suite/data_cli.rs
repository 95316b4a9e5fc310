//! `scalegrad data stats` and `scalegrad fetch` against the demo data, the crate
//! fixtures and HF-layout caches built in temporary folders (the hub is unreachable
//! here, so the cache is filled by hand exactly as huggingface_hub lays it out).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{self, success_json};

const SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn data_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scalegrad-data/fixtures")
}

fn scalegrad(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = common::scalegrad();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::run(&mut cmd)
}

/// An HF hub cache holding wikitext-2-raw-v1/test as the fixture parquet file.
fn hub_cache(root: &Path) -> PathBuf {
    let hub = root.join("hub");
    let repo = hub.join("datasets--Salesforce--wikitext");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), SHA).unwrap();
    let snap = repo.join("snapshots").join(SHA).join("wikitext-2-raw-v1");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::copy(
        data_fixtures().join("wikitext-20.parquet"),
        snap.join("test-00000-of-00001.parquet"),
    )
    .unwrap();
    hub
}

#[test]
fn stats_on_demo_wikitext_counts_windows_and_reuses_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("tokens");
    let tok = data_fixtures().join("tiny-gpt2");
    let args = [
        "data",
        "stats",
        "--dataset",
        "wikitext",
        "--config",
        "demo",
        "--split",
        "validation",
        "--tokenizer",
        tok.to_str().unwrap(),
        "--block-size",
        "128",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--json",
    ];
    let first = success_json(&scalegrad(&args, &[]));
    assert_eq!(first["rows"], 1521);
    assert_eq!(first["origin"], "demo");
    let tokens = first["columns"][0]["tokens"].as_u64().unwrap();
    assert_eq!(
        first["windows"]["count"].as_u64().unwrap(),
        (tokens - 129) / 128 + 1
    );
    assert_eq!(first["cache"]["status"], "built");
    let path = first["cache"]["path"].as_str().unwrap().to_string();
    assert!(Path::new(&path).starts_with(&cache), "{path}");
    let second = success_json(&scalegrad(&args, &[]));
    assert_eq!(second["cache"]["status"], "hit");
    assert_eq!(second["columns"], first["columns"]);
}

#[test]
fn stats_on_demo_cnn_dailymail_counts_examples_and_both_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = data_fixtures().join("bert-uncased");
    let out = scalegrad(
        &[
            "data",
            "stats",
            "--dataset",
            "cnn_dailymail",
            "--config",
            "demo",
            "--split",
            "test",
            "--tokenizer",
            tok.to_str().unwrap(),
            "--max-source-len",
            "64",
            "--cache-dir",
            tmp.path().to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    let report = success_json(&out);
    assert_eq!(report["examples"]["count"], 300);
    let names: Vec<&str> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["article", "highlights"]);
    assert!(report["examples"]["articles_truncated"].as_u64().unwrap() > 0);
}

#[test]
fn hub_config_is_read_offline_from_hf_hub_cache_and_hf_home() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = hub_cache(tmp.path());
    let args = [
        "data",
        "stats",
        "--dataset",
        "wikitext",
        "--config",
        "wikitext-2-raw-v1",
        "--split",
        "test",
        "--no-tokens",
        "--json",
    ];
    let one = Path::new("1");
    for env in [
        vec![("HF_HUB_CACHE", hub.as_path()), ("HF_HUB_OFFLINE", one)],
        vec![("HF_HOME", tmp.path()), ("HF_HUB_OFFLINE", one)],
    ] {
        let report = success_json(&scalegrad(&args, &env));
        assert_eq!(report["rows"], 20);
        assert_eq!(report["origin"], "hub");
        assert!(report["characters"]["text"].as_u64().unwrap() > 100);
    }
    // `fetch` with a filled cache offline just lists the shard.
    let out = scalegrad(
        &[
            "fetch",
            "dataset",
            "wikitext",
            "--config",
            "wikitext-2-raw-v1",
            "--split",
            "test",
        ],
        &[("HF_HOME", tmp.path()), ("HF_HUB_OFFLINE", one)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("test-00000-of-00001.parquet"));
}

#[test]
fn empty_cache_and_no_hub_explain_how_to_fill_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let one = Path::new("1");
    let out = scalegrad(
        &["fetch", "model", "distilgpt2"],
        &[("HF_HOME", tmp.path()), ("HF_HUB_OFFLINE", one)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "not in the Hugging Face cache",
        "offline mode",
        "huggingface-cli download distilgpt2",
        "HF_HOME",
    ] {
        assert!(err.contains(needle), "missing {needle:?}: {err}");
    }
    // Online but unreachable (nothing listens on loopback port 9), empty cache.
    let out = scalegrad(
        &[
            "data",
            "stats",
            "--dataset",
            "wikitext",
            "--config",
            "wikitext-103-raw-v1",
            "--split",
            "test",
        ],
        &[
            ("HF_HOME", tmp.path()),
            ("HF_ENDPOINT", Path::new("http://127.0.0.1:9")),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach http://127.0.0.1:9"), "{err}");
    assert!(
        err.contains("scalegrad fetch dataset Salesforce/wikitext --config wikitext-103-raw-v1"),
        "{err}"
    );
}

#[test]
fn bad_dataset_names_and_configs_are_clear_errors() {
    let out = scalegrad(&["data", "stats", "--dataset", "imdb", "--no-tokens"], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected `wikitext` or `cnn_dailymail`")
    );
    let out = scalegrad(
        &[
            "data",
            "stats",
            "--dataset",
            "wikitext",
            "--config",
            "wikitext-3",
            "--no-tokens",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("wikitext-103-raw-v1"),
        "{err}"
    );
}
