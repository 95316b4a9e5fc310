//! The training loop shared by both experiments.
//!
//! It is a plain loop rather than burn-train's `Learner`: the losses here need their
//! per-token outputs (NLL beside the objective, novelty counts), the batches of the two
//! tasks differ, and a resumed run must replay the exact data order and dropout masks,
//! which is simplest to guarantee when the loop owns the data position and reseeds the
//! device at every step.
//!
//! One optimiser step: for each of `grad_accumulation` micro-batches, forward, the
//! objective, backward, accumulate; then clip the global gradient norm, take the AdamW
//! step with the scheduled learning rate, and log. Every `eval_every` steps (and at the
//! end) it validates, keeps the best model, and writes a resumable checkpoint.
//!
//! **Where the loop reads from the device.** A read is a synchronisation: on a GPU it
//! stalls the host until the queue drains, so a step that reads between forward and
//! backward cannot overlap anything. The statistics of every micro-batch (objective and
//! NLL sums, scored tokens, novel tokens) stay on the device as a four-element tensor,
//! and gradient clipping computes its factor there too ([`clip_to_norm`] with
//! [`Execution::Device`] or `Fused`). They are read in one transfer at the steps that need them:
//! each `log_every` step (which also reads the gradient norm it logs), and before a
//! validation or a checkpoint, so that a NaN loss is caught before anything is saved.
//! The other reads are validation itself (one for all its batches) and saving. So an
//! optimiser step between two log steps performs no device-to-host read, except in
//! f16: there every step reads its unscaled gradient norm once, to skip a step whose
//! gradients overflowed before the optimiser sees them (as PyTorch's `GradScaler`
//! does; [`LossScaler::unscale`]). bf16 and f32 need no such read. With
//! [`Execution::Host`] (CPU backends) every tensor already lives in host memory; there
//! the clipping factor is read on the host, which saves a pass over the gradients when
//! no clipping is needed.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use scalegrad_data::Position;
use scalegrad_loss::{LossOutput, Objective};
use scalegrad_ops::Execution;

pub use crate::task::{Task, Validation, objective_in_chunks};

use crate::checkpoint::{self, Best, LogWindow, Sums, TrainState};
use crate::config::{RunConfig, SelectBy, changed_training_keys};
use crate::log::{Event, Progress, RunLog};
use crate::loss_scale::LossScaler;
use crate::optim::{AdamWUpdate, adamw, clip_to_norm, global_norm_tensor};
use crate::schedule::Schedule;

/// A failure of the loop, with what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at step {step}: the loss is {value}. The last good checkpoint is \
         {checkpoint}; lower optimizer.lr, add warmup (optimizer.warmup_steps) or set \
         optimizer.max_grad_norm, then rerun with --resume"
    )]
    Diverged {
        /// The step that produced the bad loss.
        step: usize,
        /// The loss value.
        value: f64,
        /// The newest intact checkpoint, or a note that there is none.
        checkpoint: String,
    },
    /// Writing or reading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// The training split yields no batch.
    #[error(
        "the training split yields no batch; check data.max_train_examples and the data \
         files"
    )]
    NoBatches,
    /// Saving the checkpoint or the best model of a step failed (a full disk, a quota, a
    /// file-size limit); what was saved before is intact.
    #[error(
        "saving the {what} of step {step} failed: {message}. {kept}; free space on the disk \
         that holds {run_dir} (or point --out at one with room), then rerun with --resume"
    )]
    Save {
        /// `checkpoint` or `best model`.
        what: &'static str,
        /// The step being saved.
        step: usize,
        /// The underlying error.
        message: String,
        /// What is intact.
        kept: String,
        /// The run folder.
        run_dir: String,
    },
    /// `--resume` with a config that changes what the checkpoints mean.
    #[error(
        "the config differs from the one the checkpoint {checkpoint} was made with, in keys \
         that change training:\n  {}\nput them back to resume this run, or pass --restart \
         to start it over (evaluation, logging and training.chunk_mib keys may change on \
         --resume)",
        changed.join("\n  ")
    )]
    ChangedConfig {
        /// The checkpoint.
        checkpoint: String,
        /// `key: saved -> now` lines.
        changed: Vec<String>,
    },
    /// Writing the log failed.
    #[error("writing the run log: {0}")]
    Log(#[from] std::io::Error),
    /// The task's own step (validation, saving the best model) failed.
    #[error("{0}")]
    Task(String),
}

