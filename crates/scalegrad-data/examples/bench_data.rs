//! Benchmark (Rust side of `cargo xtask bench data`): tokens per second from parquet to
//! cached language-modelling windows, GPT-2 byte-level BPE, on a generated
//! WikiText-like corpus of 100 MB (10 MB with `--quick`).
//!
//! The corpus and its tokenizer are generated on first use into
//! `$TMPDIR/scalegrad-bench-data-<MB>mb/` (never committed) and shared with the Python
//! side (`bench/bench_data.py`), which tokenises the same parquet files with the same
//! `tokenizer.json`. The real GPT-2 tokenizer cannot be downloaded here, so a byte-level
//! BPE with GPT-2's vocabulary size (50257, `<|endoftext|>` last) is trained on the
//! corpus itself with `tokenizers`.
//!
//! Measured: one cold run (fresh token cache: read parquet, tokenise on all cores,
//! write the cache), one warm run (cache hit), and one cold run with the ids-only BPE
//! path switched off (`tokenizers`' full pipeline), each followed by cutting 1024-token
//! windows. Output: JSON lines `{"case", "metric", "value", "better"}`.
//!
//! `--prepare-only` writes the corpus and exits (the Python side calls it if needed).

use std::path::{Path, PathBuf};
use std::time::Instant;

use scalegrad_data::reader::write_string_columns;
use scalegrad_data::tokenizer::{save_tokenizer, train_bpe_tokenizer};
use scalegrad_data::{
    LmWindows, TokenizeOptions, TokenizeSpec, WindowConfig, load_tokenizer, tokenize_files,
};
use scalegrad_demo::wikitext_rows_of_size;

const SHARDS: usize = 4;
const SEED: u64 = 2021;

fn bench_dir(mb: usize) -> PathBuf {
    std::env::temp_dir().join(format!("scalegrad-bench-data-{mb}mb"))
}

fn shard_paths(dir: &Path) -> Vec<PathBuf> {
    (0..SHARDS)
        .map(|i| dir.join(format!("train-{i:05}-of-{SHARDS:05}.parquet")))
        .collect()
}

/// Writes the corpus shards and trains the tokenizer, unless already there.
fn prepare(dir: &Path, mb: usize) -> Result<(), Box<dyn std::error::Error>> {
    let done = dir.join("READY");
    if done.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let t = Instant::now();
    let rows = wikitext_rows_of_size(SEED, mb * 1_000_000);
    let per_shard = rows.len().div_ceil(SHARDS);
    for (chunk, path) in rows.chunks(per_shard).zip(shard_paths(dir)) {
        write_string_columns(&path, &[("text", chunk)], 50_000)?;
    }
    eprintln!(
        "wrote {} rows ({mb} MB of text) in {:.1} s",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let tokenizer = train_bpe_tokenizer(rows.iter(), 50257, 2)?;
    save_tokenizer(&tokenizer, &dir.join("tokenizer.json"))?;
    eprintln!(
        "trained a byte-level BPE of {} entries in {:.1} s",
        tokenizer.get_vocab_size(true),
        t.elapsed().as_secs_f64()
    );
    std::fs::write(done, "ok")?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mb = if quick { 10 } else { 100 };
    let dir = bench_dir(mb);
    prepare(&dir, mb)?;
    if args.iter().any(|a| a == "--prepare-only") {
        println!("{}", dir.display());
        return Ok(());
    }
    let tokenizer = load_tokenizer(&dir)?;
    let files = shard_paths(&dir);
    let cache = dir.join("token-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let mut options = TokenizeOptions {
        cache_dir: Some(cache.clone()),
        progress: false,
        batch_rows: 4096,
        fast_bpe: true,
    };
    let case = format!("gpt2-bpe {mb}MB parquet->windows");
    // Tokenises the files into 1024-token windows; returns tokens, windows, seconds and
    // whether the token cache answered.
    let tokenize = |options: &TokenizeOptions| -> Result<_, Box<dyn std::error::Error>> {
        let t = Instant::now();
        let (split, status) = tokenize_files(
            &files,
            &tokenizer,
            &TokenizeSpec::lm_text(),
            options,
            "bench",
        )?;
        let tokens = &split.columns[0].rows.tokens;
        let windows = LmWindows::new(tokens, WindowConfig::new(1024))?.len();
        let secs = t.elapsed().as_secs_f64();
        let hit = matches!(status, scalegrad_data::tokenize::CacheStatus::Hit(_));
        eprintln!(
            "{} tokens, {windows} windows of 1024, {secs:.2} s ({status:?})",
            tokens.len()
        );
        Ok((tokens.len(), secs, hit))
    };
    let mut results = Vec::new();
    for (label, expect_hit) in [("cold", false), ("warm", true)] {
        eprint!("{label}: ");
        let (n, secs, hit) = tokenize(&options)?;
        assert_eq!(hit, expect_hit, "{label}");
        results.push((label, n as f64 / secs, secs));
    }
    // The same cold run through `tokenizers`' full pipeline (`encode_batch_fast`), to
    // show what the ids-only BPE path adds.
    let _ = std::fs::remove_dir_all(&cache);
    options.fast_bpe = false;
    eprint!("cold, full pipeline: ");
    let (n, secs, _) = tokenize(&options)?;
    results.push(("full", n as f64 / secs, secs));
    let threads = rayon::current_num_threads();
    eprintln!("rayon threads: {threads}");
    for (label, rate, secs) in results {
        // The cold figure is printed under the keys of both Python configurations
        // (`datasets.map` in one process, and with `num_proc=2`), so the table shows
        // ours against each; the warm figure (cache hit) has no Python counterpart.
        let cases = match label {
            "cold" => vec![case.clone(), format!("{case} vs num_proc=2")],
            "full" => vec![format!("{case} (full tokenizers pipeline)")],
            _ => vec![format!("{case} (cache hit)")],
        };
        for case in cases {
            println!(
                "{}",
                serde_json::json!({"case": case, "metric": "tokens_per_s", "value": rate, "better": "higher"})
            );
            println!(
                "{}",
                serde_json::json!({"case": case, "metric": "s", "value": secs, "better": "lower"})
            );
        }
    }
    Ok(())
}
