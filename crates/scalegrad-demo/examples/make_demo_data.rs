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

use scalegrad_data::reader::write_string_columns;
use scalegrad_data::source::datasets_dir;
use scalegrad_demo::{news_rows, wikitext_rows};

/// Articles per WikiText-like split and rows per CNN/DailyMail-like split.
const WIKITEXT_ARTICLES: [(&str, u64, usize); 3] = [
    ("train", 101, 1400),
    ("validation", 102, 60),
    ("test", 103, 60),
];
const NEWS_ROWS: [(&str, u64, usize); 3] = [
    ("train", 201, 3000),
    ("validation", 202, 300),
    ("test", 203, 300),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(datasets_dir);
    let wiki_dir = out.join("wikitext-demo");
    std::fs::create_dir_all(&wiki_dir)?;
    for (split, seed, articles) in WIKITEXT_ARTICLES {
        let rows = wikitext_rows(seed, articles);
        let path = wiki_dir.join(format!("{split}.parquet"));
        write_string_columns(&path, &[("text", &rows)], 20_000)?;
        let bytes: usize = rows.iter().map(String::len).sum();
        println!(
            "{}: {} rows, {bytes} bytes of text",
            path.display(),
            rows.len()
        );
    }
    let news_dir = out.join("cnn_dailymail-demo");
    std::fs::create_dir_all(&news_dir)?;
    for (split, seed, n) in NEWS_ROWS {
        let rows = news_rows(seed, n);
        let article: Vec<String> = rows.iter().map(|r| r.article.clone()).collect();
        let highlights: Vec<String> = rows.iter().map(|r| r.highlights.clone()).collect();
        let id: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let path = news_dir.join(format!("{split}.parquet"));
        write_string_columns(
            &path,
            &[
                ("article", &article),
                ("highlights", &highlights),
                ("id", &id),
            ],
            2_000,
        )?;
        let bytes: usize = article.iter().chain(&highlights).map(String::len).sum();
        println!(
            "{}: {} rows, {bytes} bytes of text",
            path.display(),
            rows.len()
        );
    }
    Ok(())
}
