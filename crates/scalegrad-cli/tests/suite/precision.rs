//! Mixed precision end to end: bf16 and f16 training track f32, the loss scaler is
//! logged, and a backend without the type refuses it before any work.

use std::path::{Path, PathBuf};

use crate::common::{self, events, succeeded};
use serde_json::Value;

/// A run's length and size: `steps` optimiser steps of `batch` windows of `block` tokens,
/// logging every `log_every`.
#[derive(Clone, Copy)]
struct Schedule {
    steps: usize,
    log_every: usize,
    batch: usize,
    block: usize,
}

/// The open-ended demo (its model, data and optimiser) on `schedule`, validating at the
/// end, with a small evaluation.
fn config(dir: &Path, schedule: Schedule) -> PathBuf {
    let Schedule {
        steps,
        log_every,
        batch,
        block,
    } = schedule;
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/demo/open-ended-2-sg0.2.toml"),
    )
    .unwrap()
    .replace("max_valid_examples = 64", "max_valid_examples = 16")
    .replace("max_windows = 64", "max_windows = 1")
    .replace("max_continuations = 100", "max_continuations = 1")
    .replace("continuation_len = 100", "continuation_len = 8")
    .replace("steps = 200", &format!("steps = {steps}"))
    .replace(
        "warmup_steps = 20",
        &format!("warmup_steps = {}", steps / 10),
    )
    .replace("batch_size = 16", &format!("batch_size = {batch}"))
    .replace("block_size = 128", &format!("block_size = {block}"))
    .replace("eval_every = 50", &format!("eval_every = {steps}"))
    .replace("log_every = 10", &format!("log_every = {log_every}"));
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("precision.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn train(config: &Path, out: &Path, backend: &str, precision: &str) -> std::process::Output {
    common::run(
        common::scalegrad()
            .args(["train", "--config"])
            .arg(config)
            .arg("--out")
            .arg(out)
            .args(["--backend", backend, "--precision", precision])
            .env("HF_HUB_OFFLINE", "1"),
    )
}

fn losses(run: &Path) -> Vec<f64> {
    events(run)
        .iter()
        .filter(|e| e["event"] == "train")
        .map(|e| e["loss"].as_f64().unwrap())
        .collect()
}

fn perplexity(run: &Path) -> f64 {
    events(run)
        .iter()
        .rev()
        .find(|e| e["event"] == "valid")
        .unwrap()["perplexity"]
        .as_f64()
        .unwrap()
}

/// The distinct tensor types in a safetensors file's header.
fn tensor_dtypes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let mut dtypes: Vec<String> = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(_, tensor)| tensor["dtype"].as_str().unwrap().to_string())
        .collect();
    dtypes.sort();
    dtypes.dedup();
    dtypes
}

fn within(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        got.is_finite() && ((got - want) / want).abs() <= tolerance,
        "{what}: {got} against f32's {want} (more than {}% apart)",
        tolerance * 100.0
    );
}

/// Runs `precisions` of the config on `backend`, each in its own output folder, and
/// checks every logged training loss and the final validation perplexity against f32
/// within 2%. Returns the run folders.
fn tracks_f32(tmp: &Path, backend: &str, precisions: &[&str], schedule: Schedule) -> Vec<PathBuf> {
    let Schedule {
        steps, log_every, ..
    } = schedule;
    let config = config(tmp, schedule);
    let run = |precision: &str| {
        let out = tmp.join(precision);
        succeeded(&train(&config, &out, backend, precision));
        out.join("open-ended/sg0.2")
    };
    let reference = run("f32");
    let want = losses(&reference);
    assert_eq!(want.len(), steps / log_every);
    let mut runs = vec![reference.clone()];
    for precision in precisions {
        let dir = run(precision);
        let got = losses(&dir);
        assert_eq!(got.len(), want.len());
        // Rounded products cannot reproduce f32's losses to the last digit.
        assert_ne!(
            got, want,
            "{precision} logged f32's losses: was it applied?"
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            within(
                &format!("{backend} {precision} loss at step {}", (i + 1) * log_every),
                *g,
                *w,
                0.02,
            );
        }
        within(
            &format!("{backend} {precision} validation perplexity"),
            perplexity(&dir),
            perplexity(&reference),
            0.02,
        );
        let metrics: Value = common::json(&dir.join("metrics.json"));
        assert_eq!(metrics["provenance"]["precision"], *precision);
        assert_eq!(tensor_dtypes(&dir.join("best/model.safetensors")), ["F32"]);
        runs.push(dir);
    }
    runs
}

