//! `scalegrad bench`: our side of the GPU benchmark.
//!
//! `cargo xtask bench gpu` copies the release binary next to `python/bench_gpu.py`, which
//! runs on the GPU machine: it writes random-weight checkpoints with transformers, times
//! PyTorch on the same work, runs this command on the same checkpoints and prints both
//! side by side. So this command needs no Rust toolchain and no hub, only the binary.
//!
//! The cases are the issue's: the distilgpt2 train step (forward, loss, backward, AdamW;
//! dropout 0.1 as in the checkpoint) at 8x300 and 32x300 with cross-entropy and with
//! ScaleGrad (gamma 0.2), the bert-small2bert-small train step at 16 x 512/128, and greedy
//! decoding of 50-token prompts for 100 new tokens at batch 1 and 32. Each prints one
//! JSON line, `{"case", "metric", "value"}`, on standard output. Training is timed over
//! `--steps` optimiser steps after two warm-up steps, with one device synchronisation at
//! each end (no read inside the loop, as in a real run between log steps); decoding over
//! one run after a warm-up run.
//!
//! Each line also carries `span`, the timed span's start and end as Unix time in
//! seconds, so that a GPU's utilisation sampled beside the run (`bench_gpu.py` polls
//! `nvidia-smi`) can be averaged over exactly the timed work: near 100% the GPU limits
//! the case, far below it the host does (launches, bookkeeping, waits).
//!
//! `--check` first compares this backend with flex on the same weights (in evaluation
//! mode, no dropout): the logits of a fixed batch and the cross-entropy and ScaleGrad
//! losses of both models, within 1e-3 relative. A failed check is an error.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_bert2bert::{
    Bert2Bert, Bert2BertConfig, load_pretrained, save_pretrained, shift_tokens_right,
};
use scalegrad_gpt2::{GenerationConfig, Gpt2, Gpt2Config, generate, shift_for_next_token};
use scalegrad_loss::{Objective, ObjectiveConfig};
use scalegrad_ops::{Compute, Execution};
use scalegrad_train::config::{DEFAULT_CHUNK_MIB, OptimizerSection};
use scalegrad_train::loss_scale::LossScaler;
use scalegrad_train::optim::{AdamWUpdate, adamw, clip_to_norm, global_norm_tensor};
use scalegrad_train::task::head_objective_in_chunks;
use serde_json::json;

use super::on_device;
use crate::backend::{Backend, DeviceArgs};

/// Arguments of `scalegrad bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// GPT-2 checkpoint (Hugging Face directory); default: distilgpt2's architecture with
    /// random weights.
    #[arg(long)]
    gpt2: Option<PathBuf>,
    /// BERT2BERT checkpoint (Hugging Face directory); default: bert-small2bert-small's
    /// architecture with random weights.
    #[arg(long)]
    b2b: Option<PathBuf>,
    /// Timed optimiser steps per training case (after two warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// `paper`: the benchmark's shapes; `tiny`: tiny models and shapes (a smoke test).
    #[arg(long, value_enum, default_value_t = Size::Paper)]
    size: Size,
    /// Run only the cases whose name contains one of these (e.g. `train`, `greedy`).
    #[arg(long)]
    only: Vec<String>,
    /// First compare losses and logits on this backend with flex on the same weights.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The shapes to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Size {
    /// distilgpt2 and bert-small2bert-small at the benchmark's shapes.
    Paper,
    /// Two-layer models and short sequences, for tests.
    Tiny,
}

/// The cases of one size: GPT-2 train `(batch, len)`, b2b train `(batch, source,
/// target)`, greedy `(batches, prefix, new)`.
struct Shapes {
    gpt2_train: &'static [(usize, usize)],
    b2b_train: (usize, usize, usize),
    greedy: (&'static [usize], usize, usize),
}

impl Size {
    fn shapes(self) -> Shapes {
        match self {
            Size::Paper => Shapes {
                gpt2_train: &[(8, 300), (32, 300)],
                b2b_train: (16, 512, 128),
                greedy: (&[1, 32], 50, 100),
            },
            Size::Tiny => Shapes {
                gpt2_train: &[(2, 16), (4, 16)],
                b2b_train: (2, 24, 8),
                greedy: (&[1, 3], 6, 5),
            },
        }
    }

