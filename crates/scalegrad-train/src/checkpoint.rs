//! Resumable checkpoints, written atomically.
//!
//! A checkpoint is a directory `checkpoints/step-NNNNNNN/` holding the model
//! (`model.bpk`, burnpack, which records parameter ids so the optimiser state matches
//! on reload), the AdamW moments (`optimizer.bpk`) and [`TrainState`] (`state.json`:
//! step, data position, best validation so far, counters). It is written into a
//! `.tmp` sibling, fsynced and renamed into place ([`scalegrad_fs::install_dir`]), so an
//! interrupted write or a full disk leaves the previous checkpoint intact and never a
//! half-written one under the final name. Older checkpoints are removed once a newer one
//! is complete.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{Deserialize, Serialize};

/// Checkpoint I/O failures, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model or optimiser file could not be written or read.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The store's message.
        message: String,
    },
    /// `state.json` is not valid.
    #[error("{path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The best validation result so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Optimiser step at which it was measured.
    pub step: usize,
    /// The selection metric (lower is better).
    pub value: f64,
}

/// Sums over micro-batches, or over the steps of a log window: the objective and the NLL
/// over scored tokens, the scored tokens and the novel ones among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    /// Objective summed over scored tokens.
    pub loss_sum: f64,
    /// NLL summed over scored tokens.
    pub nll_sum: f64,
    /// Scored tokens.
    pub count: f64,
    /// Novel scored tokens.
    pub novel: f64,
}

impl Sums {
    /// Adds `other` in.
    pub fn add(&mut self, other: &Sums) {
        self.loss_sum += other.loss_sum;
        self.nll_sum += other.nll_sum;
        self.count += other.count;
        self.novel += other.novel;
    }

    /// Mean objective per scored token.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1.0)
    }

    /// Mean NLL per scored token.
    pub fn nll(&self) -> f64 {
        self.nll_sum / self.count.max(1.0)
    }
}

/// The training steps since the last logged `train` event, checkpointed so that a
/// resumed run logs the same averages as an uninterrupted one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogWindow {
    /// The steps' sums.
    #[serde(flatten)]
    pub sums: Sums,
    /// Seconds spent.
    pub seconds: f64,
    /// f16 steps skipped for overflowing gradients.
    #[serde(default)]
    pub skipped: u64,
}

/// Everything besides tensors that a resumed run needs to continue identically.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub step: usize,
    /// Epoch of the data order at the next batch.
    pub epoch: u64,
    /// Index of the next batch within the epoch.
    pub batch_in_epoch: u64,
    /// Target tokens trained on so far.
    pub tokens: u64,
    /// Seconds spent training so far (summed over sessions).
    pub train_seconds: f64,
    /// Best validation result so far.
    pub best: Option<Best>,
    /// The f16 loss scaler (absent for f32 and bf16 runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<crate::loss_scale::LossScaler>,
    /// The log window open at the checkpoint.
    #[serde(default)]
    pub log_window: LogWindow,
    /// The config keys that shape training, as the run was started with them (absent in
    /// checkpoints of older versions): `--resume` refuses a config that differs in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Saves a module as burnpack into `path`.
pub fn save_module<M: Module>(module: &M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|err| CheckpointError::Store {
            path: path.to_path_buf(),
            message: err.to_string(),
        })
}

/// Loads a module saved by [`save_module`] into `module` (same architecture).
pub fn load_module<M: Module>(mut module: M, path: &Path) -> Result<M> {
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let result = module
        .load_from(&mut store)
        .map_err(|err| CheckpointError::Store {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(CheckpointError::Store {
            path: path.to_path_buf(),
            message: format!(
                "does not match the model: missing {:?}, errors {:?}",
                result.missing, result.errors
            ),
        });
    }
    Ok(module)
}

/// The checkpoints directory of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Writes a checkpoint of `step` and removes older ones.
pub fn save<M: Module>(
    run_dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
) -> Result<PathBuf> {
    let dir = checkpoints_dir(run_dir);
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let done = dir.join(format!("step-{:07}", state.step));
    scalegrad_fs::replace_dir(
        &done,
        |staged| {
            save_module(model, &staged.join("model.bpk"))?;
            let optim_path = staged.join("optimizer.bpk");
            optimizer
                .save(&optim_path)
                .map_err(|err| CheckpointError::Store {
                    path: optim_path.clone(),
                    message: err.to_string(),
                })?;
            let state_path = staged.join("state.json");
            let json =
                serde_json::to_vec_pretty(state).map_err(|source| CheckpointError::State {
                    path: state_path.clone(),
                    source,
                })?;
            std::fs::write(&state_path, json).map_err(io("writing", &state_path))
        },
        |source| CheckpointError::Io {
            action: "installing",
            path: done.clone(),
            source,
        },
    )?;
    for old in list(run_dir)? {
        if old != done {
            std::fs::remove_dir_all(&old).map_err(io("removing old checkpoint", &old))?;
        }
    }
    Ok(done)
}

/// Complete checkpoints of a run, oldest first (unfinished `.tmp` and set-aside `.old`
/// directories excluded).
pub fn list(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = checkpoints_dir(run_dir);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io("listing", &dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-") && !n.contains('.'))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The newest complete checkpoint, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list(run_dir)?.pop())
}

/// Loads a checkpoint into `model` and `optimizer` (built with the run's config).
pub fn load<M: Module>(
    checkpoint: &Path,
    model: M,
    optimizer: ModuleOptimizer,
) -> Result<(M, ModuleOptimizer, TrainState)> {
    let model = load_module(model, &checkpoint.join("model.bpk"))?;
    let optim_path = checkpoint.join("optimizer.bpk");
    let optimizer = optimizer
        .load(&optim_path)
        .map_err(|err| CheckpointError::Store {
            path: optim_path.clone(),
            message: err.to_string(),
        })?;
    let state_path = checkpoint.join("state.json");
    let text = std::fs::read(&state_path).map_err(io("reading", &state_path))?;
    let state = serde_json::from_slice(&text).map_err(|source| CheckpointError::State {
        path: state_path,
        source,
    })?;
    Ok((model, optimizer, state))
}
