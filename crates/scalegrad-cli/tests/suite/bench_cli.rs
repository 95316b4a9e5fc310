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
