//! Small helpers for spawning processes from the workspace root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The cargo that runs us, so toolchain overrides carry over.
///
/// `cargo xtask` is `cargo run`, which gives us the variables it sets for a running
/// package (`CARGO_MANIFEST_DIR=.../xtask`, `CARGO_PKG_*`, ...). They are removed here:
/// some build scripts track them (ring's reruns on `CARGO_MANIFEST_DIR`), so a nested
/// build that inherited them would fingerprint differently from the same build run from
/// a shell, and each would recompile burn and its dependencies after the other.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `cmd` with inherited stdio and fails with the command line when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its standard output; standard error is passed through.
pub fn output(cmd: &mut Command) -> Result<String> {
    eprintln!("$ {}", describe(cmd));
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed with {}", describe(cmd), out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("output of `{}`", describe(cmd)))
}

/// The command line as a shell would show it.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cargo arguments that turn on the AVX-512 matrix kernels (the `x86-v4` feature, see
/// `crates/scalegrad-ops`) for `package` when this is an x86-64 machine and the package
/// has the feature. The kernels are picked at run time, so the binaries still run on
/// CPUs without AVX-512; on this project's CPU they make a distilgpt2 train step 16-26%
/// faster (README, Backends), for about 3.5 more minutes of a fresh release build.
/// `cargo xtask bench` always uses them, `cargo xtask reproduce` with `--avx512`; plain
/// `cargo build` and `cargo test` leave them out, which keeps test builds short.
pub fn cpu_kernel_features(package: &str) -> Vec<&'static str> {
    const WITH_FEATURE: [&str; 4] = [
        "scalegrad-cli",
        "scalegrad-train",
        "scalegrad-gpt2",
        "scalegrad-bert2bert",
    ];
    if cfg!(target_arch = "x86_64") && WITH_FEATURE.contains(&package) {
        vec!["--features", "x86-v4"]
    } else {
        Vec::new()
    }
}
