//! One run from config to `metrics.json`: resolve data, tokenizer and model, train
//! (unless the run only evaluates its starting checkpoint), evaluate the best checkpoint
//! on the test split, and write the run folder.
//!
//! A run folder `OUT/<experiment>/<name>/` holds, in the order they are written:
//! `config.toml` (before any work), `log.jsonl` and `checkpoints/` (during training),
//! `best/` (a Hugging Face model directory), then `samples.jsonl` and `metrics.json`
//! (whose presence marks the run finished).
//!
//! [`run`] reads as a run's life; each step lives in its own file: `folder.rs` (the run
//! folder's state), `steps.rs` (data, training and evaluation, as both experiments do
//! them), `open_ended.rs` and `summarization.rs` (each experiment's model and task, in
//! the order data, model, training, evaluation), and `results.rs` (what the folder
//! keeps at the end).

mod folder;
mod open_ended;
mod results;
mod steps;
mod summarization;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use scalegrad_data::hub::HubConfig;
use scalegrad_ops::{Execution, Precision};

use crate::config::{ConfigError, Experiment, RunConfig};
use crate::trainer;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Data, tokenizer or hub problem.
    #[error(transparent)]
    Data(#[from] scalegrad_data::Error),
    /// GPT-2 loading, saving or generation.
    #[error(transparent)]
    Gpt2(#[from] scalegrad_gpt2::Gpt2Error),
    /// BERT2BERT loading, saving or generation.
    #[error(transparent)]
    Bert2Bert(#[from] scalegrad_bert2bert::Error),
    /// The training loop.
    #[error(transparent)]
    Train(#[from] trainer::TrainError),
    /// A config value that conflicts with the model or the data.
    #[error("config {path}: `{key}`: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The problem and its fix.
        message: String,
    },
    /// The run folder is in a state that needs a decision.
    #[error("{0}")]
    RunFolder(String),
    /// Evaluation failed.
    #[error("evaluation: {0}")]
    Eval(String),
    /// The device ran out of memory (the message names the keys to lower) or was lost.
    #[error("{0}")]
    OutOfMemory(String),
    /// A file could not be written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

type Result<T> = std::result::Result<T, RunError>;

/// How to run a config.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The config file.
    pub config_path: PathBuf,
    /// Output folder; the run goes to `out/<experiment>/<name>`.
    pub out: PathBuf,
    /// Backend name, for the provenance only (decisions follow `execution`).
    pub backend: String,
    /// The device (without autodiff).
    pub device: Device,
    /// The GPU (or software adapter) `device` runs on, as its driver names it, for the
    /// provenance; `None` on CPU backends.
    pub adapter: Option<String>,
    /// How models, optimiser and decoding compute on `device` (resolved once by the
    /// caller from the backend).
    pub execution: Execution,
    /// Continue from the newest checkpoint when there is one.
    pub resume: bool,
    /// Delete the run folder and start over.
    pub restart: bool,
    /// Stop training after this many steps (a smoke test); the schedule is unchanged.
    pub max_steps: Option<usize>,
    /// Evaluate only: this model (directory or hub id; empty for the config's own
    /// source) is scored on the test split, into the run folder `<name>-eval`.
    pub eval_model: Option<String>,
    /// Overrides `training.precision` (the `--precision` flag).
    pub precision: Option<Precision>,
    /// The git revision of the code that runs (taken when the binary was built, with
    /// `-dirty` for uncommitted changes), recorded in the provenance.
    pub code_revision: String,
}

/// The run folder of a config.
pub fn run_dir(out: &Path, config: &RunConfig) -> PathBuf {
    out.join(config.run.experiment.name())
        .join(&config.run.name)
}

/// A file-system error on `path` as a run error.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |e| RunError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One run under way: its config (with the command line's overrides), options and folder.
struct Run<'a> {
    config: &'a RunConfig,
    opts: &'a RunOptions,
    dir: &'a Path,
    hub: HubConfig,
}

/// Runs a config to completion and returns its run folder.
pub fn run(opts: &RunOptions) -> Result<PathBuf> {
    let config = run_config(opts)?;
    let dir = run_dir(&opts.out, &config);
    if folder::prepare(opts, &dir)? == folder::State::Finished {
        return Ok(dir);
    }
    let started = Instant::now();
    let run = Run {
        config: &config,
        opts,
        dir: &dir,
        hub: HubConfig::from_env(),
    };
    // Data, model, training and evaluation, as the experiment does them.
    let outcome = match config.run.experiment {
        Experiment::OpenEnded => open_ended::run(&run)?,
        Experiment::Summarization => summarization::run(&run)?,
    };
    results::write(&run, outcome, started)?;
    Ok(dir)
}

/// The config file with the command line's overrides (`--eval-model`, `--precision`),
/// its precision checked against the device.
fn run_config(opts: &RunOptions) -> Result<RunConfig> {
    let mut config = RunConfig::load(&opts.config_path)?;
    if let Some(model) = &opts.eval_model {
        if !model.is_empty() {
            config.model.source = model.clone();
        }
        config.run.eval_only = true;
        config.run.name = format!("{}-eval", config.run.name);
    }
    if let Some(precision) = opts.precision {
        config.training.precision = precision;
    }
    config
        .training
        .precision
        .check_backend(&opts.device, &opts.backend)
        .map_err(|message| steps::invalid(&opts.config_path, "training.precision", message))?;
    Ok(config)
}
