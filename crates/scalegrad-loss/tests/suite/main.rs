//! All of this crate's integration tests in one binary: each test file would otherwise be
//! an executable of its own linking burn (up to 100 MB each in a debug build), which
//! costs CI link time and disk. Run one part with
//! `cargo test -p scalegrad-loss --test suite MODULE`.

mod analytic;
#[path = "../common/mod.rs"]
mod common;
mod reference;
mod training;
