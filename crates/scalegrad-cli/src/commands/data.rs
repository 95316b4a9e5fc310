//! `scalegrad data stats`: rows, characters, tokens and windows of a dataset split, and
//! where its token cache lives.

use std::path::PathBuf;

use anyhow::{Context, Result};
use scalegrad_data::cache::default_cache_dir;
use scalegrad_data::hub::{HubConfig, resolve_model_dir};
use scalegrad_data::reader::count_rows;
use scalegrad_data::stats::ColumnStats;
use scalegrad_data::tokenize::{CacheStatus, ColumnSpec};
use scalegrad_data::{
    DatasetName, DatasetSource, LastWindow, TokenizeOptions, TokenizeSpec, WindowConfig,
    load_tokenizer, tokenize_files,
};

/// Arguments of `scalegrad data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DataCommand {
    /// Rows, characters, tokens and windows of one split (tokenising it into the cache).
    Stats(StatsArgs),
}

/// Arguments of `scalegrad data stats`.
#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// `wikitext` or `cnn_dailymail`.
    #[arg(long)]
    dataset: String,
    /// Hub config (`wikitext-2-raw-v1`, `wikitext-103-raw-v1`, `3.0.0`, ...) or `demo`
    /// for the generated corpora under datasets/.
    #[arg(long, default_value = "demo")]
    config: String,
    /// `train`, `validation` or `test`.
    #[arg(long, default_value = "test")]
    split: String,
    /// Read local parquet files from this folder (or file) instead of the hub.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Hub revision of the dataset.
    #[arg(long)]
    revision: Option<String>,
    /// Tokenizer: a model folder or hub id (default: distilgpt2 for wikitext, the
    /// bert2bert checkpoint for cnn_dailymail).
    #[arg(long)]
    tokenizer: Option<String>,
    /// Count rows and characters only; do not tokenise.
    #[arg(long)]
    no_tokens: bool,
    /// Window length for language modelling (wikitext).
    #[arg(long, default_value_t = 1024)]
    block_size: usize,
    /// Window stride (default: the block size, non-overlapping windows).
    #[arg(long)]
    stride: Option<usize>,
    /// Count the padded partial last window too.
    #[arg(long)]
    pad_last: bool,
    /// Encoder length limit reported for cnn_dailymail (with [CLS] and [SEP]).
    #[arg(long, default_value_t = 512)]
    max_source_len: usize,
    /// Token cache folder (default: $SCALEGRAD_CACHE/tokens or ~/.cache/scalegrad/tokens).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the token cache.
    #[arg(long)]
    no_cache: bool,
    /// Never use the network (same as HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `scalegrad data ...`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        DataCommand::Stats(args) => stats(args),
    }
}

fn default_tokenizer(dataset: DatasetName) -> &'static str {
    match dataset {
        DatasetName::Wikitext => "distilgpt2",
        DatasetName::CnnDailymail => {
            "mrm8488/bert-small2bert-small-finetuned-cnn_daily_mail-summarization"
        }
    }
}

