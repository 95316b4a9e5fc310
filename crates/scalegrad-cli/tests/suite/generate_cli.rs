//! `scalegrad generate` end to end on scalegrad-gpt2's tiny fixture model: the tokens
//! and text equal transformers' `generate` (recorded by that crate's fixture script),
//! batching changes nothing, and mistakes get errors that say what to fix.

use std::path::PathBuf;
use std::process::Output;

use crate::common::{self, failure, json_lines, scalegrad};
use serde_json::Value;

fn gpt2_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scalegrad-gpt2/fixtures")
}

fn model_dir() -> String {
    gpt2_fixtures()
        .join("tiny-gpt2")
        .to_string_lossy()
        .into_owned()
}

fn expected_greedy(name: &str) -> Value {
    let path = gpt2_fixtures().join("expected/tiny-gpt2.json");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    expected["greedy"]
        .as_array()
        .expect("greedy cases")
        .iter()
        .find(|c| c["name"] == name)
        .expect("case")
        .clone()
}

fn generate(args: &[&str]) -> Output {
    common::run(scalegrad().arg("generate").args(args))
}

#[test]
fn greedy_json_output_equals_transformers_generate() {
    for (case, extra) in [
        ("plain", vec![]),
        (
            "repetition_penalty_and_no_repeat_ngram",
            vec!["--repetition-penalty", "1.5", "--no-repeat-ngram-size", "2"],
        ),
    ] {
        let expected = expected_greedy(case);
        let prompt = expected["prompt_text"].as_str().expect("prompt");
        let model = model_dir();
        let mut args = vec![
            "--model",
            model.as_str(),
            "--prompt",
            prompt,
            "--max-new-tokens",
            "20",
            "--json",
        ];
        args.extend(extra);
        let lines = json_lines(&generate(&args));
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["prompt"], prompt);
        assert_eq!(
            line["prompt_ids"], expected["prompts"][0],
            "{case}: tokenizer, rust vs python"
        );
        assert_eq!(
            line["generated_ids"], expected["new_ids"][0],
            "{case}: tokens, rust vs python"
        );
        assert_eq!(
            line["text"], expected["text"][0],
            "{case}: text, rust vs python"
        );
    }
}

#[test]
fn batch_size_does_not_change_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prompts.txt");
    std::fs::write(
        &file,
        "It was the best of times\n\nA journey of a\r\nLanguage\n",
    )
    .expect("write");
    let model = model_dir();
    let file = file.to_string_lossy().into_owned();
    let base = [
        "--model",
        model.as_str(),
        "--prompt-file",
        file.as_str(),
        "--max-new-tokens",
        "8",
        "--json",
    ];
    let one = json_lines(&generate(&[&base[..], &["--batch-size", "1"]].concat()));
    let all = json_lines(&generate(&[&base[..], &["--batch-size", "3"]].concat()));
    assert_eq!(one.len(), 3, "empty lines are skipped");
    assert_eq!(one, all);
    assert_eq!(all[2]["prompt"], "Language");
}

#[test]
fn seeded_sampling_is_reproducible_from_the_command_line() {
    let model = model_dir();
    let args = [
        "--model",
        model.as_str(),
        "--prompt",
        "The rain",
        "--strategy",
        "top-p",
        "--top-p",
        "0.95",
        "--temperature",
        "1.3",
        "--seed",
        "11",
        "--max-new-tokens",
        "12",
        "--json",
    ];
    assert_eq!(json_lines(&generate(&args)), json_lines(&generate(&args)));
}

