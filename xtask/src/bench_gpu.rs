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
/// on macOS (Metal).
fn feature(backend: &str) -> Result<&'static str> {
    Ok(match backend {
        "wgpu" if cfg!(any(target_os = "linux", target_os = "windows")) => "vulkan",
        "wgpu" => "wgpu",
        "cuda" => "cuda",
        "tch" => "tch",
        other => bail!("`{other}` is not a GPU backend of scalegrad; use wgpu, cuda or tch"),
    })
}

/// Builds the bundle and runs it where a CUDA GPU is visible to PyTorch.
pub fn run_gpu(backend: &str, extra: &[String]) -> Result<()> {
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
    let command = format!("python3 bench_gpu.py --backend {backend}");
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
        .args(["--backend", backend])
        .args(extra)
        .current_dir(&bundle))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::feature;

    #[test]
    fn gpu_backends_map_to_their_build_features() {
        let wgpu = feature("wgpu").unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(wgpu, "vulkan");
        }
        assert_eq!(feature("cuda").unwrap(), "cuda");
        assert_eq!(feature("tch").unwrap(), "tch");
        let err = feature("flex").unwrap_err().to_string();
        assert!(err.contains("not a GPU backend"), "{err}");
    }
}
