//! `scalegrad`: fine-tune GPT-2 and BERT2BERT with MLE, ScaleGrad or unlikelihood
//! training, evaluate them with the paper's metrics, and generate text.
//!
//! Each subcommand lives in its own module under `commands/`; this file only parses the
//! command line and prints errors with their full context chain.

mod backend;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// burn's CPU backend allocates and frees tensors of many megabytes at every step. glibc
/// serves those with fresh `mmap`s and returns them at once, so each step pays page
/// faults for all its activations again; mimalloc keeps freed pages for reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train and evaluate text generators with ScaleGrad (Lin et al., ICML 2021).
#[derive(Debug, Parser)]
#[command(name = "scalegrad", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
