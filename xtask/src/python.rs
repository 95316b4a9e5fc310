//! The Python reference stack: a virtual environment with torch, transformers,
//! rouge_score and friends, used only to regenerate fixtures and to run the reference
//! side of benchmarks. Nothing in CI needs it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::util::{root, run};

/// `cargo xtask setup ...`
#[derive(Debug, Subcommand)]
pub enum Setup {
    /// Create ./.venv with python/requirements.txt (about 7 GB: torch ships CUDA libraries).
    Python,
    /// Make libtorch 2.9.0 (PyPI torch) available to burn's `tch` backend, reusing ./.venv,
    /// and print the variables to export.
    Libtorch(crate::libtorch::SetupArgs),
}

/// Arguments of `cargo xtask fixtures`.
#[derive(Debug, clap::Args)]
pub struct FixturesArgs {
    /// Only regenerate the fixtures of these crates (e.g. `scalegrad-gpt2`); all by default.
    crates: Vec<String>,
}

/// The virtual environment's interpreter, if the environment exists.
pub fn venv_python() -> Option<PathBuf> {
    let python = root().join(".venv/bin/python");
    python.exists().then_some(python)
}

/// The interpreter to use: `$SCALEGRAD_PYTHON`, else ./.venv, else an error saying how
/// to create it.
pub fn python() -> Result<PathBuf> {
    if let Some(python) = std::env::var_os("SCALEGRAD_PYTHON") {
        return Ok(python.into());
    }
    match venv_python() {
        Some(python) => Ok(python),
        None => bail!(
            "no Python reference environment: run `cargo xtask setup python` (creates ./.venv) \
             or set SCALEGRAD_PYTHON to an interpreter with python/requirements.txt installed"
        ),
    }
}

/// Entry point of `cargo xtask setup`.
pub fn setup(setup: Setup) -> Result<()> {
    match setup {
        Setup::Python => {
            let venv = root().join(".venv");
            if !venv.join("bin/python").exists() {
                run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
            }
            run(Command::new(venv.join("bin/pip")).args([
                "install",
                "-r",
                &root().join("python/requirements.txt").to_string_lossy(),
            ]))?;
            eprintln!("Python reference environment ready: {}", venv.display());
            Ok(())
        }
        Setup::Libtorch(args) => crate::libtorch::setup(args),
    }
}

/// Entry point of `cargo xtask fixtures`: runs every `crates/*/fixtures/make_fixtures.py`
/// (or those of the named crates) from its crate directory.
pub fn fixtures(args: FixturesArgs) -> Result<()> {
    let python = python()?;
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| {
            args.crates.is_empty()
                || args
                    .crates
                    .iter()
                    .any(|c| dir.file_name().is_some_and(|n| n == c.as_str()))
        })
        .map(|dir| dir.join("fixtures/make_fixtures.py"))
        .filter(|script| script.exists())
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        bail!("no fixtures/make_fixtures.py found for {:?}", args.crates);
    }
    for script in scripts {
        let crate_dir = script
            .parent()
            .and_then(|p| p.parent())
            .expect("crates/x/fixtures");
        run(Command::new(&python).arg(&script).current_dir(crate_dir))?;
    }
    Ok(())
}
