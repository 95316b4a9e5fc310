//! Writes the embedded demo corpora into the workspace's `datasets/` folder:
//!
//! ```text
//! datasets/wikitext-demo/{train,validation,test}.parquet        (text)
//! datasets/cnn_dailymail-demo/{train,validation,test}.parquet   (article, highlights, id)
//! ```
//!
//! Run `cargo run -p scalegrad-demo --example make_demo_data [-- OUT_DIR]`. The output is
//! byte-for-byte the same on every run and machine (fixed seeds, see
//! `scalegrad_demo`), so the committed files can be checked by rerunning it.

use std::path::PathBuf;

use scalegrad_data::source::datasets_dir;
use scalegrad_demo::{NEWS_SPLITS, WIKITEXT_SPLITS, write_news_split, write_wikitext_split};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(datasets_dir);
    let written = WIKITEXT_SPLITS
        .iter()
        .map(|(split, _, _)| write_wikitext_split(&out, split))
        .chain(
            NEWS_SPLITS
                .iter()
                .map(|(split, _, _)| write_news_split(&out, split)),
        );
    for split in written {
        let split = split?;
        println!(
            "{}: {} rows, {} bytes of text",
            split.path.display(),
            split.rows,
            split.text_bytes
        );
    }
    Ok(())
}