    fn gpt2(self) -> Gpt2Config {
        match self {
            Size::Paper => Gpt2Config::distilgpt2(),
            Size::Tiny => Gpt2Config::tiny(300).with_dropout(0.1),
        }
    }

    fn b2b(self) -> Bert2BertConfig {
        match self {
            Size::Paper => Bert2BertConfig::bert_small(),
            Size::Tiny => Bert2BertConfig::tiny(300),
        }
    }
}

/// Runs the benchmark cases on the chosen backend.
pub fn run(args: Args) -> Result<()> {
    // Checkpoints: the given directories, or random weights saved once so that the check
    // can load the same weights on both devices.
    let scratch = std::env::temp_dir().join(format!("scalegrad-bench-{}", std::process::id()));
    let outcome = checkpoint(&args.gpt2, &scratch.join("gpt2"), |dir, flex| {
        let model = args.size.gpt2().init(flex);
        model
            .save_pretrained(dir, None)
            .context("saving the random GPT-2")
    })
    .and_then(|gpt2_dir| {
        let b2b_dir = checkpoint(&args.b2b, &scratch.join("b2b"), |dir, flex| {
            let config = args.size.b2b();
            save_pretrained(&config.init(flex), &config, dir).context("saving the random BERT2BERT")
        })?;
        run_cases(&args, &gpt2_dir, &b2b_dir)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

/// `given`, or `scratch` after `save` wrote a model initialised on flex with seed 0.
fn checkpoint(
    given: &Option<PathBuf>,
    scratch: &Path,
    save: impl FnOnce(&Path, &Device) -> Result<()>,
) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.clone());
    }
    let flex = flex_device()?;
    flex.seed(0);
    save(scratch, &flex)?;
    Ok(scratch.to_path_buf())
}

fn run_cases(args: &Args, gpt2_dir: &Path, b2b_dir: &Path) -> Result<()> {
    let backend = args.device.backend;
    let device = &backend.open()?.0;
    let execution = backend.execution();
    // The timed models compute in the precision asked for; the --check comparison
    // against flex stays f32.
    let precision = args.device.precision_on(device)?;
    let compute = Compute {
        execution,
        precision,
    };
    let shapes = args.size.shapes();
    let wanted = |case: &str| args.only.is_empty() || args.only.iter().any(|o| case.contains(o));
    let load_gpt2 = |device: &Device, execution: Execution| -> Result<Gpt2> {
        Ok(Gpt2::from_pretrained(gpt2_dir, device)
            .with_context(|| format!("loading {}", gpt2_dir.display()))?
            .0
            .with_execution(execution))
    };
    let load_b2b = |device: &Device, execution: Execution| -> Result<(Bert2Bert, u32)> {
        let loaded = load_pretrained(b2b_dir, device)
            .with_context(|| format!("loading {}", b2b_dir.display()))?;
        let vocab = loaded.config.decoder.vocab_size as u32;
        Ok((loaded.model.with_execution(execution), vocab))
    };
    if args.check {
        let flex = flex_device()?;
        on_device("the check against flex", ADVICE, || {
            check_gpt2(
                &load_gpt2(&flex, Execution::Host)?,
                &load_gpt2(device, execution)?,
                backend,
            )?;
            check_b2b(
                &load_b2b(&flex, Execution::Host)?,
                &load_b2b(device, execution)?,
                backend,
            )
        })?;
    }
    let train_device = device.clone().autodiff();
    for &(batch, len) in shapes.gpt2_train {
        for (label, objective) in [
            ("ce", ObjectiveConfig::Mle),
            ("sg0.2", ObjectiveConfig::ScaleGrad { gamma: 0.2 }),
        ] {
            let case = format!("gpt2-train {label} {batch}x{len}");
            if !wanted(&case) {
                continue;
            }
            let timing = on_device(&case, ADVICE, || {
                let model = load_gpt2(&train_device, execution)?.with_precision(precision);
                let objective = objective.init(Some(-100)).context("the objective")?;
                time_gpt2_train(model, &objective, batch, len, args.steps, compute)
            })?;
            timing.print(&case, "tokens_per_s", (batch * len) as f64);
        }
    }
    let (batch, source, target) = shapes.b2b_train;
    let case = format!("b2b-train ce {batch}x{source}+{target}");
    if wanted(&case) {
        let timing = on_device(&case, ADVICE, || {
            let (model, vocab) = load_b2b(&train_device, execution)?;
            let model = model.with_precision(precision);
            time_b2b_train(model, vocab, shapes.b2b_train, args.steps, compute)
        })?;
        timing.print(&case, "tokens_per_s", (batch * (source + target)) as f64);
    }
    let (batches, prefix, new) = shapes.greedy;
    for &batch in batches {
        let case = format!("gpt2-greedy b{batch} {prefix}+{new}");
        if !wanted(&case) {
            continue;
        }
        let (timing, tokens) = on_device(&case, ADVICE, || {
            let model = load_gpt2(device, execution)?.with_precision(precision);
            let vocab = model.config().vocab_size;
            let prompts: Vec<Vec<u32>> = (0..batch)
                .map(|b| {
                    (0..prefix)
                        .map(|i| ((b * 7919 + i * 31 + 11) % vocab) as u32)
                        .collect()
                })
                .collect();
            let config = GenerationConfig::greedy(new);
            generate(&model, &prompts, &config).context("warm-up decoding")?;
            let clock = Clock::start();
            let out = generate(&model, &prompts, &config).context("decoding")?;
            let tokens: usize = out.iter().map(|g| g.tokens.len()).sum();
            Ok((clock.stop(1), tokens))
        })?;
        timing.print(&case, "new_tokens_per_s", tokens as f64);
    }
    Ok(())
}

/// What to do when a case needs more of the device than it has.
const ADVICE: &str = "run it on a larger device, or leave it out with --only";

fn flex_device() -> Result<Device> {
    Backend::Flex
        .device()
        .context("the comparison needs the flex backend")
}

/// The start of a timed span: a monotonic clock for the duration and the system clock
/// for the span's place in time.
struct Clock {
    started: Instant,
    since_epoch: Duration,
}

impl Clock {
    fn start() -> Self {
        Self {
            since_epoch: unix_time(),
            started: Instant::now(),
        }
    }

