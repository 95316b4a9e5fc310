//! `scalegrad train` and `scalegrad eval`: run an experiment config.

use std::path::PathBuf;

use anyhow::{Context, Result};
use scalegrad_train::run::{RunOptions, run as run_config};

use crate::backend::DeviceArgs;

/// Arguments of `scalegrad train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run's config (TOML; see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Output folder; the run is written to OUT/<experiment>/<run name>.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Continue an interrupted run from its newest checkpoint (no-op for a new run).
    #[arg(long, conflicts_with = "restart")]
    resume: bool,
    /// Delete the run folder first and start over.
    #[arg(long)]
    restart: bool,
    /// Stop after this many optimiser steps (a smoke test; the schedule is unchanged).
    #[arg(long)]
    max_steps: Option<usize>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Arguments of `scalegrad eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The run's config (TOML): data, tokenizer and evaluation settings.
    #[arg(long)]
    config: PathBuf,
    /// Evaluate this model (directory or hub id) instead of the config's `model.source`.
    #[arg(long)]
    model: Option<String>,
    /// Output folder; the evaluation is written to OUT/<experiment>/<run name>-eval.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Trains (or, for `eval_only` configs, evaluates) a config.
pub fn run(args: Args) -> Result<()> {
    let context = format!("run {}", args.config.display());
    run_with(&args.device, args.config, args.out, &context, |opts| {
        RunOptions {
            resume: args.resume,
            restart: args.restart,
            max_steps: args.max_steps,
            ..opts
        }
    })
}

/// Evaluates a model with a config's data and evaluation settings.
pub fn eval(args: EvalArgs) -> Result<()> {
    let context = format!("evaluating with {}", args.config.display());
    run_with(&args.device, args.config, args.out, &context, |opts| {
        RunOptions {
            restart: true,
            eval_model: Some(args.model.unwrap_or_default()),
            ..opts
        }
    })
}

/// Runs `config` into `out` on the device the flags choose, with the options `adjust`
/// sets (a plain run otherwise), and prints the run folder.
fn run_with(
    device: &DeviceArgs,
    config: PathBuf,
    out: PathBuf,
    context: &str,
    adjust: impl FnOnce(RunOptions) -> RunOptions,
) -> Result<()> {
    let (opened, adapter) = device.backend.open()?;
    let opts = adjust(RunOptions {
        config_path: config,
        out,
        backend: device.backend.name().to_string(),
        execution: device.backend.execution(),
        device: opened,
        adapter: adapter.map(|a| a.name),
        resume: false,
        restart: false,
        max_steps: None,
        eval_model: None,
        precision: device.precision,
        code_revision: env!("SCALEGRAD_GIT_REVISION").to_string(),
    });
    let dir = run_config(&opts).context(context.to_string())?;
    println!("{}", dir.display());
    Ok(())
}
