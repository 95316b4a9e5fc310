//! The training loop: an interrupted and resumed run reproduces an uninterrupted one,
//! and a NaN loss stops the run with the last good checkpoint intact.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use scalegrad_data::cache::TokenArray;
use scalegrad_data::lm::{LmWindows, WindowConfig};
use scalegrad_data::{BatchSampler, LmBatch, SamplerConfig};
use scalegrad_gpt2::{Gpt2, Gpt2Config};
use scalegrad_ops::Execution;
use scalegrad_train::checkpoint;
use scalegrad_train::config::RunConfig;
use scalegrad_train::log::{Event, read_events};
use scalegrad_train::open_ended::LmTask;
use scalegrad_train::optim::AdamWUpdate;
use scalegrad_train::trainer::{
    Task, TrainError, TrainSpec, Validation, objective_in_chunks, train,
};

const VOCAB: usize = 50;

fn config() -> RunConfig {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/demo/open-ended-2-sg0.2.toml"),
    )
    .unwrap();
    let path = Path::new("test.toml");
    let mut config = RunConfig::parse(&text, path).unwrap();
    // The demo's ScaleGrad run, shortened (set as fields, so the demo may change).
    config.training.steps = 6;
    config.training.eval_every = 3;
    config.training.log_every = 1;
    config.training.batch_size = 4;
    config.optimizer.warmup_steps = 2;
    config.validate(path).unwrap();
    config
}

/// A token stream with repeats, so ScaleGrad's context sets are not empty.
fn tokens() -> TokenArray {
    let ids: Vec<u32> = (0..2000u32)
        .map(|i| (i * 7 + i / 5) % VOCAB as u32)
        .collect();
    TokenArray::pack(ids, VOCAB)
}

fn task<'a>(tokens: &'a TokenArray, tokenizer_dir: &Path, config: &RunConfig) -> LmTask<'a> {
    let windows = WindowConfig::new(16);
    let train = LmWindows::new(tokens, windows).unwrap();
    let valid = LmWindows::new(tokens, windows).unwrap();
    let sampler =
        BatchSampler::new(train.len(), SamplerConfig::shuffled(4, config.run.seed)).unwrap();
    LmTask {
        train,
        valid,
        sampler,
        objective: config.objective.init(Some(-100)).unwrap(),
        batch_size: 4,
        max_valid: Some(8),
        tokenizer_dir: tokenizer_dir.to_path_buf(),
    }
}

fn model(device: &Device, execution: Execution) -> Gpt2 {
    device.seed(5);
    Gpt2Config::tiny(VOCAB)
        .with_dropout(0.1)
        .init(device)
        .with_execution(execution)
}

fn spec<'a>(
    config: &'a RunConfig,
    dir: &'a Path,
    max_steps: Option<usize>,
    resume: bool,
    execution: Execution,
) -> TrainSpec<'a> {
    TrainSpec {
        config,
        run_dir: dir,
        device: Device::flex().autodiff(),
        objective: config.objective.init(Some(-100)).unwrap(),
        max_steps,
        resume,
        execution,
    }
}

fn train_losses(dir: &Path) -> Vec<(usize, f64)> {
    read_events(&dir.join("log.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Train { step, loss, .. } => Some((step, loss)),
            _ => None,
        })
        .collect()
}

/// burn's flex device has one random generator per process: tests that train with
/// dropout at the same time would draw from it in an interleaved order, so they take
/// turns.
static DEVICE_RNG: Mutex<()> = Mutex::new(());

/// Every execution policy on flex: the host paths, and the device paths a GPU takes
/// (burn's dropout, the tensor AdamW, clipping and statistics kept on the device; with
/// `Fused`, also GPT-2's bias and LayerNorm rows).
#[test]
fn a_resumed_run_follows_the_uninterrupted_loss_curve() {
    for execution in [Execution::Host, Execution::Device, Execution::Fused] {
        resumed_run_follows_the_uninterrupted_loss_curve(execution);
    }
}

