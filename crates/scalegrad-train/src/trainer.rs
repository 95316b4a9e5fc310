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

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor};
use scalegrad_loss::{LossOutput, Objective};

use crate::checkpoint::{self, Best, TrainState};
use crate::config::{RunConfig, SelectBy};
use crate::log::{Event, Progress, RunLog};
use crate::optim::{AdamWUpdate, adamw, clip_global_norm, global_norm};
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
    /// Writing the log failed.
    #[error("writing the run log: {0}")]
    Log(#[from] std::io::Error),
    /// The task's own step (validation, saving the best model) failed.
    #[error("{0}")]
    Task(String),
}

/// Validation statistics of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// Mean training objective per scored token.
    pub loss: f64,
    /// Mean negative log-likelihood per scored token.
    pub nll: f64,
}

impl Validation {
    /// Mean objective and negative log-likelihood per scored token over the first `n`
    /// validation examples, in batches of `batch_size`; `batch_loss` gives the
    /// objective's terms for the examples at the given indices. `empty` is the error when
    /// no token is scored.
    pub fn over_batches(
        n: usize,
        batch_size: usize,
        empty: &str,
        mut batch_loss: impl FnMut(Vec<usize>) -> LossOutput,
    ) -> Result<Self, String> {
        let (mut loss, mut nll, mut count) = (0.0f64, 0.0f64, 0.0f64);
        for start in (0..n).step_by(batch_size.max(1)) {
            let out = batch_loss((start..(start + batch_size).min(n)).collect());
            // One host read per batch.
            let sums = Tensor::cat(vec![out.token_loss.sum(), out.nll.sum(), out.count], 0)
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .map_err(|e| format!("reading validation sums: {e:?}"))?;
            loss += sums[0];
            nll += sums[1];
            count += sums[2];
        }
        if count == 0.0 {
            return Err(empty.to_string());
        }
        Ok(Self {
            loss: loss / count,
            nll: nll / count,
        })
    }
}

/// What the loop needs from a task (open-ended or summarisation).
pub trait Task {
    /// The model.
    type Model: Module + Clone;
    /// A micro-batch on the host.
    type Batch;

    /// Micro-batches in one pass over the training data.
    fn batches_per_epoch(&self) -> usize;
    /// The micro-batch at `index` of `epoch` in the seeded order.
    fn batch(&self, epoch: u64, index: usize) -> Self::Batch;
    /// Logits `[B, T, V]` and targets `[B, T]` of a micro-batch.
    fn forward(
        &self,
        model: &Self::Model,
        batch: &Self::Batch,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>);
    /// Validation statistics of a model (in validation mode, on the plain device).
    fn validate(&self, model: &Self::Model) -> Result<Validation, String>;
    /// Saves the best model so far (as a Hugging Face directory, say).
    fn save_best(&self, model: &Self::Model, dir: &Path) -> Result<(), String>;
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
    /// How the optimiser computes updates (pick by backend with
    /// [`AdamWUpdate::for_backend`]).
    pub update: AdamWUpdate,
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
    let mut optimizer = adamw(opt, spec.update);
    let mut model = model;
    let mut state = TrainState::default();
    if spec.resume
        && let Some(latest) = checkpoint::latest(spec.run_dir)?
    {
        let (m, o, s) = checkpoint::load(&latest, model, optimizer)?;
        model = m;
        optimizer = o;
        state = s;
        eprintln!("resuming from {} (step {})", latest.display(), state.step);
    }
    let mut log = RunLog::open(
        &spec.run_dir.join("log.jsonl"),
        spec.resume.then_some(state.step),
    )?;

    let per_epoch = task.batches_per_epoch().max(1) as u64;
    let mut progress = Progress::new("train", stop_at as u64, state.step as u64);
    let session = Instant::now();
    let session_start_seconds = state.train_seconds;
    let mut window = Window::default();

