//! `scalegrad bench`, the Rust side of the GPU benchmark, at its tiny size: every case
//! reports a throughput, and `--check` compares the backend with flex on the same
//! weights (on wgpu, Mesa's software Vulkan in CI: the device execution paths). Each case
//! also reports its timed span in Unix time, for averaging a GPU's sampled utilisation.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::{self, json_lines, run, succeeded};

/// The bench's output lines and the Unix time (seconds) just before and after it ran.
fn bench(backend: &str) -> (Vec<Value>, f64, f64) {
    let before = unix_seconds();
    let out = run(common::scalegrad().args([
        "bench",
        "--size",
        "tiny",
        "--steps",
        "1",
        "--check",
        "--backend",
        backend,
    ]));
    let after = unix_seconds();
    succeeded(&out);
    (json_lines(&out), before, after)
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn assert_complete((lines, before, after): (Vec<Value>, f64, f64), backend: &str) {
    let checks: Vec<&Value> = lines.iter().filter(|l| l.get("check").is_some()).collect();
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "gpt2 logits",
            "gpt2 cross-entropy",
            "gpt2 scalegrad 0.2",
            "b2b logits",
            "b2b cross-entropy"
        ]
    );
    for check in &checks {
        assert_eq!(check["backend"], backend);
        assert_eq!(check["ok"], true, "{check}");
        assert!(
            check["relative_difference"].as_f64().unwrap() <= 1e-3,
            "{check}"
        );
    }
    let cases: Vec<(&str, f64)> = lines
        .iter()
        .filter_map(|l| Some((l.get("case")?.as_str()?, l["value"].as_f64()?)))
        .collect();
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        [
            "gpt2-train ce 2x16",
            "gpt2-train sg0.2 2x16",
            "gpt2-train ce 4x16",
            "gpt2-train sg0.2 4x16",
            "b2b-train ce 2x24+8",
            "gpt2-greedy b1 6+5",
            "gpt2-greedy b3 6+5"
        ]
    );
    for (case, value) in cases {
        assert!(value.is_finite() && value > 0.0, "{case}: {value}");
    }
    // The timed spans lie within the run, in the order of the cases, one after another.
    let mut previous_end = before;
    for line in lines.iter().filter(|l| l.get("case").is_some()) {
        let span: Vec<f64> = line["span"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        let [start, end] = span[..] else {
            panic!("{line}")
        };
        assert!(
            previous_end <= start && start < end && end <= after,
            "{line}"
        );
        previous_end = end;
    }
}

#[test]
fn every_case_reports_a_throughput_on_flex() {
    assert_complete(bench("flex"), "flex");
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_agrees_with_flex_and_reports_every_case() {
    assert_complete(bench("wgpu"), "wgpu");
}

#[test]
fn a_selection_runs_only_the_named_cases() {
    let out = run(common::scalegrad().args([
        "bench", "--size", "tiny", "--steps", "1", "--only", "greedy",
    ]));
    succeeded(&out);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["case"].as_str().unwrap().contains("greedy"))
    );
}

/// A one-layer GPT-2 (random weights, scalegrad-gpt2's tiny fixture tokenizer) whose
/// 270,000-token vocabulary at width 128 makes the token embedding one 132 MiB buffer:
/// larger than the 128 MiB that wgpu allows one storage buffer on Mesa's software Vulkan
/// (CI's device for the wgpu tests). The vocabulary stays below 524,280 tokens, where a
/// product with the LM head would exceed the device's 65,535 workgroups per dimension
/// first.
#[cfg(feature = "wgpu")]
fn oversized_gpt2(dir: &std::path::Path) {
    use scalegrad_gpt2::Gpt2Config;
    let tokenizer = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scalegrad-gpt2/fixtures/tiny-gpt2");
    let config = Gpt2Config {
        n_embd: 128,
        n_layer: 1,
        ..Gpt2Config::tiny(270_000)
    };
    config
        .init(&burn::tensor::Device::flex())
        .save_pretrained(dir, Some(&tokenizer))
        .expect("saving the oversized GPT-2");
}

/// A buffer the device cannot allocate is one error naming what failed and what to do,
/// never a panic: in the benchmark, whose timed steps read nothing back (it reads the last
/// loss after the clock stops; before, it printed the speed of kernels skipped for want
/// of their buffers), and in `generate`, whose decoding reads its tokens with
/// `try_into_data`.
#[cfg(feature = "wgpu")]
#[test]
fn a_buffer_larger_than_the_device_allows_is_an_error_not_a_throughput() {
    let dir = tempfile::tempdir().unwrap();
    oversized_gpt2(dir.path());
    let model = dir.path().to_str().unwrap();
    let too_big = "asked for a buffer larger than this device allows in one piece \
                   (can't allocate buffer of size: 138240000, 132 MiB)";
    let case = "gpt2-train ce 2x16";
    let out = run(common::scalegrad().args([
        "bench",
        "--backend",
        "wgpu",
        "--size",
        "tiny",
        "--steps",
        "1",
        "--gpt2",
        model,
        "--only",
        case,
    ]));
    let err = common::failure(&out);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains(&format!("{case} {too_big}; run it on a larger device")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = run(common::scalegrad().args([
        "generate",
        "--model",
        model,
        "--prompt",
        "hello",
        "--max-new-tokens",
        "2",
        "--backend",
        "wgpu",
    ]));
    let err = common::failure(&out);
    assert!(
        err.contains(&format!("decoding {too_big}; lower --batch-size (now 8)")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