fn resumed_run_follows_the_uninterrupted_loss_curve(execution: Execution) {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = config();
    // Clipping on, so the device-side clipping factor is part of what must agree.
    config.optimizer.max_grad_norm = Some(0.5);
    let tokens = tokens();
    let tmp = tempfile::tempdir().unwrap();
    let task = task(&tokens, tmp.path(), &config);
    let device = Device::flex().autodiff();

    let straight = tmp.path().join("straight");
    train(
        &task,
        model(&device, execution),
        spec(&config, &straight, None, false, execution),
    )
    .unwrap();

    let resumed = tmp.path().join("resumed");
    let first = train(
        &task,
        model(&device, execution),
        spec(&config, &resumed, Some(3), false, execution),
    )
    .unwrap();
    assert_eq!(first.state.step, 3);
    // A fresh process would rebuild the model from the config; its weights are then
    // replaced by the checkpoint's.
    let second = train(
        &task,
        model(&device, execution),
        spec(&config, &resumed, None, true, execution),
    )
    .unwrap();
    assert_eq!(second.state.step, 6);

    let a = train_losses(&straight);
    let b = train_losses(&resumed);
    assert_eq!(a.len(), 6, "{a:?}");
    assert_eq!(
        a.iter().map(|x| x.0).collect::<Vec<_>>(),
        b.iter().map(|x| x.0).collect::<Vec<_>>()
    );
    for ((step, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() < 1e-5,
            "{execution}, step {step}: uninterrupted loss {x}, resumed {y}"
        );
    }
    // The losses must move, or the comparison above proves nothing.
    assert!((a[0].1 - a[5].1).abs() > 1e-3, "loss did not change: {a:?}");
    let state = |run: &Path| {
        let latest = checkpoint::latest(run).unwrap().unwrap();
        std::fs::read_to_string(latest.join("state.json")).unwrap()
    };
    let (state_a, state_b) = (state(&straight), state(&resumed));
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("train_seconds"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&state_a),
        strip(&state_b),
        "data position, best and counters agree"
    );
}

/// The LM task with its hidden states and targets passed through `alter`; it records
/// the training examples of every batch it collates.
struct Altered<'a, F> {
    inner: LmTask<'a>,
    alter: F,
    seen: RefCell<Vec<Vec<usize>>>,
}

type Hidden = (Tensor<3>, Tensor<2, Int>);

impl<F: Fn(Hidden) -> Hidden> Task for Altered<'_, F> {
    type Model = Gpt2;
    type Batch = LmBatch;
    fn sampler(&self) -> &BatchSampler {
        self.inner.sampler()
    }
    fn collate(&self, indices: Vec<usize>) -> LmBatch {
        self.seen.borrow_mut().push(indices.clone());
        self.inner.collate(indices)
    }
    fn hidden(&self, model: &Gpt2, batch: &LmBatch, device: &Device) -> Hidden {
        (self.alter)(self.inner.hidden(model, batch, device))
    }
    fn head(&self, model: &Gpt2, hidden: Tensor<3>) -> Tensor<3> {
        self.inner.head(model, hidden)
    }
    fn vocab_size(&self, model: &Gpt2) -> usize {
        self.inner.vocab_size(model)
    }
    fn validate(&self, model: &Gpt2, chunk_bytes: usize) -> Result<Validation, String> {
        self.inner.validate(model, chunk_bytes)
    }
    fn save_best(&self, model: &Gpt2, dir: &Path) -> Result<(), String> {
        self.inner.save_best(model, dir)
    }
}

/// The LM head and loss applied to one row at a time give what the whole batch at once
/// gives: the loss, every per-token term, the token count, and the gradients.
#[test]
fn the_objective_in_chunks_of_rows_equals_the_whole_batch() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let config = config();
    let tokens = tokens();
    let tmp = tempfile::tempdir().unwrap();
    // The second half of the first row's targets ignored, so that rows score different
    // numbers of tokens (a per-chunk mean would then differ from the mean).
    let task = Altered {
        inner: task(&tokens, tmp.path(), &config),
        alter: |(hidden, targets): Hidden| {
            let [_, len] = targets.dims();
            let ignored = Tensor::<2, Int>::full([1, len / 2], -100, &targets.device());
            (hidden, targets.slice_assign([0..1, len / 2..len], ignored))
        },
        seen: RefCell::default(),
    };
    let objective = &task.inner.objective;
    let device = Device::flex().autodiff();
    // Validation mode: no dropout, so both passes compute the same function.
    let model = model(&device, Execution::Host).valid();
    let batch = task.collate(task.sampler().epoch(0)[0].clone());
    let plain = Device::flex();
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let whole = objective_in_chunks(&task, &model, objective, &batch, &plain, usize::MAX);
    // One row of 16 x 50 f32 logits is 3,200 bytes: a budget of 1 byte is one row each.
    let rows = objective_in_chunks(&task, &model, objective, &batch, &plain, 1);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(
        &values(whole.token_loss.clone()),
        &values(rows.token_loss.clone())
    ));
    assert!(close(&values(whole.nll.clone()), &values(rows.nll.clone())));
    let scalar = |t: Tensor<1>| t.into_scalar::<f32>();
    assert_eq!(scalar(whole.count.clone()), scalar(rows.count.clone()));
    // Four rows of 16 targets, half of the first one ignored.
    assert_eq!(scalar(whole.count.clone()), 56.0);
    assert!((scalar(whole.loss.clone()) - scalar(rows.loss.clone())).abs() < 1e-6);
    // Gradients, on the autodiff device with the model in training mode and no dropout.
    let mut train_config = Gpt2Config::tiny(VOCAB);
    train_config.resid_pdrop = 0.0;
    train_config.embd_pdrop = 0.0;
    train_config.attn_pdrop = 0.0;
    device.seed(5);
    let model = train_config.init(&device);
    let grad_of = |budget: usize| {
        let out = objective_in_chunks(&task, &model, objective, &batch, &device, budget);
        let grads = out.loss.backward();
        let weight = model.blocks[0].mlp.fc.weight.val();
        weight.grad(&grads).expect("a gradient")
    };
    let (a, b) = (grad_of(usize::MAX), grad_of(1));
    let diff = (a.clone() - b).abs().max().into_scalar::<f32>();
    assert!(
        diff < 1e-6 * a.abs().max().into_scalar::<f32>().max(1e-3),
        "{diff}"
    );
}

