//! libtorch for burn's `tch` backend, taken from PyPI's `torch==2.9.0` wheel.
//!
//! burn 0.22's `tch` backend links tch 0.22 / torch-sys 0.22, which expects exactly
//! PyTorch 2.9.0 and, without help, downloads libtorch from download.pytorch.org at build
//! time (unreachable here). With `LIBTORCH_USE_PYTORCH=1` torch-sys instead asks the
//! `python` on `PATH` (the virtual environment's, when `VIRTUAL_ENV` is set) where torch's
//! headers and libraries are. The resulting binary needs torch's `lib/` directory at run
//! time: `LD_LIBRARY_PATH` below, or the rpath that `crates/scalegrad-cli/build.rs` adds.
//!
//! The environment is `./.venv`, shared with the Python reference stack
//! (`python/requirements.txt` pins the same torch); an environment holding only torch is
//! enough for `tch`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, run};

/// The PyTorch version tch 0.22 (torch-sys `TORCH_VERSION`) is generated against.
pub const TORCH_VERSION: &str = "2.9.0";

/// Arguments of `cargo xtask setup libtorch`.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// Only print the `export` lines (installs nothing; fails if the environment is not
    /// ready), for `eval "$(cargo xtask setup libtorch --print-env)"`.
    #[arg(long, conflicts_with = "check")]
    print_env: bool,
    /// Then build the CLI with `--features tch` (dev profile; 10+ minutes the first time:
    /// burn is compiled with another feature set) and run
    /// `scalegrad info --check --backend tch` with these variables.
    #[arg(long)]
    check: bool,
}

/// Asks Python for torch's version and package directory without importing torch (which
/// takes seconds with the CUDA wheel).
const PYTHON_TORCH_LOCATION: &str = "\
import importlib.metadata, importlib.util
spec = importlib.util.find_spec('torch')
print(importlib.metadata.version('torch') if spec else '')
print(spec.submodule_search_locations[0] if spec else '')
";

/// The virtual environment used for libtorch.
pub fn venv_dir() -> PathBuf {
    root().join(".venv")
}

/// Entry point of `cargo xtask setup libtorch`: reuses `./.venv` when it holds torch
/// 2.9.0, otherwise creates it (if needed) and installs `torch==2.9.0` into it, then
/// prints the variables to export on stdout (everything else goes to stderr).
pub fn setup(args: SetupArgs) -> Result<()> {
    if !args.print_env {
        ensure_torch()?;
    }
    let (venv, torch_lib) = locate()?;
    if !args.print_env {
        eprintln!(
            "libtorch {TORCH_VERSION} is ready in {}.\nBuild and run the tch backend with \
             these variables (or `eval \"$(cargo xtask setup libtorch --print-env)\"`):\n  \
             cargo build --release -p scalegrad-cli --features tch\n  \
             target/release/scalegrad info --check --backend tch",
            venv_dir().display()
        );
    }
    if args.check {
        check()?;
    }
    print!("{}", export_script(&venv, &torch_lib)?);
    Ok(())
}