    /// The span from the start until now, of `units` steps (or runs).
    fn stop(self, units: usize) -> Timing {
        let wall = self.started.elapsed();
        Timing {
            wall,
            start: self.since_epoch,
            units: units.max(1),
        }
    }
}

/// Time since the Unix epoch (zero on a clock set before it).
fn unix_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A timed span of `units` steps (or runs).
#[derive(Clone, Copy, Debug)]
struct Timing {
    wall: Duration,
    /// Start as time since the Unix epoch.
    start: Duration,
    units: usize,
}

impl Timing {
    /// One output line: `per_unit` per second of a unit (a throughput) as `metric`, and
    /// the span in Unix seconds.
    fn print(&self, case: &str, metric: &str, per_unit: f64) {
        let seconds = self.wall.as_secs_f64() / self.units as f64;
        let start = self.start.as_secs_f64();
        println!(
            "{}",
            json!({
                "case": case,
                "metric": metric,
                "value": per_unit / seconds,
                "span": [start, start + self.wall.as_secs_f64()],
            })
        );
    }
}

/// Deterministic token ids `[batch, len]` below `vocab`.
fn ids(batch: usize, len: usize, vocab: usize, salt: usize, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = (0..batch * len)
        .map(|i| ((i * 7919 + salt * 104_729 + 13) % vocab) as i64)
        .collect();
    Tensor::from_data(TensorData::new(ids, [batch, len]), device)
}

fn optimizer(execution: Execution) -> Result<burn::optim::ModuleOptimizer> {
    let section: OptimizerSection =
        serde_json::from_value(json!({"lr": 2e-5, "weight_decay": 0.01, "eps": 1e-8}))
            .context("the optimizer section")?;
    Ok(adamw(&section, AdamWUpdate::for_execution(execution)))
}

/// The gradient clipping of the timed train steps: the `full` configs' and Hugging Face
/// Trainer's default `max_grad_norm` (python/bench_gpu.py clips the same).
const MAX_GRAD_NORM: f64 = 1.0;

/// Timing of `steps` optimiser steps of training `model` on `loss` after two warm-up
/// steps, between two device synchronisations. A step is the trainer's: the device
/// reseeded (dropout masks follow the step), forward, backward, the global gradient norm
/// clipped to [`MAX_GRAD_NORM`] (`clip_to_norm` under the backend's execution policy), an
/// AdamW step at `lr`. In f16 it scales the loss and unscales and checks the gradients
/// as the trainer does ([`LossScaler::unscale`], one read per step), as PyTorch's side
/// does with its `GradScaler`; timed steps skipped on an overflow are reported.
fn time_steps<M: Module>(
    mut model: M,
    device: &Device,
    steps: usize,
    compute: Compute,
    lr: f64,
    loss: impl Fn(&M) -> Tensor<1>,
) -> Result<Timing> {
    let mut optim = optimizer(compute.execution)?;
    let mut scaler = compute.precision.needs_loss_scaling().then(LossScaler::new);
    let mut last = None;
    let mut seed = 0u64;
    let mut step = |model: M| {
        seed += 1;
        device.seed(seed);
        let loss = loss(&model);
        last = Some(loss.clone().detach());
        let loss = match &scaler {
            Some(scaler) => loss * scaler.scale,
            None => loss,
        };
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let norm = match scaler.as_mut() {
            Some(scaler) => match scaler.unscale(&model, &mut grads) {
                (true, norm) => norm,
                (false, _) => return model,
            },
            None => global_norm_tensor(&model, &grads),
        };
        if let Some(norm) = norm {
            clip_to_norm(&model, &mut grads, &norm, MAX_GRAD_NORM, compute.execution);
        }
        optim.step(lr, model, grads)
    };
    for _ in 0..2 {
        model = step(model);
    }
    sync(device)?;
    let clock = Clock::start();
    for _ in 0..steps {
        model = step(model);
    }
    sync(device)?;
    let timing = clock.stop(steps);
    if let Some(scaler) = &scaler
        && scaler.skipped_steps > 0
    {
        eprintln!(
            "note: {} of the {} f16 steps (warm-up included) overflowed and skipped the \
             optimiser (loss scale now {})",
            scaler.skipped_steps,
            steps + 2,
            scaler.scale
        );
    }
    // The synchronisation waits for the device but does not report work it could not do
    // (a refused allocation skips every kernel that needed the buffer, quickly): without
    // this read such a run would print the speed of doing nothing.
    let loss = last
        .expect("at least the warm-up steps ran")
        .try_into_scalar::<f32>()
        .map_err(|e| anyhow::anyhow!("reading the last loss: {e:?}"))?;
    if !loss.is_finite() {
        bail!(
            "the last step's loss is {loss}: an overflow, or work the device skipped; the \
             timing is not reported"
        );
    }
    Ok(timing)
}

/// Timing of the GPT-2 train step.
fn time_gpt2_train(
    model: Gpt2,
    objective: &Objective,
    batch: usize,
    len: usize,
    steps: usize,
    compute: Compute,
) -> Result<Timing> {
    let device = model.device();
    let vocab = model.config().vocab_size;
    let ids = ids(batch, len, vocab, 1, &device);
    time_steps(model, &device, steps, compute, 2e-5, |model| {
        // The trainer's computation: the body, then the LM head and the objective in
        // chunks of at most `training.chunk_mib`'s default of logits.
        let hidden = model
            .forward_hidden(ids.clone(), None)
            .narrow(1, 0, len - 1);
        let targets = ids.clone().narrow(1, 1, len - 1);
        head_objective_in_chunks(
            hidden,
            targets,
            vocab,
            |hidden| model.lm_head(hidden),
            objective,
            DEFAULT_CHUNK_MIB << 20,
        )
        .loss
    })
}

/// Timing of the BERT2BERT train step (cross-entropy).
fn time_b2b_train(
    model: Bert2Bert,
    vocab: u32,
    (batch, source, target): (usize, usize, usize),
    steps: usize,
    compute: Compute,
) -> Result<Timing> {
    let device = model.device();
    let objective = ObjectiveConfig::Mle
        .init(Some(-100))
        .context("the objective")?;
    let source_ids = ids(batch, source, vocab as usize, 2, &device);
    let mask = Tensor::<2, Int>::ones([batch, source], &device);
    let labels = ids(batch, target, vocab as usize, 3, &device);
    let decoder_ids = shift_tokens_right(labels.clone(), 0, 101);
    time_steps(model, &device, steps, compute, 1e-4, |model| {
        let hidden = model.forward_hidden(
            source_ids.clone(),
            Some(mask.clone()),
            decoder_ids.clone(),
            None,
        );
        head_objective_in_chunks(
            hidden,
            labels.clone(),
            vocab as usize,
            |hidden| model.decoder.logits(hidden),
            &objective,
            DEFAULT_CHUNK_MIB << 20,
        )
        .loss
    })
}

fn sync(device: &Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("waiting for the device: {e:?}"))
}

