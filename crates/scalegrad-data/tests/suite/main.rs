//! All of this crate's integration tests in one binary: each test file would otherwise be
//! an executable of its own linking burn (up to 100 MB each in a debug build), which
//! costs CI link time and disk. Run one part with
//! `cargo test -p scalegrad-data --test suite MODULE`.

mod hub_cache;
mod parquet_reading;
mod shaping_and_cache;
mod tokenizer_parity;