fn stats(args: StatsArgs) -> Result<()> {
    let dataset: DatasetName = args.dataset.parse()?;
    let mut hub = HubConfig::from_env();
    if args.offline {
        hub.offline = true;
    }
    let source = DatasetSource {
        dataset,
        config: Some(args.config.clone()),
        data_dir: args.data_dir.clone(),
        revision: args.revision.clone(),
    };
    let split = source
        .split_files(&args.split, &hub)
        .with_context(|| format!("finding {dataset} {} {}", args.config, args.split))?;
    let columns = dataset.text_columns();
    let rows = count_rows(&split.files, columns)?;
    let mut report = serde_json::json!({
        "dataset": dataset.name(),
        "config": args.config,
        "split": args.split,
        "origin": split.origin,
        "files": split.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "rows": rows,
    });

    if args.no_tokens {
        let cols = scalegrad_data::reader::read_columns(&split.files, columns)?;
        let chars: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .zip(&cols)
            .map(|(name, values)| {
                let n: usize = values.iter().map(|v| v.chars().count()).sum();
                (name.to_string(), n.into())
            })
            .collect();
        report["characters"] = chars.into();
        return print(&report, args.json);
    }

    let tokenizer_id = args
        .tokenizer
        .clone()
        .unwrap_or_else(|| default_tokenizer(dataset).to_string());
    let model_dir = resolve_model_dir(&hub, &tokenizer_id, None).with_context(|| {
        format!("finding the tokenizer `{tokenizer_id}` (or pass --tokenizer DIR, or --no-tokens)")
    })?;
    let tokenizer = load_tokenizer(&model_dir)?;
    let spec = TokenizeSpec {
        columns: columns
            .iter()
            .map(|c| ColumnSpec {
                name: c.to_string(),
                max_tokens: None,
            })
            .collect(),
        add_special_tokens: false,
    };
    let options = TokenizeOptions {
        cache_dir: (!args.no_cache)
            .then(|| args.cache_dir.clone().unwrap_or_else(default_cache_dir)),
        progress: !args.json,
        ..TokenizeOptions::default()
    };
    let (tokenized, status) =
        tokenize_files(&split.files, &tokenizer, &spec, &options, &split.label)?;
    let column_stats: Vec<ColumnStats> = tokenized.columns.iter().map(ColumnStats::of).collect();
    report["tokenizer"] = serde_json::json!({
        "source": tokenizer_id,
        "dir": model_dir.display().to_string(),
        "vocab_size": tokenized.vocab_size,
    });
    report["columns"] = serde_json::to_value(&column_stats)?;
    report["cache"] = match &status {
        CacheStatus::Disabled => serde_json::json!({"status": "disabled"}),
        CacheStatus::Hit(p) => {
            serde_json::json!({"status": "hit", "path": p.display().to_string()})
        }
        CacheStatus::Built(p) => {
            serde_json::json!({"status": "built", "path": p.display().to_string()})
        }
        CacheStatus::Rebuilt { path, reason } => serde_json::json!({
            "status": "rebuilt", "path": path.display().to_string(), "reason": reason,
        }),
    };
    match dataset {
        DatasetName::Wikitext => {
            let mut config = WindowConfig::new(args.block_size)
                .with_stride(args.stride.unwrap_or(args.block_size));
            if args.pad_last {
                let pad = tokenizer.token_to_id("<|endoftext|>").unwrap_or(0);
                config = config.with_last(LastWindow::Pad { pad_id: pad });
            }
            config.validate()?;
            let tokens = tokenized.columns[0].rows.tokens.len();
            report["windows"] = serde_json::json!({
                "block_size": config.block_size,
                "stride": config.stride,
                "last": if args.pad_last { "padded" } else { "dropped" },
                "count": config.num_windows(tokens),
            });
        }
        DatasetName::CnnDailymail => {
            let article = &tokenized.columns[0].rows;
            let limit = args.max_source_len.saturating_sub(2);
            let over = (0..article.num_rows())
                .filter(|&i| article.row_len(i) > limit)
                .count();
            report["examples"] = serde_json::json!({
                "count": article.num_rows(),
                "max_source_len": args.max_source_len,
                "articles_truncated": over,
            });
        }
    }
    print(&report, args.json)
}

fn print(report: &serde_json::Value, json: bool) -> Result<()> {
    if json {
        println!("{report}");
        return Ok(());
    }
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!(
        "dataset     {} (config {}, split {}, from {})",
        s(&report["dataset"]),
        s(&report["config"]),
        s(&report["split"]),
        s(&report["origin"])
    );
    for f in report["files"].as_array().into_iter().flatten() {
        println!("file        {}", s(f));
    }
    println!("rows        {}", report["rows"]);
    if let Some(chars) = report["characters"].as_object() {
        for (name, n) in chars {
            println!("characters  {n} ({name})");
        }
    }
    if report["tokenizer"].is_object() {
        println!(
            "tokenizer   {} ({}, vocab {})",
            s(&report["tokenizer"]["source"]),
            s(&report["tokenizer"]["dir"]),
            report["tokenizer"]["vocab_size"]
        );
    }
    for c in report["columns"].as_array().into_iter().flatten() {
        println!(
            "{:<11} characters {}, tokens {}, mean {:.1} tokens/row, max {}, empty rows {}",
            s(&c["name"]),
            c["chars"],
            c["tokens"],
            c["mean_tokens"].as_f64().unwrap_or(0.0),
            c["max_tokens"],
            c["empty_rows"]
        );
    }
    if report["windows"].is_object() {
        let w = &report["windows"];
        println!(
            "windows     {} (block {}, stride {}, last partial window {})",
            w["count"],
            w["block_size"],
            w["stride"],
            s(&w["last"])
        );
    }
    if report["examples"].is_object() {
        let e = &report["examples"];
        println!(
            "examples    {} ({} articles longer than {} tokens are truncated)",
            e["count"], e["articles_truncated"], e["max_source_len"]
        );
    }
    if report["cache"].is_object() {
        let c = &report["cache"];
        match c["path"].as_str() {
            Some(p) => println!("cache       {p} ({})", s(&c["status"])),
            None => println!("cache       {}", s(&c["status"])),
        }
    }
    Ok(())
}
