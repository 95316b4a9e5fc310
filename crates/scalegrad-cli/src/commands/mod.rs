//! The subcommands, one module each.

mod info;

use anyhow::Result;
use clap::Subcommand;

/// Every subcommand of `scalegrad`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version, the compiled backends and the devices they see.
    Info(info::Args),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Info(args) => info::run(args),
        }
    }
}
