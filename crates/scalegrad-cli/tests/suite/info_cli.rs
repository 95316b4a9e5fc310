//! `scalegrad info`: the compiled backends, and `--check` on the flex backend (always
//! compiled in tests; checking only it keeps these tests fast even in builds that also
//! carry wgpu, whose first check compiles shaders for minutes on software Vulkan).

use std::process::Output;

use crate::common::{self, run, stdout_json};

fn scalegrad(args: &[&str]) -> Output {
    run(common::scalegrad().args(args))
}

fn compiled_backends() -> Vec<String> {
    let out = scalegrad(&["info", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)["backends"]
        .as_array()
        .expect("backends is an array")
        .iter()
        .map(|b| b.as_str().expect("backend names are strings").to_owned())
        .collect()
}

#[test]
fn json_lists_flex_and_the_crate_version_without_running_checks() {
    let out = scalegrad(&["info", "--json"]);
    assert!(out.status.success());
    let info = stdout_json(&out);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        compiled_backends().contains(&"flex".to_owned()),
        "flex missing from {info}"
    );
    assert!(
        info.get("checks").is_none(),
        "checks ran without --check: {info}"
    );
}

#[test]
fn flex_check_matches_the_host_reference_and_reports_device_and_timings() {
    let out = scalegrad(&["info", "--check", "--json", "--backend", "flex"]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = stdout_json(&out);
    let checks = info["checks"].as_array().expect("checks is an array");
    assert_eq!(checks.len(), 1, "only flex was asked for: {info}");
    let flex = &checks[0];
    assert_eq!(flex["backend"], "flex");
    assert_eq!(flex["ok"], true, "{flex}");
    assert!(flex["error"].is_null(), "{flex}");
    let device = flex["device"].as_str().expect("device is reported");
    assert!(device.contains("Flex"), "device={device}");
    assert!(
        flex["fusion"].is_null(),
        "flex has no kernel fusion: {flex}"
    );

    // The loss of uniform-ish logits over 100 tokens with gamma 0.2 is about
    // ln(100) ± a few nats; what matters is that it is finite and agrees with the host.
    let loss = flex["loss"].as_f64().expect("loss is reported");
    assert!(loss.is_finite() && loss > 0.0, "loss={loss}");
    for (name, tolerance) in [("matmul", 1e-5), ("loss", 1e-6), ("gradient", 1e-5)] {
        let error = flex["errors"][name].as_f64().expect("error is reported");
        assert!(
            error <= tolerance,
            "{name} error {error} > {tolerance} on flex"
        );
    }

    let total = flex["ms"].as_f64().expect("ms");
    let mut steps = 0.0;
    for step in [
        "init_ms",
        "matmul_cold_ms",
        "matmul_warm_ms",
        "loss_backward_ms",
    ] {
        let ms = flex["steps"][step].as_f64().expect("every step completed");
        assert!(ms >= 0.0, "{step}={ms}");
        steps += ms;
    }
    assert!(
        steps <= total,
        "steps sum to {steps} ms, more than the total {total} ms"
    );
}

/// The fusion counts of `info --check --backend wgpu`: `(operations, fused kernels,
/// single operations)`, run in `dir` when given (else in `tests/cubecl`).
#[cfg(feature = "wgpu")]
fn wgpu_fusion_counts(dir: Option<&std::path::Path>) -> (u64, u64, u64) {
    let mut cmd = common::scalegrad();
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let info = common::success_json(&run(cmd.args([
        "info",
        "--check",
        "--json",
        "--backend",
        "wgpu",
    ])));
    let fusion = &info["checks"][0]["fusion"];
    let count = |key: &str| {
        fusion[key]
            .as_u64()
            .unwrap_or_else(|| panic!("fusion.{key} missing: {info}"))
    };
    (
        count("operations"),
        count("fused_kernels"),
        count("single_operations"),
    )
}

/// A GPU pays a launch per kernel: the `wgpu` feature must bring burn's kernel fusion
/// (off with the workspace's `default-features = false` on burn unless asked for), so
/// the check's loss and backward run as fewer kernels than operations. Built without
/// fusion, every operation would run on its own and no fused kernel would be counted.
/// And scalegrad's fusion search (one open group) runs the same work with fewer
/// single operations than burn's default search, which a `burn.toml` of burn's
/// defaults (an empty one) brings back.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_runs_the_loss_and_backward_as_fused_kernels() {
    let (operations, fused, single) = wgpu_fusion_counts(None);
    assert!(fused >= 1, "no fused kernel");
    assert!(
        fused + single < operations,
        "{operations} operations ran as {fused} fused kernels and {single} single ones"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("burn.toml"), "").unwrap();
    let cubecl = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cubecl/cubecl.toml");
    std::fs::copy(cubecl, dir.path().join("cubecl.toml")).unwrap();
    let (burn_operations, burn_fused, burn_single) = wgpu_fusion_counts(Some(dir.path()));
    assert_eq!(burn_operations, operations, "the same work");
    assert!(
        fused + single < burn_fused + burn_single,
        "scalegrad's search: {fused} fused kernels and {single} single operations; \
         burn's default: {burn_fused} and {burn_single}"
    );
}

