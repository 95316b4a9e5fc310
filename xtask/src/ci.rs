//! `cargo xtask ci`: the checks CI performs (`.ci/run` calls this), runnable locally.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{cargo, output, root, run as spawn};

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
    warn_if_disk_is_short();
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
    let mut tests = cargo();
    tests
        .args(["test", "--workspace", "--lib", "--bins", "--tests"])
        .args(features);
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        tests.env("RUST_TEST_THREADS", test_threads().to_string());
    }
    spawn(&mut tests)?;
    spawn(
        cargo()
            .args(["test", "--workspace", "--doc"])
            .args(features),
    )
}

/// Tests run at once: one more than the machine has cores. The CLI tests spend most of
/// their time in `scalegrad` processes on lavapipe, which leave a core idle while they
/// compile shaders or wait on one another, so a third test on CI's two cores fills it:
/// the CLI suite took 483 s instead of 553 s on the 2-core machine (one run each, the
/// same build).
fn test_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 1
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

/// Bytes a clean `cargo xtask ci` leaves under `target/`: 3.6 GB measured on a clean
/// clone (clippy's metadata, the debug build with wgpu, 17 test executables).
const CLEAN_BUILD_BYTES: u64 = 3_600_000_000;

/// Warns before any work when the disk holding the target directory has less room than a
/// clean build takes: a full disk shows up late and obscurely, as the linker dying with
/// "signal 7 [Bus error]" twenty minutes in. Only a warning: a warm target directory
/// needs far less, and `df` may be missing.
fn warn_if_disk_is_short() {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), Into::into);
    // `df` needs an existing path; the target directory may not exist yet.
    let probe = if target.exists() {
        target.clone()
    } else {
        root()
    };
    let Ok(out) = Command::new("df").arg("-Pk").arg(&probe).output() else {
        return;
    };
    let Some(free) = df_available_bytes(&String::from_utf8_lossy(&out.stdout)) else {
        return;
    };
    if free < CLEAN_BUILD_BYTES {
        eprintln!(
            "warning: only {:.1} GB free on the disk holding {}; a clean `cargo xtask ci` \
             writes about {:.1} GB there, and the linker fails with \"Bus error\" when the \
             disk fills. Free some space (`cargo clean` removes old builds) or set \
             CARGO_TARGET_DIR to a larger disk.",
            free as f64 / 1e9,
            target.display(),
            CLEAN_BUILD_BYTES as f64 / 1e9,
        );
    }
}

/// The "Available" column of POSIX `df -Pk` output (one file system), in bytes.
fn df_available_bytes(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let column = header
        .split_whitespace()
        .position(|h| h.eq_ignore_ascii_case("available"))?;
    let kib: u64 = lines.next()?.split_whitespace().nth(column)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::df_available_bytes;

    #[test]
    fn df_available_is_read_from_its_column() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/vda         263174212 80461124 16015688      84% /\n";
        assert_eq!(df_available_bytes(text), Some(16_015_688 * 1024));
    }

    #[test]
    fn unreadable_df_output_gives_nothing() {
        assert_eq!(df_available_bytes(""), None);
        assert_eq!(
            df_available_bytes("Filesystem Size Used\n/dev/x 1 2\n"),
            None
        );
        let garbled = "Filesystem 1024-blocks Used Available\n/dev/x 10 5 lots\n";
        assert_eq!(df_available_bytes(garbled), None);
    }
}
