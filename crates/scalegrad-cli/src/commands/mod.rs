//! The subcommands, one module each.

mod bench;
mod data;
mod fetch;
mod generate;
mod info;
mod progress;
mod rouge;
mod summarize;
mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use scalegrad_data::hub::{HubConfig, resolve_model_dir};
use scalegrad_train::device_failure::{explain, guard_with};

/// The model a decoding command loads: `--model` and `--revision`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Model directory or Hugging Face hub id (`distilgpt2` for `generate`, a BERT2BERT
    /// such as `patrickvonplaten/bert2bert_cnn_daily_mail` for `summarize`).
    #[arg(long, value_name = "DIR|HUB_ID")]
    model: String,
    /// Hub revision (branch, tag or commit) when `--model` is a hub id.
    #[arg(long)]
    revision: Option<String>,
}

impl ModelArgs {
    /// The model's local folder (downloaded into the hub cache when it is a hub id).
    pub fn dir(&self) -> Result<PathBuf> {
        resolve_model_dir(
            &HubConfig::from_env(),
            &self.model,
            self.revision.as_deref(),
        )
        .with_context(|| format!("finding the model `{}`", self.model))
    }
}

/// Runs device work of a command (decoding a batch, a benchmark case): a device that runs
/// out of memory or is lost, whether burn panics or returns the error from a read, ends
/// the command with one message naming `what` failed and `advice` (what to lower),
/// without a backtrace. Other errors and panics pass through unchanged.
fn on_device<T>(what: &str, advice: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    const AFTER_LOSS: &str = "Check the device (nvidia-smi, the kernel log) and rerun; the \
         output printed so far is complete";
    match guard_with(what, advice, AFTER_LOSS, work) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => match explain(what, advice, AFTER_LOSS, &format!("{error:#}")) {
            Some(message) => Err(anyhow::anyhow!(message)),
            None => Err(error),
        },
        Err(message) => Err(anyhow::anyhow!(message)),
    }
}

/// Every subcommand of `scalegrad`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version, the compiled backends and the devices they see.
    Info(info::Args),
    /// Train a model as an experiment config says, then evaluate its best checkpoint.
    Train(train::Args),
    /// Evaluate a model (the config's starting point, or --model) on the test split.
    Eval(train::EvalArgs),
    /// Continue prompts with a GPT-2 checkpoint (greedy, top-k, top-p; batched, KV cache).
    Generate(generate::Args),
    /// ROUGE-1/2/L/Lsum of predicted summaries against references (as rouge_score).
    Rouge(rouge::Args),
    /// Summarise articles with a BERT2BERT checkpoint (beam search as transformers).
    Summarize(summarize::Args),
    /// Dataset statistics: rows, characters, tokens, windows, token cache location.
    Data(data::Args),
    /// Fill the Hugging Face cache with a model's files or a dataset config's parquet shards.
    Fetch(fetch::Args),
    /// Time train steps and decoding on a backend, optionally checked against flex (the
    /// Rust side of `cargo xtask bench gpu`).
    Bench(bench::Args),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Info(args) => info::run(args),
            Self::Train(args) => train::run(args),
            Self::Eval(args) => train::eval(args),
            Self::Generate(args) => generate::run(args),
            Self::Rouge(args) => rouge::run(args),
            Self::Summarize(args) => summarize::run(args),
            Self::Data(args) => data::run(args),
            Self::Fetch(args) => fetch::run(args),
            Self::Bench(args) => bench::run(args),
        }
    }
}