#[test]
fn bf16_and_f16_training_track_f32_within_two_percent_on_flex() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = Schedule {
        steps: 100,
        log_every: 10,
        batch: 8,
        block: 128,
    };
    let runs = tracks_f32(tmp.path(), "flex", &["bf16", "f16"], demo);
    // f16 logs its loss scale (2^16 at the start, as PyTorch's GradScaler); bf16 none.
    let scale = |run: &Path| {
        events(run)
            .iter()
            .find(|e| e["event"] == "train")
            .unwrap()
            .get("loss_scale")
            .cloned()
    };
    assert_eq!(scale(&runs[1]), None);
    let f16 = scale(&runs[2]).expect("f16 logs its loss scale");
    assert!(f16.as_f64().unwrap() <= 65536.0, "{f16}");
}

/// On wgpu the products run as f16 kernels (flex converts to f32 around each product),
/// so this is where the loss scaler meets f16's range on a device. The same 100 steps as
/// on flex with smaller batches (2 windows of 32 tokens, not 8 of 128): a step of the
/// demo's batch takes a second on CI's software Vulkan, and two runs of them would add
/// minutes to CI.
#[cfg(feature = "wgpu")]
#[test]
fn f16_tracks_f32_on_wgpu_and_bf16_is_refused_where_the_device_lacks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let small = Schedule {
        steps: 100,
        log_every: 10,
        batch: 2,
        block: 32,
    };
    let config = config(tmp.path(), small);
    let out = tmp.path().join("bf16");
    let refused = train(&config, &out, "wgpu", "bf16");
    let message = common::failure(&refused);
    // Mesa's software Vulkan (CI) has f16 arithmetic and no bf16 (as wgpu everywhere).
    assert!(
        message.contains("wgpu") && message.contains("bf16") && message.contains("--precision"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert!(
        !out.join("open-ended/sg0.2/checkpoints").exists(),
        "work started"
    );
    let runs = tracks_f32(&tmp.path().join("tracked"), "wgpu", &["f16"], small);
    // Every logged f16 step carries its loss scale (tracks_f32 checked there are ten).
    let f16 = events(&runs[1]);
    let mut logged = f16.iter().filter(|e| e["event"] == "train");
    assert!(logged.all(|e| e["loss_scale"].as_f64().is_some()));
}

#[cfg(feature = "wgpu")]
#[test]
fn generate_and_summarize_refuse_a_missing_half_type_before_loading_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("articles.txt");
    std::fs::write(&input, "An article.\n").unwrap();
    let missing = tmp.path().join("no-such-model");
    for command in ["generate", "summarize"] {
        let mut cmd = common::scalegrad();
        cmd.args([
            command,
            "--backend",
            "wgpu",
            "--precision",
            "bf16",
            "--model",
        ])
        .arg(&missing);
        if command == "generate" {
            cmd.args(["--prompt", "Hello"]);
        } else {
            cmd.arg("--input").arg(&input);
        }
        let message = common::failure(&common::run(&mut cmd));
        // The precision is the error, not the model that does not exist.
        assert!(
            message.contains("bf16") && message.contains("--precision"),
            "{command}: {message}"
        );
        assert!(!message.contains("no-such-model"), "{command}: {message}");
    }
}