/// Largest absolute difference relative to the largest magnitude of `reference`.
fn relative_difference<const D: usize>(value: Tensor<D>, reference: Tensor<D>) -> Result<f64> {
    let a = value
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let b = reference
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-12);
    Ok(a.iter()
        .zip(&b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale)
}

fn report_check(what: &str, difference: f64, backend: Backend) -> Result<()> {
    const TOLERANCE: f64 = 1e-3;
    let ok = difference <= TOLERANCE;
    println!(
        "{}",
        json!({"check": what, "backend": backend.name(), "relative_difference": difference, "ok": ok})
    );
    if !ok {
        bail!(
            "{what} on {} differs from flex by {difference:.2e} (relative), more than {TOLERANCE:e}",
            backend.name()
        );
    }
    Ok(())
}

/// Logits and both losses of GPT-2 in evaluation mode, on this backend against flex.
fn check_gpt2(flex: &Gpt2, other: &Gpt2, backend: Backend) -> Result<()> {
    let vocab = flex.config().vocab_size;
    let len = flex.config().n_positions.min(64);
    let run = |model: &Gpt2| -> Result<(Tensor<3>, Vec<Tensor<1>>)> {
        let device = model.device();
        let ids = ids(2, len, vocab, 4, &device);
        let logits = model.forward(ids.clone(), None);
        let (shifted, targets) = shift_for_next_token(logits.clone(), ids);
        let mut losses = Vec::new();
        for objective in [
            ObjectiveConfig::Mle,
            ObjectiveConfig::ScaleGrad { gamma: 0.2 },
        ] {
            let objective = objective.init(Some(-100)).context("the objective")?;
            losses.push(objective.forward(shifted.clone(), targets.clone()));
        }
        Ok((logits, losses))
    };
    let (flex_logits, flex_losses) = run(&flex.clone().valid())?;
    let (logits, losses) = run(&other.clone().valid())?;
    let device = flex.device();
    report_check(
        "gpt2 logits",
        relative_difference(Tensor::from_data(logits.into_data(), &device), flex_logits)?,
        backend,
    )?;
    for ((name, loss), reference) in ["gpt2 cross-entropy", "gpt2 scalegrad 0.2"]
        .iter()
        .zip(losses)
        .zip(flex_losses)
    {
        report_check(
            name,
            relative_difference(Tensor::from_data(loss.into_data(), &device), reference)?,
            backend,
        )?;
    }
    Ok(())
}

