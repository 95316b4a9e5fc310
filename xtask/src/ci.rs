//! `cargo xtask ci`: the checks CI performs (`.ci/run` calls this), runnable locally.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{cargo, output, run as spawn};

/// Arguments of `cargo xtask ci`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy; only run the tests.
    #[arg(long)]
    tests_only: bool,
    /// Build without the wgpu backend (no Vulkan driver needed; CI always includes it).
    #[arg(long)]
    no_wgpu: bool,
}

/// Mesa's software Vulkan driver, which lets the wgpu backend run without a GPU.
const LAVAPIPE_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

/// Entry point of `cargo xtask ci`: rustfmt check, clippy with warnings denied, then the
/// whole test suite, with the default CPU backend plus wgpu.
pub fn run(args: Args) -> Result<()> {
    let features: &[&str] = if args.no_wgpu {
        &[]
    } else {
        ensure_vulkan_driver()?;
        &["--features", "scalegrad-cli/wgpu"]
    };
    if !args.tests_only {
        spawn(cargo().args(["fmt", "--all", "--check"]))?;
        spawn(
            cargo()
                .args(["clippy", "--workspace", "--all-targets"])
                .args(features)
                .args(["--", "-D", "warnings"]),
        )?;
    }
    // The examples (benchmark programs and resave tools) are left out of the test build:
    // clippy has checked them, and linking them would add 700 MB of debug executables,
    // which once filled a CI machine's disk. `--doc` cannot be combined with target
    // selection, so the doctests are a second invocation (it reuses every artifact).
    spawn(
        cargo()
            .args(["test", "--workspace", "--lib", "--bins", "--tests"])
            .args(features),
    )?;
    spawn(
        cargo()
            .args(["test", "--workspace", "--doc"])
            .args(features),
    )
}

/// Makes sure a Vulkan driver is present for the wgpu tests, installing Mesa's software
/// driver with apt-get when running as root on Debian/Ubuntu.
fn ensure_vulkan_driver() -> Result<()> {
    if Path::new(LAVAPIPE_ICD).exists() || std::env::var_os("VK_ICD_FILENAMES").is_some() {
        return Ok(());
    }
    let is_root = output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    let has_apt = Path::new("/usr/bin/apt-get").exists();
    if !(is_root && has_apt) {
        bail!(
            "the wgpu tests need a Vulkan driver and none was found ({LAVAPIPE_ICD}); install \
             Mesa's software driver with `sudo apt-get install mesa-vulkan-drivers libvulkan1`, \
             or run `cargo xtask ci --no-wgpu` to test the CPU backend only"
        );
    }
    eprintln!("installing Mesa's software Vulkan driver (lavapipe) for the wgpu tests");
    spawn(Command::new("apt-get").args(["update", "-qq"]))?;
    spawn(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(["mesa-vulkan-drivers", "libvulkan1"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