    while state.step < stop_at {
        // Dropout masks depend only on (seed, step): a resumed run draws the same ones.
        spec.device
            .seed(config.run.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ state.step as u64);
        let step_started = Instant::now();
        let mut accumulator = GradientsAccumulator::<T::Model>::new();
        let mut micro = MicroStats::default();
        for _ in 0..opt.grad_accumulation {
            let batch = task.batch(state.epoch, state.batch_in_epoch as usize);
            state.batch_in_epoch += 1;
            if state.batch_in_epoch >= per_epoch {
                state.batch_in_epoch = 0;
                state.epoch += 1;
            }
            let (logits, targets) = task.forward(&model, &batch, &spec.device);
            let out = spec.objective.forward_detailed(logits, targets);
            // One host read per micro-batch: the values to log and to check for NaN.
            let [loss_sum, nll_sum, count, novel] = read4(
                out.token_loss.clone().sum(),
                out.nll.sum(),
                out.count.clone(),
                out.novel.float().mul(out.scored.float()).sum(),
            );
            if !loss_sum.is_finite() {
                return Err(TrainError::Diverged {
                    step: state.step + 1,
                    value: loss_sum,
                    checkpoint: checkpoint::latest(spec.run_dir)?
                        .map_or("none yet (no checkpoint was written)".into(), |p| {
                            p.display().to_string()
                        }),
                });
            }
            micro.add(loss_sum, nll_sum, count, novel);
            // Average over micro-batches, so the step matches one big batch.
            let loss = out.loss / opt.grad_accumulation as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accumulator.accumulate(&model, grads);
        }
        let mut grads = accumulator.grads();
        let grad_norm = match opt.max_grad_norm {
            Some(max) => clip_global_norm(&model, &mut grads, max),
            None => global_norm(&model, &grads),
        };
        let lr = schedule.lr(state.step);
        model = optimizer.step(lr, model, grads);
        state.step += 1;
        state.tokens += micro.count as u64;
        let elapsed = step_started.elapsed().as_secs_f64();
        state.train_seconds += elapsed;
        window.add(&micro, elapsed);

        progress.advance(
            1,
            format!(
                "loss {:.3} nll {:.3} lr {lr:.2e} {:.0} tok/s",
                micro.loss(),
                micro.nll(),
                micro.count / elapsed.max(1e-9)
            ),
        );
        if state.step % config.training.log_every == 0 || state.step == stop_at {
            log.write(&window.event(state.step, lr, grad_norm))?;
            window = Window::default();
        }

        let validate_now = state.step % config.training.eval_every == 0 || state.step == stop_at;
        if validate_now {
            let v = task.validate(&model.valid()).map_err(TrainError::Task)?;
            let score = match config.training.select_by {
                SelectBy::ValidPerplexity => v.nll,
                SelectBy::ValidLoss => v.loss,
            };
            let better = state.best.as_ref().is_none_or(|b| score < b.value);
            if better {
                state.best = Some(Best {
                    step: state.step,
                    value: score,
                });
                task.save_best(&model.valid(), &best_dir(spec.run_dir))
                    .map_err(TrainError::Task)?;
            }
            log.write(&Event::Valid {
                step: state.step,
                loss: v.loss,
                nll: v.nll,
                perplexity: v.nll.exp(),
                best: better,
            })?;
            progress.println(format!(
                "step {}: validation loss {:.4}, perplexity {:.2}{}",
                state.step,
                v.loss,
                v.nll.exp(),
                if better { " (best so far)" } else { "" }
            ));
        }
        let checkpoint_now = match config.training.checkpoint_every {
            Some(every) => state.step % every == 0,
            None => validate_now,
        };
        if checkpoint_now || state.step == stop_at {
            checkpoint::save(spec.run_dir, &model, &optimizer, &state)?;
        }
    }
    progress.finish();
    let seconds = state.train_seconds - session_start_seconds;
    let _ = session;
    Ok(TrainOutcome {
        tokens_per_s: if state.train_seconds > 0.0 {
            state.tokens as f64 / state.train_seconds
        } else {
            0.0
        },
        state: TrainState {
            train_seconds: session_start_seconds + seconds,
            ..state
        },
    })
}

/// Reads four one-element tensors with one transaction-free host read each.
fn read4(a: Tensor<1>, b: Tensor<1>, c: Tensor<1>, d: Tensor<1>) -> [f64; 4] {
    let all = Tensor::cat(vec![a, b, c, d], 0).into_data();
    let v: Vec<f32> = all.convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
    [v[0] as f64, v[1] as f64, v[2] as f64, v[3] as f64]
}

/// Sums over the micro-batches of one step.
#[derive(Default)]
struct MicroStats {
    loss_sum: f64,
    nll_sum: f64,
    count: f64,
    novel: f64,
}

impl MicroStats {
    fn add(&mut self, loss_sum: f64, nll_sum: f64, count: f64, novel: f64) {
        self.loss_sum += loss_sum;
        self.nll_sum += nll_sum;
        self.count += count;
        self.novel += novel;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1.0)
    }
    fn nll(&self) -> f64 {
        self.nll_sum / self.count.max(1.0)
    }
}

/// Sums over the steps since the last `train` event.
#[derive(Default)]
struct Window {
    stats: MicroStats,
    seconds: f64,
}

impl Window {
    fn add(&mut self, micro: &MicroStats, seconds: f64) {
        self.stats
            .add(micro.loss_sum, micro.nll_sum, micro.count, micro.novel);
        self.seconds += seconds;
    }

    fn event(&self, step: usize, lr: f64, grad_norm: f64) -> Event {
        Event::Train {
            step,
            loss: self.stats.loss(),
            nll: self.stats.nll(),
            lr,
            grad_norm,
            tokens_per_s: self.stats.count / self.seconds.max(1e-9),
            novel_fraction: self.stats.novel / self.stats.count.max(1.0),
        }
    }
}