/// Settings of one call of [`train`].
pub struct TrainSpec<'a> {
    /// The run's config.
    pub config: &'a RunConfig,
    /// The run folder.
    pub run_dir: &'a Path,
    /// The device with autodiff.
    pub device: Device,
    /// The objective.
    pub objective: Objective,
    /// Stop after this many optimiser steps instead of `training.steps` (smoke tests);
    /// the schedule still follows `training.steps`.
    pub max_steps: Option<usize>,
    /// Continue from the newest checkpoint in the run folder.
    pub resume: bool,
    /// How the device computes: the optimiser's update path, gradient clipping.
    pub execution: Execution,
}

/// The outcome of a training run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// State at the end.
    pub state: TrainState,
    /// Target tokens per second of training (excluding validation).
    pub tokens_per_s: f64,
}

/// Folder of the best model so far.
pub fn best_dir(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join("best")
}

/// Trains `model` on `task` as configured, resuming when asked and possible.
pub fn train<T: Task>(
    task: &T,
    model: T::Model,
    spec: TrainSpec<'_>,
) -> Result<TrainOutcome, TrainError> {
    let config = spec.config;
    let opt = &config.optimizer;
    let steps = config.training.steps;
    let stop_at = spec.max_steps.map_or(steps, |m| m.min(steps));
    let schedule = Schedule {
        peak: opt.lr,
        warmup: opt.warmup_steps,
        total: steps,
        decay: opt.decay,
    };

    std::fs::create_dir_all(spec.run_dir)?;
    let mut optimizer = adamw(opt, AdamWUpdate::for_execution(spec.execution));
    let mut model = model;
    let mut state = TrainState::default();
    let training_keys = config.training_keys();
    if spec.resume
        && let Some(latest) = checkpoint::latest(spec.run_dir)?
    {
        let (m, o, s) = checkpoint::load(&latest, model, optimizer)?;
        if let Some(saved) = &s.config {
            let changed = changed_training_keys(saved, &training_keys);
            if !changed.is_empty() {
                return Err(TrainError::ChangedConfig {
                    checkpoint: latest.display().to_string(),
                    changed,
                });
            }
        }
        model = m;
        optimizer = o;
        state = s;
        eprintln!("resuming from {} (step {})", latest.display(), state.step);
    }
    state.config = Some(training_keys);
    let precision = config.training.precision;
    if precision.needs_loss_scaling() && state.loss_scaler.is_none() {
        state.loss_scaler = Some(LossScaler::new());
    }
    if task.sampler().batches_per_epoch() == 0 {
        return Err(TrainError::NoBatches);
    }
    // A crash while `best/` was being replaced leaves the previous copy aside.
    scalegrad_fs::recover_dir(&best_dir(spec.run_dir))?;
    let mut log = RunLog::open(
        &spec.run_dir.join("log.jsonl"),
        spec.resume.then_some(state.step),
    )?;

    let mut batches = task.sampler().batches_from(Position {
        epoch: state.epoch,
        batch: state.batch_in_epoch,
    });
    let chunk_bytes = config.training.chunk_mib << 20;
    let mut progress = Progress::new("train", stop_at as u64, state.step as u64);
    let mut window = state.log_window.clone();
    let mut pending = Pending::default();
    let mut last = Sums::default();
    let mut rate = 0.0;

    while state.step < stop_at {
        // Dropout masks depend only on (seed, step): a resumed run draws the same ones.
        spec.device
            .seed(config.run.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ state.step as u64);
        let step_started = Instant::now();
        let mut accumulator = GradientsAccumulator::<T::Model>::new();
        let mut step_stats: Option<Tensor<1>> = None;
        // Average over micro-batches, so the step matches one big batch; f16 scales the
        // loss up so that small gradients survive its products.
        let scale = state.loss_scaler.as_ref().map_or(1.0, |s| s.scale);
        let loss_factor = scale / opt.grad_accumulation as f64;
        for _ in 0..opt.grad_accumulation {
            let (_, indices) = batches.next().expect("an endless order of batches");
            let batch = task.collate(indices);
            let next = batches.position();
            (state.epoch, state.batch_in_epoch) = (next.epoch, next.batch);
            let out = objective_in_chunks(
                task,
                &model,
                &spec.objective,
                &batch,
                &spec.device,
                chunk_bytes,
            );
            // The values to log and to check for NaN, kept on the device (no read).
            let stats = micro_stats(&out);
            step_stats = Some(match step_stats {
                Some(sum) => sum + stats,
                None => stats,
            });
            let loss = out.loss * loss_factor;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accumulator.accumulate(&model, grads);
        }
        let mut grads = accumulator.grads();
        let step = state.step + 1;
        let log_now = step % config.training.log_every == 0 || step == stop_at;
        // f16: unscale in f32, and take the step only if every gradient is finite (one
        // read per step, as PyTorch's GradScaler does).
        // That norm is the one clipping and logging use.
        let mut norm = None;
        let take_step = match state.loss_scaler.as_mut() {
            None => true,
            Some(scaler) => {
                let (take, unscaled) = scaler.unscale(&model, &mut grads);
                norm = unscaled;
                if !take {
                    window.skipped += 1;
                }
                take
            }
        };
        let lr = schedule.lr(state.step);
        if take_step {
            // Only clipping and logged steps need the norm.
            if norm.is_none() && (opt.max_grad_norm.is_some() || log_now) {
                norm = global_norm_tensor(&model, &grads);
            }
            if let (Some(max), Some(n)) = (opt.max_grad_norm, &norm) {
                clip_to_norm(&model, &mut grads, n, max, spec.execution);
            }
            model = optimizer.step(lr, model, grads);
        }
        state.step = step;
        // A skipped step passes its overflowed norm on, so a skipped log step logs that
        // (null in the JSON) rather than an earlier step's.
        pending.push(step_stats.expect("grad_accumulation >= 1"), norm);

        let validate_now = step % config.training.eval_every == 0 || step == stop_at;
        let checkpoint_now = match config.training.checkpoint_every {
            Some(every) => step % every == 0,
            None => validate_now,
        } || step == stop_at;
        let mut read = None;
        if log_now || validate_now || checkpoint_now {
            let (steps, grad_norm) = pending.read()?;
            let first = step + 1 - steps.len();
            for (i, micro) in steps.iter().enumerate() {
                if !micro.loss_sum.is_finite() {
                    return Err(TrainError::Diverged {
                        step: first + i,
                        value: micro.loss_sum,
                        checkpoint: checkpoint::latest(spec.run_dir)?
                            .map_or("none yet (no checkpoint was written)".into(), |p| {
                                p.display().to_string()
                            }),
                    });
                }
                state.tokens += micro.count as u64;
                window.sums.add(micro);
            }
            last = steps.last().cloned().unwrap_or_default();
            read = Some(grad_norm);
        }
        // On a GPU the time of the queued steps shows up at the read above.
        let elapsed = step_started.elapsed().as_secs_f64();
        state.train_seconds += elapsed;
        window.seconds += elapsed;

        if read.is_some() {
            // The rate of the steps just read (between reads the window holds none).
            rate = window.tokens_per_s();
        }
        progress.advance(
            1,
            format!(
                "loss {:.3} nll {:.3} lr {lr:.2e} {rate:.0} tok/s",
                last.loss(),
                last.nll(),
            ),
        );
        if log_now {
            let grad_norm = read.flatten().unwrap_or(0.0);
            let scale = state.loss_scaler.as_ref().map(|s| s.scale);
            log.write(&window.event(step, lr, grad_norm, scale))?;
            window = LogWindow::default();
        }

        if validate_now {
            let v = task
                .validate(&model.valid(), chunk_bytes)
                .map_err(TrainError::Task)?;
            let score = match config.training.select_by {
                SelectBy::ValidPerplexity => v.nll,
                SelectBy::ValidLoss => v.loss,
            };
            let better = state.best.as_ref().is_none_or(|b| score < b.value);
            if better {
                task.save_best(&model.valid(), &best_dir(spec.run_dir))
                    .map_err(|message| save_failed("best model", step, message, spec.run_dir))?;
                state.best = Some(Best { step, value: score });
            }
            log.write(&Event::Valid {
                step,
                loss: v.loss,
                nll: v.nll,
                perplexity: v.nll.exp(),
                best: better,
            })?;
            progress.println(format!(
                "step {step}: validation loss {:.4}, perplexity {:.2}{}",
                v.loss,
                v.nll.exp(),
                if better { " (best so far)" } else { "" }
            ));
        }
        if checkpoint_now {
            state.log_window = window.clone();
            // The log's lines up to this step become as durable as the checkpoint.
            log.sync()?;
            checkpoint::save(spec.run_dir, &model, &optimizer, &state)
                .map_err(|e| save_failed("checkpoint", step, e.to_string(), spec.run_dir))?;
        }
    }
    progress.finish();
    Ok(TrainOutcome {
        tokens_per_s: if state.train_seconds > 0.0 {
            state.tokens as f64 / state.train_seconds
        } else {
            0.0
        },
        state,
    })
}