/// `info` reports the fusion search in effect: scalegrad's, or that of a `burn.toml` in
/// the working directory or above, which the binary leaves to burn.
#[test]
fn the_fusion_search_is_scalegrads_unless_a_burn_toml_sets_it() {
    let search = |dir: &std::path::Path| {
        let info = common::success_json(&run(common::scalegrad()
            .current_dir(dir)
            .args(["info", "--json"])));
        info["fusion_search"].clone()
    };
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("runs");
    std::fs::create_dir(&nested).unwrap();
    let ours = search(&nested);
    assert_eq!(
        ours["max_blocks"],
        scalegrad_ops::FUSION_MAX_BLOCKS,
        "{ours}"
    );
    assert_eq!(ours["source"], "scalegrad", "{ours}");

    let file = root.path().join("burn.toml");
    std::fs::write(&file, "[fusion.beam_search]\nmax_blocks = 3\n").unwrap();
    let users = search(&nested);
    assert_eq!(users["max_blocks"], 3, "{users}");
    assert_eq!(users["source"], file.display().to_string(), "{users}");
}

#[test]
fn checking_a_backend_that_is_not_compiled_fails_with_the_rebuild_command() {
    let compiled = compiled_backends();
    let missing = ["cuda", "tch", "ndarray", "wgpu"]
        .into_iter()
        .find(|b| !compiled.iter().any(|c| c == b))
        .expect("a test build never has every backend");
    let out = scalegrad(&["info", "--check", "--json", "--backend", missing]);
    assert!(!out.status.success(), "checking {missing} should fail");
    let info = stdout_json(&out);
    let check = &info["checks"][0];
    assert_eq!(check["backend"], missing);
    assert_eq!(check["ok"], false);
    let error = check["error"].as_str().expect("error is reported");
    assert!(
        error.contains(&format!("--features {missing}")),
        "error names no fix: {error}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("backend check failed for {missing}")),
        "stderr={stderr}"
    );
}

#[test]
fn text_check_prints_one_status_line_per_backend() {
    let out = scalegrad(&["info", "--check", "--backend", "flex", "--backend", "flex"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let status_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("flex ")).collect();
    assert_eq!(status_lines.len(), 1, "flex is checked once: {stdout}");
    assert!(status_lines[0].contains(" ok "), "{stdout}");
    assert!(stdout.contains("device: Device<Flex"), "{stdout}");
}

#[test]
fn backend_filter_without_check_is_a_usage_error() {
    let out = scalegrad(&["info", "--backend", "flex"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit with 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--check"), "stderr={stderr}");
}
