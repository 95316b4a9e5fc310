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
    let device = args.device.backend.device()?;
    let opts = RunOptions {
        config_path: args.config.clone(),
        out: args.out,
        backend: args.device.backend.name().to_string(),
        execution: args.device.backend.execution(),
        device,
        resume: args.resume,
        restart: args.restart,
        max_steps: args.max_steps,
        eval_model: None,
        precision: args.device.precision,
        code_revision: env!("SCALEGRAD_GIT_REVISION").to_string(),
    };
    let dir = run_config(&opts).with_context(|| format!("run {}", args.config.display()))?;
    println!("{}", dir.display());
    Ok(())
}

/// Evaluates a model with a config's data and evaluation settings.
pub fn eval(args: EvalArgs) -> Result<()> {
    let device = args.device.backend.device()?;
    let opts = RunOptions {
        config_path: args.config.clone(),
        out: args.out,
        backend: args.device.backend.name().to_string(),
        execution: args.device.backend.execution(),
        device,
        resume: false,
        restart: true,
        max_steps: None,
        eval_model: Some(args.model.unwrap_or_default()),
        precision: args.device.precision,
        code_revision: env!("SCALEGRAD_GIT_REVISION").to_string(),
    };
    let dir =
        run_config(&opts).with_context(|| format!("evaluating with {}", args.config.display()))?;
    println!("{}", dir.display());
    Ok(())
}
