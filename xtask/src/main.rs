//! `cargo xtask`: the project's orchestration. It spawns cargo, the `scalegrad` binary
//! and the Python reference scripts; it never links the model crates, so it builds in
//! seconds.

mod bench;
mod bench_gpu;
mod ci;
mod libtorch;
mod plot;
mod python;
mod readme;
mod report;
mod reproduce;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Project automation for scalegrad.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run what CI runs: rustfmt check, clippy, the test suite.
    Ci(ci::Args),
    /// Prepare optional environments (the Python reference stack, libtorch for `tch`).
    #[command(subcommand)]
    Setup(python::Setup),
    /// Regenerate the committed parity fixtures with the Python reference stack.
    Fixtures(python::FixturesArgs),
    /// Run a side-by-side benchmark: ours (release build) beside the reference stack.
    Bench(bench::Args),
    /// Run an experiment grid (a preset of configs) with the release CLI, then the report.
    Reproduce(reproduce::Args),
    /// Write REPORT.md and figures from finished runs.
    Report(report::Args),
    /// Regenerate README.md's generated parts (the presets table).
    Readme,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Ci(args) => ci::run(args),
        Command::Setup(setup) => python::setup(setup),
        Command::Fixtures(args) => python::fixtures(args),
        Command::Bench(args) => bench::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Report(args) => report::run(args),
        Command::Readme => readme::run(),
    }
}
