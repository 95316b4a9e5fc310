//! All of this crate's integration tests in one binary: each test file would otherwise be
//! an executable of its own linking burn (up to 100 MB each in a debug build), which
//! costs CI link time and disk. Run one part with
//! `cargo test -p scalegrad-cli --test suite MODULE`.

mod bench_cli;
mod common;
mod crash_resume;
mod data_cli;
mod demo_smoke;
mod generate_cli;
mod info_cli;
mod precision;
mod rouge_cli;
mod summarize_cli;
