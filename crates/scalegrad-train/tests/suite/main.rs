//! All of this crate's integration tests in one binary: each test file would otherwise be
//! an executable of its own linking burn (up to 100 MB each in a debug build), which
//! costs CI link time and disk. Run one part with
//! `cargo test -p scalegrad-train --test suite MODULE`.

mod configs;
mod next_token_chunks;
mod trainer;