/// Logits and cross-entropy of BERT2BERT in evaluation mode, on this backend against flex.
fn check_b2b(flex: &(Bert2Bert, u32), other: &(Bert2Bert, u32), backend: Backend) -> Result<()> {
    let run = |(model, vocab): &(Bert2Bert, u32)| -> Result<(Tensor<3>, Tensor<1>)> {
        let device = model.device();
        let source = ids(2, 48, *vocab as usize, 5, &device);
        let labels = ids(2, 16, *vocab as usize, 6, &device);
        let decoder_ids = shift_tokens_right(labels.clone(), 0, 101);
        let logits = model
            .clone()
            .valid()
            .forward(source, None, decoder_ids, None);
        let objective = ObjectiveConfig::Mle
            .init(Some(-100))
            .context("the objective")?;
        let loss = objective.forward(logits.clone(), labels);
        Ok((logits, loss))
    };
    let (flex_logits, flex_loss) = run(flex)?;
    let (logits, loss) = run(other)?;
    let device = flex.0.device();
    report_check(
        "b2b logits",
        relative_difference(Tensor::from_data(logits.into_data(), &device), flex_logits)?,
        backend,
    )?;
    report_check(
        "b2b cross-entropy",
        relative_difference(Tensor::from_data(loss.into_data(), &device), flex_loss)?,
        backend,
    )
}
