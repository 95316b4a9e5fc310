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
/// faults for all its activations again; mimalloc keeps freed pages for reuse (see
/// [`keep_freed_memory`] for how long).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`mimalloc.h`); the Rust
/// bindings name no constant for it. Its default is 1000 (ms).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the OS. By default it does so after
/// one second, about the length of a training step on the CPU, so every step faulted
/// its activations and gradients in and had the kernel zero them again (17-21% of a
/// distilgpt2 step under perf). Keeping the peak instead: 89 -> 111-118 tokens/s at
/// 1x128 and 112-119 -> 147-149 at 4x128 (`bench_gpt2_train` with and without
/// `MIMALLOC_PURGE_DELAY=-1`, same machine, interleaved runs). The process holds its
/// peak memory until it exits, which a training run reaches anyway.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: sets one of mimalloc's integer options; any value is valid for it.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Train and evaluate text generators with ScaleGrad (Lin et al., ICML 2021).
#[derive(Debug, Parser)]
#[command(
    name = "scalegrad",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SCALEGRAD_GIT_REVISION"), ")"),
    about,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    keep_freed_memory();
    // Before the first operation on a device, which makes burn read its settings.
    backend::fusion_search();
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads one of mimalloc's integer options.
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn the_purge_delay_option_is_the_one_turned_off() {
        // The index names the purge delay: 1000 ms by default in mimalloc 3, a default
        // no other option has (a wrong index after a mimalloc update fails here).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay(), 1000);
        }
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }
}
