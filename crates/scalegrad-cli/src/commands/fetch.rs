//! `scalegrad fetch`: fill the Hugging Face cache on a machine with network, so that
//! later runs (here or on a machine the cache is copied to) work offline.

use std::path::PathBuf;

use anyhow::{Context, Result};
use scalegrad_data::DatasetName;
use scalegrad_data::hub::{
    HubConfig, dataset_parquet_files, resolve_model, resolve_model_dir, verify_blob,
};

/// Arguments of `scalegrad fetch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
    /// The cache's hub folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else
    /// ~/.cache/huggingface/hub).
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// A model repository: config.json, tokenizer files and one weights file
    /// (safetensors preferred), or the files named with --files.
    Model {
        /// Repo id, e.g. `distilgpt2`.
        repo: String,
        /// Branch, tag or commit.
        #[arg(long)]
        revision: Option<String>,
        /// Exactly these files (comma-separated), all required.
        #[arg(long, value_delimiter = ',')]
        files: Vec<String>,
    },
    /// The parquet shards of a dataset config.
    Dataset {
        /// `wikitext`, `cnn_dailymail`, or a dataset repo id.
        name: String,
        /// The config, e.g. `wikitext-103-raw-v1` or `3.0.0`.
        #[arg(long)]
        config: String,
        /// Splits to fetch (repeatable; default train, validation and test).
        #[arg(long = "split")]
        splits: Vec<String>,
        /// Branch, tag or commit.
        #[arg(long)]
        revision: Option<String>,
    },
}

/// Runs `scalegrad fetch ...`.
pub fn run(args: Args) -> Result<()> {
    let mut hub = HubConfig::from_env();
    if let Some(dir) = args.cache_dir {
        hub.cache_dir = dir;
    }
    eprintln!("HF cache: {}", hub.cache_dir.display());
    match args.what {
        What::Model {
            repo,
            revision,
            files,
        } => {
            let dir = if files.is_empty() {
                resolve_model_dir(&hub, &repo, revision.as_deref())
            } else {
                let required: Vec<&str> = files.iter().map(String::as_str).collect();
                resolve_model(&hub, &repo, revision.as_deref(), &required, &[])
            }
            .with_context(|| format!("fetching model `{repo}`"))?;
            println!("{}", dir.display());
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for path in entries {
                let checked = verify_blob(&path)?;
                eprintln!(
                    "  {}{}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    if checked { " (sha256 ok)" } else { "" }
                );
            }
        }
        What::Dataset {
            name,
            config,
            splits,
            revision,
        } => {
            let repo = match name.parse::<DatasetName>() {
                Ok(known) => known.hub_repo().to_string(),
                Err(_) if name.contains('/') => name.clone(),
                Err(err) => return Err(err.into()),
            };
            let splits = if splits.is_empty() {
                vec!["train".to_string(), "validation".into(), "test".into()]
            } else {
                splits
            };
            for split in &splits {
                let files = dataset_parquet_files(&hub, &repo, &config, split, revision.as_deref())
                    .with_context(|| format!("fetching {repo} {config} {split}"))?;
                for file in files {
                    let checked = verify_blob(&file)?;
                    println!(
                        "{}{}",
                        file.display(),
                        if checked { "  (sha256 ok)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}