/// `[objective sum, NLL sum, scored tokens, novel scored tokens]` of a micro-batch, on
/// the device and outside the autodiff graph.
fn micro_stats(out: &LossOutput) -> Tensor<1> {
    let novel = out
        .novel
        .clone()
        .float()
        .mul(out.scored.clone().float())
        .sum();
    Tensor::cat(
        vec![
            out.token_loss.clone().sum(),
            out.nll.clone().sum(),
            out.count.clone(),
            novel,
        ],
        0,
    )
    .inner()
}

/// Per-step statistics and the latest gradient norm not yet read from the device.
#[derive(Default)]
struct Pending {
    steps: Vec<Tensor<1>>,
    grad_norm: Option<Tensor<1>>,
}

impl Pending {
    fn push(&mut self, stats: Tensor<1>, grad_norm: Option<Tensor<1>>) {
        self.steps.push(stats);
        if grad_norm.is_some() {
            self.grad_norm = grad_norm;
        }
    }

    /// Reads everything pending in one transfer: each step's sums, and the newest
    /// gradient norm when one was computed since the last read.
    fn read(&mut self) -> Result<(Vec<Sums>, Option<f64>), TrainError> {
        let steps = std::mem::take(&mut self.steps);
        let n = steps.len();
        let mut parts = steps;
        let has_norm = self.grad_norm.is_some();
        if let Some(norm) = self.grad_norm.take() {
            parts.push(norm);
        }
        if parts.is_empty() {
            return Ok((Vec::new(), None));
        }
        let values = Tensor::cat(parts, 0)
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| TrainError::Task(format!("reading the training statistics: {e:?}")))?;
        let stats = values
            .chunks_exact(4)
            .take(n)
            .map(|v| Sums {
                loss_sum: v[0],
                nll_sum: v[1],
                count: v[2],
                novel: v[3],
            })
            .collect();
        Ok((stats, has_norm.then(|| values[4 * n])))
    }
}

/// A failed save of the checkpoint or best model at `step`, saying what is intact.
fn save_failed(what: &'static str, step: usize, message: String, run_dir: &Path) -> TrainError {
    let kept = match checkpoint::latest(run_dir) {
        Ok(Some(p)) => format!("The previous checkpoint {} is intact", p.display()),
        _ => "No checkpoint was written yet".to_string(),
    };
    let best = best_dir(run_dir);
    let kept = if best.exists() {
        format!(
            "{kept}, and so is the best model so far in {}",
            best.display()
        )
    } else {
        kept
    };
    TrainError::Save {
        what,
        step,
        message,
        kept,
        run_dir: run_dir.display().to_string(),
    }
}

impl LogWindow {
    fn tokens_per_s(&self) -> f64 {
        self.sums.count / self.seconds.max(1e-9)
    }

    fn event(&self, step: usize, lr: f64, grad_norm: f64, loss_scale: Option<f64>) -> Event {
        Event::Train {
            step,
            loss: self.sums.loss(),
            nll: self.sums.nll(),
            lr,
            grad_norm,
            tokens_per_s: self.tokens_per_s(),
            novel_fraction: self.sums.novel / self.sums.count.max(1.0),
            loss_scale,
            skipped: self.skipped,
        }
    }
}