#[test]
fn text_output_prints_the_prompt_and_its_continuation() {
    let expected = expected_greedy("plain");
    let prompt = expected["prompt_text"].as_str().expect("prompt");
    let out = generate(&[
        "--model",
        &model_dir(),
        "--prompt",
        prompt,
        "--max-new-tokens",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("{prompt}{}", expected["text"][0].as_str().expect("text"));
    assert_eq!(stdout.lines().next(), Some(want.as_str()));
}

#[test]
fn mistakes_are_errors_that_say_what_to_fix() {
    let model = model_dir();
    let err = failure(&generate(&[
        "--model",
        "./no-such-model-dir",
        "--prompt",
        "x",
    ]));
    assert!(
        err.contains("no-such-model-dir") && err.contains("neither a model directory"),
        "{err}"
    );

    let err = failure(&generate(&[
        "--model", &model, "--prompt", "x", "--top-k", "5",
    ]));
    assert!(err.contains("greedy decoding ignores them"), "{err}");

    let err = failure(&generate(&[
        "--model",
        &model,
        "--prompt",
        "x",
        "--strategy",
        "top-p",
        "--top-p",
        "1.5",
    ]));
    assert!(err.contains("top_p must be in (0, 1]"), "{err}");

    let err = failure(&generate(&[
        "--model",
        &model,
        "--prompt",
        "x",
        "--max-new-tokens",
        "500",
    ]));
    assert!(err.contains("n_positions = 64"), "{err}");

    let err = failure(&generate(&[
        "--model",
        &model,
        "--prompt-file",
        "/no/such/prompts.txt",
    ]));
    assert!(
        err.contains("reading the prompt file /no/such/prompts.txt"),
        "{err}"
    );

    // CI never compiles `cuda` (its build needs network), so it is the uncompiled one.
    if !cfg!(feature = "cuda") {
        let err = failure(&generate(&[
            "--model",
            &model,
            "--prompt",
            "x",
            "--backend",
            "cuda",
        ]));
        assert!(err.contains("not compiled into this binary"), "{err}");
    }
}

/// A hub id resolves through scalegrad-data to a snapshot of the Hugging Face cache
/// (here a pre-filled one, offline), and decodes like the directory itself.
#[test]
fn a_hub_id_resolves_through_the_offline_cache() {
    let cache = tempfile::tempdir().expect("tempdir");
    let repo = cache.path().join("models--scalegrad--tiny-gpt2");
    let snapshot = repo
        .join("snapshots")
        .join("0123456789abcdef0123456789abcdef01234567");
    std::fs::create_dir_all(&snapshot).expect("snapshot dir");
    std::fs::create_dir_all(repo.join("refs")).expect("refs dir");
    std::fs::write(
        repo.join("refs/main"),
        "0123456789abcdef0123456789abcdef01234567",
    )
    .expect("ref");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(
            gpt2_fixtures().join("tiny-gpt2").join(file),
            snapshot.join(file),
        )
        .expect("copy");
    }
    let expected = expected_greedy("plain");
    let prompt = expected["prompt_text"].as_str().expect("prompt");
    let out = scalegrad()
        .args([
            "generate",
            "--model",
            "scalegrad/tiny-gpt2",
            "--prompt",
            prompt,
        ])
        .args(["--max-new-tokens", "20", "--json"])
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run scalegrad");
    let lines = json_lines(&out);
    assert_eq!(lines[0]["generated_ids"], expected["new_ids"][0]);

    let out = scalegrad()
        .args([
            "generate",
            "--model",
            "scalegrad/not-cached",
            "--prompt",
            "x",
        ])
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run scalegrad");
    let err = failure(&out);
    assert!(err.contains("scalegrad/not-cached"), "{err}");
}

/// A binary built with wgpu stays quiet on flex: wgpu (and Mesa behind it) is never
/// started, so nothing warns about the runtime directory a Vulkan driver wants.
#[cfg(feature = "wgpu")]
#[test]
fn a_wgpu_build_prints_no_wgpu_warnings_on_flex() {
    let out = common::run(
        scalegrad()
            .args(["generate", "--backend", "flex", "--model"])
            .arg(model_dir())
            .args(["--prompt", "Hello", "--max-new-tokens", "3"])
            .env_remove("XDG_RUNTIME_DIR"),
    );
    common::succeeded(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for word in ["XDG_RUNTIME_DIR", "wgpu", "Vulkan", "MESA"] {
        assert!(!stderr.contains(word), "{word} in:\n{stderr}");
    }
}