/// Builds the CLI with the `tch` feature and checks the backend, with the variables of
/// [`libtorch_env`] (child output goes to stderr).
fn check() -> Result<()> {
    let env = libtorch_env()?;
    run(cargo()
        .args(["build", "-p", "scalegrad-cli", "--features", "tch"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::io::stderr()))?;
    run(Command::new(root().join("target/debug/scalegrad"))
        .args(["info", "--check", "--backend", "tch"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::io::stderr()))
    .context("the tch backend check failed")
}

/// The variables that let torch-sys build against the PyPI wheel in `./.venv` and let
/// the binary find libtorch at run time: `LIBTORCH_USE_PYTORCH`, `VIRTUAL_ENV`, `PATH`
/// (the environment's `bin/` first) and `LD_LIBRARY_PATH` (torch's `lib/` first).
///
/// Fails, naming `cargo xtask setup libtorch`, when the environment or torch 2.9.0 is
/// missing. Runs the environment's Python once (about 0.1 s; torch is not imported).
pub fn libtorch_env() -> Result<Vec<(String, String)>> {
    let (venv, torch_lib) = locate()?;
    compose_env(
        &venv,
        &torch_lib,
        std::env::var_os("PATH").as_deref(),
        std::env::var_os("LD_LIBRARY_PATH").as_deref(),
    )
}

/// The environment directory and torch's `lib/` in it, after checking that torch is
/// exactly 2.9.0 and ships its libraries.
fn locate() -> Result<(PathBuf, PathBuf)> {
    let venv = venv_dir();
    let torch = torch_location(&venv)?.with_context(|| {
        format!(
            "{} has no torch: run `cargo xtask setup libtorch` (installs torch=={TORCH_VERSION} \
             from PyPI, about 3.7 GB)",
            venv.display()
        )
    })?;
    if torch.version.split('+').next() != Some(TORCH_VERSION) {
        bail!(
            "{} has torch {}, but burn's tch backend (tch 0.22) needs exactly {TORCH_VERSION}: \
             run `cargo xtask setup libtorch` to install torch=={TORCH_VERSION}",
            venv.display(),
            torch.version
        );
    }
    let lib = torch.package_dir.join("lib");
    if !lib.join("libtorch_cpu.so").exists() && !lib.join("libtorch_cpu.dylib").exists() {
        bail!(
            "torch {} in {} has no libtorch_cpu library in {}; reinstall it with \
             `{}/bin/pip install --force-reinstall torch=={TORCH_VERSION}`",
            torch.version,
            venv.display(),
            lib.display(),
            venv.display()
        );
    }
    Ok((venv, lib))
}

/// torch as installed in an environment.
struct TorchLocation {
    /// The installed distribution's version (`2.9.0` for the PyPI wheel; a local build may
    /// add a `+...` suffix, which is ignored).
    version: String,
    /// The `torch` package directory (`.../site-packages/torch`).
    package_dir: PathBuf,
}

/// torch's version and package directory in `venv`, `None` when torch is not installed;
/// an error when the environment itself is missing.
fn torch_location(venv: &Path) -> Result<Option<TorchLocation>> {
    let python = venv.join("bin/python");
    if !python.exists() {
        bail!(
            "no virtual environment at {}: run `cargo xtask setup libtorch` (creates it with \
             torch=={TORCH_VERSION}, about 3.7 GB) or `cargo xtask setup python` (the full \
             reference stack)",
            venv.display()
        );
    }
    let out = Command::new(&python)
        .args(["-c", PYTHON_TORCH_LOCATION])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("{} failed with {}", python.display(), out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (version, dir) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    if version.is_empty() || dir.is_empty() {
        return Ok(None);
    }
    Ok(Some(TorchLocation {
        version: version.trim().to_owned(),
        package_dir: PathBuf::from(dir.trim()),
    }))
}

/// Makes sure `./.venv` exists and holds torch 2.9.0, creating it and installing
/// `torch==2.9.0` (only torch) when not. Installer output goes to stderr so that stdout
/// carries only the export lines.
fn ensure_torch() -> Result<()> {
    let venv = venv_dir();
    if !venv.join("bin/python").exists() {
        eprintln!("creating {}", venv.display());
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .stdout(std::io::stderr()))
        .context(
            "creating the virtual environment (on Debian/Ubuntu `python3 -m venv` needs \
             `sudo apt-get install python3-venv`)",
        )?;
    }
    if let Some(torch) = torch_location(&venv)?
        && torch.version.split('+').next() == Some(TORCH_VERSION)
    {
        eprintln!("reusing torch {} in {}", torch.version, venv.display());
        return Ok(());
    }
    let pin = torch_pin()?;
    eprintln!(
        "installing {pin} into {} from PyPI: about 3.7 GB to download (the Linux wheel \
         ships CUDA libraries) and 6.7 GB on disk; a few minutes",
        venv.display()
    );
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", &pin])
        .stdout(std::io::stderr()))
    .with_context(|| format!("installing {pin} (needs access to pypi.org)"))
}

/// The torch requirement line of `python/requirements.txt` (one source of truth for the
/// version), checked against [`TORCH_VERSION`].
fn torch_pin() -> Result<String> {
    let path = root().join("python/requirements.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let pin = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("torch=="))
        .with_context(|| format!("{} has no `torch==` line", path.display()))?;
    if pin != format!("torch=={TORCH_VERSION}") {
        bail!(
            "{} pins `{pin}`, but tch 0.22 needs torch=={TORCH_VERSION}; fix the pin",
            path.display()
        );
    }
    Ok(pin.to_owned())
}

/// The variables for an environment `venv` whose torch libraries are in `torch_lib`,
/// given the current `PATH` and `LD_LIBRARY_PATH` (each gets its directory in front,
/// unless it is already there).
fn compose_env(
    venv: &Path,
    torch_lib: &Path,
    path: Option<&OsStr>,
    ld_library_path: Option<&OsStr>,
) -> Result<Vec<(String, String)>> {
    Ok(vec![
        ("LIBTORCH_USE_PYTORCH".to_owned(), "1".to_owned()),
        ("VIRTUAL_ENV".to_owned(), utf8(venv)?.to_owned()),
        ("PATH".to_owned(), prepend(&venv.join("bin"), path)?),
        (
            "LD_LIBRARY_PATH".to_owned(),
            prepend(torch_lib, ld_library_path)?,
        ),
    ])
}

/// `dir` followed by the entries of the search path `current`, without repeating `dir`.
fn prepend(dir: &Path, current: Option<&OsStr>) -> Result<String> {
    let mut entries = vec![dir.to_path_buf()];
    if let Some(current) = current {
        entries.extend(std::env::split_paths(current).filter(|entry| entry != dir));
    }
    let joined: OsString = std::env::join_paths(entries)
        .with_context(|| format!("{} contains a path separator", dir.display()))?;
    joined
        .into_string()
        .map_err(|bad| anyhow::anyhow!("search path is not UTF-8: {bad:?}"))
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

/// The `export` lines for a POSIX shell. `PATH` and `LD_LIBRARY_PATH` put the
/// environment's directories in front of the shell's own values at `eval` time (not
/// this process's, which `cargo run` has extended with its target directories).
fn export_script(venv: &Path, torch_lib: &Path) -> Result<String> {
    let bin = venv.join("bin");
    Ok(format!(
        "export LIBTORCH_USE_PYTORCH=1\n\
         export VIRTUAL_ENV={}\n\
         export PATH={}\"${{PATH:+:$PATH}}\"\n\
         export LD_LIBRARY_PATH={}\"${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\"\n",
        shell_quote(utf8(venv)?),
        shell_quote(utf8(&bin)?),
        shell_quote(utf8(torch_lib)?),
    ))
}

/// Single-quotes `value` for a POSIX shell (a `'` becomes `'\''`).
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Runs a shell snippet and returns its standard output (used by the tests to check that
/// the export lines survive `eval`).
#[cfg(test)]
fn sh(script: &str) -> Result<String> {
    crate::util::output(Command::new("sh").args(["-c", script]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_bin_and_torch_lib_come_first_and_are_not_repeated() {
        let env = compose_env(
            Path::new("/w/.venv"),
            Path::new("/w/.venv/lib/python3.11/site-packages/torch/lib"),
            Some(OsStr::new("/w/.venv/bin:/usr/bin:/bin")),
            None,
        )
        .unwrap();
        let get = |name: &str| env.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(get("LIBTORCH_USE_PYTORCH"), "1");
        assert_eq!(get("VIRTUAL_ENV"), "/w/.venv");
        assert_eq!(get("PATH"), "/w/.venv/bin:/usr/bin:/bin");
        assert_eq!(
            get("LD_LIBRARY_PATH"),
            "/w/.venv/lib/python3.11/site-packages/torch/lib"
        );
    }

    #[test]
    fn existing_ld_library_path_is_kept_after_torch_lib() {
        let env = compose_env(
            Path::new("/v"),
            Path::new("/v/torch/lib"),
            None,
            Some(OsStr::new("/opt/a:/opt/b")),
        )
        .unwrap();
        assert_eq!(env[3].1, "/v/torch/lib:/opt/a:/opt/b");
        assert_eq!(env[2].1, "/v/bin");
    }

    #[test]
    fn export_script_prepends_to_the_shells_own_search_paths() {
        let script = export_script(Path::new("/it's/.venv"), Path::new("/t/lib")).unwrap();
        let probe = r#"printf '%s|%s|%s|%s' "$LIBTORCH_USE_PYTORCH" "$VIRTUAL_ENV" "$PATH" "$LD_LIBRARY_PATH""#;
        let with_paths = format!("PATH=/usr/bin; LD_LIBRARY_PATH=/opt/x; {script}{probe}");
        assert_eq!(
            sh(&with_paths).unwrap(),
            "1|/it's/.venv|/it's/.venv/bin:/usr/bin|/t/lib:/opt/x"
        );
        let without_ld = format!("PATH=/usr/bin; unset LD_LIBRARY_PATH; {script}{probe}");
        assert_eq!(
            sh(&without_ld).unwrap(),
            "1|/it's/.venv|/it's/.venv/bin:/usr/bin|/t/lib"
        );
    }
}