/// The step of a NaN loss is found exactly even when the statistics are read only every
/// few steps (`log_every = 4` here: steps 1 to 3 are read before the checkpoint at 3,
/// step 4 at its log, steps 5 and 6 only before the validation of step 6).
#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    for (execution, log_every) in [
        (Execution::Host, 1),
        (Execution::Device, 1),
        (Execution::Device, 4),
    ] {
        nan_loss_stops_the_run(execution, log_every);
    }
}

fn nan_loss_stops_the_run(execution: Execution, log_every: usize) {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = config();
    config.training.log_every = log_every;
    let tokens = tokens();
    let tmp = tempfile::tempdir().unwrap();
    // The logits of the fifth batch poisoned with NaN.
    let calls = Cell::new(0);
    let task = Altered {
        inner: task(&tokens, tmp.path(), &config),
        alter: |(hidden, targets): Hidden| {
            calls.set(calls.get() + 1);
            let poison = if calls.get() == 5 { f32::NAN } else { 1.0 };
            (hidden * poison, targets)
        },
        seen: RefCell::default(),
    };
    let device = Device::flex().autodiff();
    let dir = tmp.path().join("run");
    let err = train(
        &task,
        model(&device, execution),
        spec(&config, &dir, None, false, execution),
    )
    .unwrap_err();
    match &err {
        TrainError::Diverged {
            step, checkpoint, ..
        } => {
            assert_eq!(*step, 5, "{execution}, log_every {log_every}");
            assert!(checkpoint.ends_with("step-0000003"), "{checkpoint}");
        }
        other => panic!("expected divergence, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("lower optimizer.lr"), "{message}");
    let latest = checkpoint::latest(&dir).unwrap().unwrap();
    assert!(latest.ends_with("step-0000003"));
    // The checkpoint is complete and loads.
    let optimizer =
        scalegrad_train::optim::adamw(&config.optimizer, AdamWUpdate::for_execution(execution));
    let (_, _, state) = checkpoint::load(&latest, model(&device, execution), optimizer).unwrap();
    assert_eq!(state.step, 3);
}

/// The loop trains on the sampler's epochs one after the other, and a run resumed from a
/// checkpoint taken at the end of an epoch continues with the next epoch's first batch:
/// an epoch of 3 batches, 6 steps, checkpoints at steps 3 and 6.
#[test]
fn batches_follow_the_sampler_across_epochs_and_a_resume_at_an_epoch_end() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = config();
    config.optimizer.grad_accumulation = 1;
    let tokens = tokens();
    let tmp = tempfile::tempdir().unwrap();
    let small = || {
        let mut inner = task(&tokens, tmp.path(), &config);
        inner.sampler = BatchSampler::new(12, SamplerConfig::shuffled(4, config.run.seed)).unwrap();
        Altered {
            inner,
            alter: |hidden: Hidden| hidden,
            seen: RefCell::default(),
        }
    };
    let expected: Vec<Vec<usize>> = {
        let sampler = small().inner.sampler;
        assert_eq!(sampler.batches_per_epoch(), 3);
        (0..2).flat_map(|epoch| sampler.epoch(epoch)).collect()
    };
    assert_ne!(expected[0..3], expected[3..6], "epochs are reshuffled");
    let device = Device::flex().autodiff();
    let execution = Execution::Host;

    let straight = small();
    let dir = tmp.path().join("straight");
    train(
        &straight,
        model(&device, execution),
        spec(&config, &dir, None, false, execution),
    )
    .unwrap();
    assert_eq!(*straight.seen.borrow(), expected);

    let resumed = small();
    let dir = tmp.path().join("resumed");
    let first = train(
        &resumed,
        model(&device, execution),
        spec(&config, &dir, Some(3), false, execution),
    )
    .unwrap();
    assert_eq!((first.state.epoch, first.state.batch_in_epoch), (1, 0));
    train(
        &resumed,
        model(&device, execution),
        spec(&config, &dir, None, true, execution),
    )
    .unwrap();
    assert_eq!(*resumed.seen.borrow(), expected);
}
