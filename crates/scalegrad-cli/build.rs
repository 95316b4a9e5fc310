//! Build script: with the `tch` feature, records libtorch's directory as an rpath so the
//! binary runs without `LD_LIBRARY_PATH`.
//!
//! torch-sys links libtorch dynamically but gives the binary no rpath, so a `tch` build
//! otherwise fails at start-up with "libtorch_cuda.so: cannot open shared object file".
//! This script finds the directory the same way torch-sys does:
//! - `LIBTORCH_USE_PYTORCH` set: ask the Python torch-sys uses (`python` when
//!   `VIRTUAL_ENV` is set, else `python3`) where the torch package is, and use its `lib/`
//!   (see `cargo xtask setup libtorch`);
//! - otherwise `LIBTORCH_LIB` or `LIBTORCH`, plus `lib/`.
//!
//! Without the `tch` feature it prints its rerun conditions and returns: no Python, no
//! cost.
//!
//! It also records the code being built: `SCALEGRAD_GIT_REVISION` is the workspace's git
//! commit (12 hex digits) with `-dirty` when tracked files differ from it, or `unknown`
//! outside a git checkout (a crates.io source, an exported tarball). Run provenance and
//! `--version` report it, so a result names the code that produced it, not the
//! repository the binary happens to be run from. (vergen-gitcl does the same through the
//! git command line; two git calls did not warrant its dependencies.)

use std::path::PathBuf;
use std::process::Command;

/// Locates torch's `lib/` without importing torch (importing the CUDA wheel takes seconds).
const PYTHON_TORCH_LIB: &str = "\
import importlib.util, os
spec = importlib.util.find_spec('torch')
print(os.path.join(spec.submodule_search_locations[0], 'lib') if spec else '')
";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    record_git_revision();
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    for var in [
        "LIBTORCH_USE_PYTORCH",
        "LIBTORCH",
        "LIBTORCH_LIB",
        "VIRTUAL_ENV",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    match libtorch_lib_dir() {
        Ok(dir) => {
            // `rustc-link-arg` (not `-bins`) so the crate's test binaries get it too.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
        Err(why) => println!(
            "cargo:warning=no rpath to libtorch ({why}); run the binary with \
             LD_LIBRARY_PATH=<torch>/lib, see `cargo xtask setup libtorch`"
        ),
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn record_git_revision() {
    let revision = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            // Rebuild when the commit or the index moves, or any source of the workspace
            // changes (what makes a build dirty).
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                for file in ["HEAD", "index", "refs/heads", "packed-refs"] {
                    println!("cargo:rerun-if-changed={dir}/{file}");
                }
            }
            if let Some(root) = git(&["rev-parse", "--show-toplevel"]) {
                for path in ["crates", "Cargo.toml", "Cargo.lock"] {
                    println!("cargo:rerun-if-changed={root}/{path}");
                }
            }
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=SCALEGRAD_GIT_REVISION={revision}");
}

fn libtorch_lib_dir() -> Result<PathBuf, String> {
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        let out = Command::new(python)
            .args(["-c", PYTHON_TORCH_LIB])
            .output()
            .map_err(|err| format!("running {python}: {err}"))?;
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || dir.is_empty() {
            return Err(format!("{python} found no torch package"));
        }
        return Ok(PathBuf::from(dir));
    }
    let root = std::env::var_os("LIBTORCH_LIB")
        .or_else(|| std::env::var_os("LIBTORCH"))
        .ok_or("neither LIBTORCH_USE_PYTORCH nor LIBTORCH is set")?;
    Ok(PathBuf::from(root).join("lib"))
}
