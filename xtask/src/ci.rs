//! `cargo xtask ci`: the checks `.ci/run` performs, runnable locally.

use anyhow::Result;

use crate::util::{cargo, run as spawn};

/// Arguments of `cargo xtask ci`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy; only run the tests.
    #[arg(long)]
    tests_only: bool,
}

/// The cargo feature list CI builds: the default CPU backend plus wgpu (software Vulkan).
pub const CI_FEATURES: &str = "scalegrad-cli/wgpu";

/// Runs formatting, lint and test checks in the same order and with the same flags as CI.
pub fn run_ci(tests_only: bool) -> Result<()> {
    if !tests_only {
        spawn(cargo().args(["fmt", "--all", "--check"]))?;
        spawn(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            CI_FEATURES,
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    spawn(cargo().args(["test", "--workspace", "--features", CI_FEATURES]))
}

/// Entry point of `cargo xtask ci`.
pub fn run(args: Args) -> Result<()> {
    run_ci(args.tests_only)
}
