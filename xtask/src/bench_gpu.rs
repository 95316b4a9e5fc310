//! `cargo xtask bench gpu`: the GPU benchmark, packaged to run where the GPU is.
//!
//! A GPU machine often has PyTorch but no Rust toolchain, so the benchmark is a bundle:
//! the release `scalegrad` binary built with the GPU backend's feature, and
//! `python/bench_gpu.py`, which makes random-weight checkpoints with transformers, times
//! PyTorch on them, runs `scalegrad bench --check` on the same checkpoints and prints the
//! side-by-side table. This command builds the bundle in `target/bench-gpu/` and runs it
//! when PyTorch sees a CUDA GPU here; otherwise it says how to run it elsewhere.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, run};

/// The cargo feature of `scalegrad-cli` that builds `backend` for a GPU: `wgpu` with
/// burn's SPIR-V compiler (the `vulkan` feature) where Vulkan is the API, plain `wgpu`
/// on macOS (Metal). `tch` is refused: scalegrad's `--backend tch` is libtorch on the
/// CPU (burn's `Device::libtorch()`), so its ratio against PyTorch on CUDA would mean
/// nothing.
pub fn feature(backend: &str) -> Result<&'static str> {
    Ok(match backend {
        "wgpu" if cfg!(any(target_os = "linux", target_os = "windows")) => "vulkan",
        "wgpu" => "wgpu",
        "cuda" => "cuda",
        "tch" => bail!(
            "scalegrad's `tch` backend runs libtorch on the CPU, so it is not a GPU backend; \
             benchmark the GPU with --backend wgpu or --backend cuda"
        ),
        other => bail!("`{other}` is not a GPU backend of scalegrad; use wgpu or cuda"),
    })
}

/// The command that runs the bundle's script: the backend, the precision (f32 when
/// `None`) and the arguments after `--`.
fn script_args(backend: &str, precision: Option<&str>, extra: &[String]) -> Result<Vec<String>> {
    if precision.is_some() && extra.iter().any(|a| a.starts_with("--precision")) {
        bail!("--precision is given twice (before and after `--`); give it once");
    }
    let mut args = vec!["--backend".to_string(), backend.to_string()];
    if let Some(precision) = precision {
        args.extend(["--precision".to_string(), precision.to_string()]);
    }
    args.extend(extra.iter().cloned());
    Ok(args)
}

/// Builds the bundle and runs it where a CUDA GPU is visible to PyTorch.
pub fn run_gpu(backend: &str, precision: Option<&str>, extra: &[String]) -> Result<()> {
    let script = script_args(backend, precision, extra)?;
    let feature = feature(backend)?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "scalegrad-cli",
        "--features",
        feature,
    ]))?;
    let bundle = root().join("target/bench-gpu");
    std::fs::create_dir_all(&bundle)?;
    copy(
        &root().join("target/release/scalegrad"),
        &bundle.join("scalegrad"),
    )?;
    copy(
        &root().join("python/bench_gpu.py"),
        &bundle.join("bench_gpu.py"),
    )?;
    let command = format!("python3 bench_gpu.py {}", script.join(" "));
    let python = crate::python::python().unwrap_or_else(|_| "python3".into());
    let has_gpu = Command::new(&python)
        .args([
            "-c",
            "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !has_gpu {
        eprintln!(
            "built {}; PyTorch sees no CUDA GPU here, so nothing was timed. Copy that folder \
             to the GPU machine (it needs python3 with torch and transformers, no Rust) and \
             run `{command}` there; `--tiny --device cpu --backend flex` is a smoke test.",
            bundle.display()
        );
        return Ok(());
    }
    run(Command::new(python)
        .arg(bundle.join("bench_gpu.py"))
        .args(&script)
        .current_dir(&bundle))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::{feature, script_args};

    #[test]
    fn gpu_backends_map_to_their_build_features() {
        let wgpu = feature("wgpu").unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(wgpu, "vulkan");
        }
        assert_eq!(feature("cuda").unwrap(), "cuda");
        for cpu in ["tch", "flex"] {
            let err = feature(cpu).unwrap_err().to_string();
            assert!(err.contains("not a GPU backend"), "{err}");
        }
    }

    #[test]
    fn the_script_gets_the_precision_and_the_extra_arguments() {
        let extra = ["--steps".to_string(), "5".to_string()];
        assert_eq!(
            script_args("wgpu", Some("bf16"), &extra).unwrap().join(" "),
            "--backend wgpu --precision bf16 --steps 5"
        );
        assert_eq!(
            script_args("cuda", None, &[]).unwrap().join(" "),
            "--backend cuda"
        );
        let twice = ["--precision".to_string(), "f16".to_string()];
        let err = script_args("wgpu", Some("bf16"), &twice).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
