//! One run from config to `metrics.json`: resolve data, tokenizer and model, train
//! (unless the run only evaluates its starting checkpoint), evaluate the best checkpoint
//! on the test split, and write the run folder.
//!
//! A run folder `OUT/<experiment>/<name>/` holds, in the order they are written:
//! `config.toml` (before any work), `log.jsonl` and `checkpoints/` (during training),
//! `best/` (a Hugging Face model directory), then `samples.jsonl` and `metrics.json`
//! (whose presence marks the run finished).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use burn::module::Module;
use burn::tensor::Device;
use scalegrad_bert2bert::{GenerationOverrides, ScratchIds, scratch_config};
use scalegrad_data::hub::{HubConfig, resolve_model_dir};
use scalegrad_data::lm::{LastWindow, WindowConfig};
use scalegrad_data::reader::read_columns;
use scalegrad_data::tokenizer::{GPT2_EOS, bert_special_ids, load_tokenizer};
use scalegrad_data::trained::{TokenizerKind, TokenizerTraining, trained_tokenizer};
use scalegrad_data::{
    BatchSampler, DatasetName, DatasetSource, LmWindows, SamplerConfig, SummarizationConfig,
    SummarizationSet, TokenizeOptions, TokenizeSpec, TokenizedSplit, tokenize_files,
};
use scalegrad_gpt2::{Gpt2, Gpt2Config};
use scalegrad_loss::Objective;
use scalegrad_metrics::BootstrapConfig;
use scalegrad_ops::{Execution, Precision};
use serde::Serialize;
use serde_json::{Value, json};
use tokenizers::Tokenizer;

use crate::checkpoint::write_atomic;
use crate::config::{ConfigError, Experiment, RunConfig};
use crate::open_ended::{self, LmTask, OpenEndedEval};
use crate::summarization::{self, SummarizationEval, SummarizationTask};
use crate::trainer::{self, TrainOutcome, TrainSpec, best_dir};

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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |e| RunError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// What [`trainer::train`] needs for `config`'s run in `dir`, as `opts` ask (step cap,
/// resumption, the optimiser's update path for the backend).
fn train_spec<'a>(
    opts: &RunOptions,
    config: &'a RunConfig,
    dir: &'a Path,
    device: Device,
    objective: Objective,
) -> TrainSpec<'a> {
    TrainSpec {
        config,
        run_dir: dir,
        device,
        objective,
        max_steps: opts.max_steps,
        resume: opts.resume,
        execution: opts.execution,
    }
}

/// The model to evaluate: `model` itself (in evaluation mode) for an `eval_only` run,
/// otherwise the best checkpoint of training it as `spec` says, read back with
/// `load_best` on the evaluation device. Returns the training outcome too.
fn train_unless_eval_only<T: trainer::Task>(
    task: &T,
    model: T::Model,
    spec: TrainSpec<'_>,
    load_best: impl FnOnce(&Path) -> Result<T::Model>,
) -> Result<(Option<TrainOutcome>, T::Model)> {
    if spec.config.run.eval_only {
        return Ok((None, model.valid()));
    }
    let run_dir = spec.run_dir;
    let advice = format!(
        "lower training.chunk_mib and rerun with --resume (the checkpoints in {} are \
         intact), or lower training.batch_size, raise optimizer.grad_accumulation to keep \
         the effective batch and start over with --restart (a checkpoint continues only \
         under the batch it was made with)",
        run_dir.display()
    );
    let outcome =
        crate::device_failure::guard("training", &advice, || trainer::train(task, model, spec))
            .map_err(RunError::OutOfMemory)??;
    Ok((Some(outcome), load_best(&best_dir(run_dir))?))
}

/// Runs a config to completion and returns its run folder.
pub fn run(opts: &RunOptions) -> Result<PathBuf> {
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
    let precision = config.training.precision;
    precision.check_device(&opts.device).map_err(|why| {
        invalid(
            &opts.config_path,
            "training.precision",
            format!(
                "the {} backend cannot run {precision}: {why}; use --precision f32{}",
                opts.backend,
                if precision == Precision::Bf16 {
                    " (or f16 where the device has it)"
                } else {
                    ""
                }
            ),
        )
    })?;
    let dir = run_dir(&opts.out, &config);
    if opts.restart && dir.exists() {
        ensure_run_folder(&opts.out, &dir)?;
        std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    if dir.join("metrics.json").exists() {
        eprintln!(
            "{} is finished (metrics.json exists); pass --restart to run it again",
            dir.display()
        );
        return Ok(dir);
    }
    let has_checkpoints = !crate::checkpoint::list(&dir)
        .map_err(trainer::TrainError::from)?
        .is_empty();
    if has_checkpoints && !opts.resume {
        return Err(RunError::RunFolder(format!(
            "{} already holds checkpoints of an interrupted run; pass --resume to continue it \
             or --restart to start over",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    // The config goes first, so even a run that fails at once says what it was.
    let config_text =
        std::fs::read_to_string(&opts.config_path).map_err(io_err(&opts.config_path))?;
    write_atomic(&dir.join("config.toml"), config_text.as_bytes())
        .map_err(trainer::TrainError::from)?;

    let started = Instant::now();
    let hub = HubConfig::from_env();
    let outcome = match config.run.experiment {
        Experiment::OpenEnded => open_ended_run(&config, opts, &dir, &hub)?,
        Experiment::Summarization => summarization_run(&config, opts, &dir, &hub)?,
    };
    let provenance = Provenance {
        config_file: opts.config_path.display().to_string(),
        git_revision: opts.code_revision.clone(),
        backend: opts.backend.clone(),
        precision: precision.name().to_string(),
        device: device_description(opts.execution, &opts.device),
        steps: outcome.train.as_ref().map_or(0, |t| t.state.step),
        train_seconds: outcome
            .train
            .as_ref()
            .map_or(0.0, |t| t.state.train_seconds),
        train_tokens_per_s: outcome.train.as_ref().map_or(0.0, |t| t.tokens_per_s),
        eval_seconds: outcome.eval_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        finished_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let checkpoint = match (&config.run.eval_only, &outcome.train) {
        (false, Some(t)) => json!({
            "source": "best",
            "step": t.state.best.as_ref().map_or(0, |b| b.step),
            "valid_nll": t.state.best.as_ref().map(|b| b.value),
        }),
        _ => json!({"source": "initial", "step": 0}),
    };
    let mut metrics = json!({
        "experiment": config.run.experiment.name(),
        "run": config.run.name,
        "description": config.run.description,
        "objective": serde_json::to_value(&config.objective).expect("serialisable"),
        "checkpoint": checkpoint,
        "provenance": serde_json::to_value(&provenance).expect("serialisable"),
    });
    metrics[outcome.section.0] = outcome.section.1;

    let mut samples = String::new();
    for s in &outcome.samples {
        samples.push_str(&s.to_string());
        samples.push('\n');
    }
    write_atomic(&dir.join("samples.jsonl"), samples.as_bytes())
        .map_err(trainer::TrainError::from)?;
    let text = serde_json::to_string_pretty(&metrics).expect("serialisable");
    write_atomic(&dir.join("metrics.json"), text.as_bytes()).map_err(trainer::TrainError::from)?;
    eprintln!("wrote {}", dir.join("metrics.json").display());
    Ok(dir)
}

/// Where the numbers came from.
#[derive(Clone, Debug, Serialize)]
struct Provenance {
    config_file: String,
    git_revision: String,
    backend: String,
    precision: String,
    device: String,
    steps: usize,
    train_seconds: f64,
    train_tokens_per_s: f64,
    eval_seconds: f64,
    wall_seconds: f64,
    finished_unix: u64,
}

/// What a task's run produced.
struct Outcome {
    train: Option<TrainOutcome>,
    eval_seconds: f64,
    /// `("open_ended" | "summarization", metrics)`.
    section: (&'static str, Value),
    samples: Vec<Value>,
}

/// The device as burn prints it, with the matrix kernels of the CPU backends (gemm's
/// AVX-512 or AVX2 code), which change a CPU run's speed by a quarter.
fn device_description(execution: Execution, device: &Device) -> String {
    match execution {
        Execution::Host if scalegrad_ops::avx512_kernels() => {
            format!("{device:?}, gemm AVX-512 kernels")
        }
        Execution::Host => format!("{device:?}, gemm without AVX-512"),
        Execution::Device => format!("{device:?}"),
    }
}

/// Refuses to let `--restart` delete `dir` unless it is a run folder (it holds a run's
/// `config.toml`, `log.jsonl`, `metrics.json` or checkpoints) and lies inside `out`: a
/// folder the user made, or one a changed config points at by mistake, is never removed.
fn ensure_run_folder(out: &Path, dir: &Path) -> Result<()> {
    let refuse = |why: &str| {
        Err(RunError::RunFolder(format!(
            "--restart would delete {}, but {why}; remove it yourself if that is what you \
             want, or pick another run.name or --out",
            dir.display()
        )))
    };
    let (Ok(out), Ok(real)) = (out.canonicalize(), dir.canonicalize()) else {
        return refuse("its path cannot be resolved");
    };
    if real == out || !real.starts_with(&out) {
        return refuse(&format!(
            "it is not inside the output folder {}",
            out.display()
        ));
    }
    let marked = ["config.toml", "log.jsonl", "metrics.json"]
        .iter()
        .any(|f| dir.join(f).is_file())
        || !crate::checkpoint::list(dir)
            .map_err(trainer::TrainError::from)?
            .is_empty();
    if !marked {
        return refuse("it holds no run (no config.toml, log.jsonl, metrics.json or checkpoint)");
    }
    Ok(())
}

/// Runs an evaluation, turning a device allocation failure into an error that names
/// the evaluation keys to lower and says that the trained model is kept.
fn guard_evaluation<T>(
    config: &RunConfig,
    opts: &RunOptions,
    dir: &Path,
    work: impl FnOnce() -> T,
) -> Result<T> {
    let chunk = match config.run.experiment {
        Experiment::OpenEnded => " or evaluation.chunk_mib",
        Experiment::Summarization => "",
    };
    let kept = if config.run.eval_only {
        String::new()
    } else {
        format!(
            "; training is finished and its best model is kept in {}, so the rerun only \
             evaluates",
            best_dir(dir).display()
        )
    };
    let advice = format!(
        "lower evaluation.batch_size{chunk} in {} and rerun with --resume{kept}",
        opts.config_path.display()
    );
    crate::device_failure::guard("evaluation", &advice, work).map_err(RunError::OutOfMemory)
}

fn invalid(config_path: &Path, key: &str, message: String) -> RunError {
    RunError::Invalid {
        path: config_path.to_path_buf(),
        key: key.to_string(),
        message,
    }
}

fn dataset_source(config: &RunConfig) -> Result<DatasetSource> {
    let dataset: DatasetName = config.data.dataset.parse()?;
    Ok(DatasetSource {
        dataset,
        config: Some(config.data.config.clone()),
        data_dir: config.data.data_dir.clone(),
        revision: None,
    })
}

/// The tokenizer of a run: trained on the training split (cached next to the runs, so
/// every run of a preset shares it) or read from the model's folder.
fn resolve_tokenizer(
    config: &RunConfig,
    opts: &RunOptions,
    hub: &HubConfig,
    train_files: &[PathBuf],
) -> Result<(Tokenizer, PathBuf)> {
    let Some(train) = &config.model.tokenizer.train else {
        let source = config
            .model
            .tokenizer
            .source
            .clone()
            .unwrap_or_else(|| config.model.source.clone());
        let dir = resolve_model_dir(hub, &source, config.model.revision.as_deref())?;
        return Ok((load_tokenizer(&dir)?, dir));
    };
    let (kind, columns) = match config.run.experiment {
        Experiment::OpenEnded => (TokenizerKind::Bpe, vec!["text".to_string()]),
        Experiment::Summarization => (
            TokenizerKind::WordPiece,
            vec!["article".to_string(), "highlights".to_string()],
        ),
    };
    let training = TokenizerTraining {
        kind,
        vocab_size: train.vocab_size,
        min_frequency: train.min_frequency,
        columns,
    };
    Ok(trained_tokenizer(
        &training,
        train_files,
        &opts.out.join(config.run.experiment.name()),
    )?)
}

fn tokenize(
    files: &[PathBuf],
    tokenizer: &Tokenizer,
    spec: &TokenizeSpec,
    label: &str,
) -> Result<TokenizedSplit> {
    let (split, _) = tokenize_files(files, tokenizer, spec, &TokenizeOptions::default(), label)?;
    Ok(split)
}

fn open_ended_run(
    config: &RunConfig,
    opts: &RunOptions,
    dir: &Path,
    hub: &HubConfig,
) -> Result<Outcome> {
    let source = dataset_source(config)?;
    let train_files = source.split_files(&config.data.train_split, hub)?;
    let valid_files = source.split_files(&config.data.valid_split, hub)?;
    let test_files = source.split_files(&config.data.test_split, hub)?;
    let (tokenizer, tokenizer_dir) = resolve_tokenizer(config, opts, hub, &train_files.files)?;
    let eos = tokenizer.token_to_id(GPT2_EOS);

    let train_device = opts.device.clone().autodiff();
    train_device.seed(config.run.seed);
    let model = if config.model.source == "scratch" {
        let mut json = toml_to_json(config.model.scratch.as_ref().expect("validated"));
        json["vocab_size"] = json!(tokenizer.get_vocab_size(true));
        if let Some(eos) = eos {
            json["bos_token_id"] = json!(eos);
            json["eos_token_id"] = json!(eos);
        }
        let model_config = Gpt2Config::from_json_str(&json.to_string())
            .map_err(|e| invalid(&opts.config_path, "model.scratch", e.to_string()))?;
        model_config.init(&train_device)
    } else {
        let model_dir =
            resolve_model_dir(hub, &config.model.source, config.model.revision.as_deref())?;
        Gpt2::from_pretrained(&model_dir, &train_device)?.0
    }
    .with_execution(opts.execution)
    .with_precision(config.training.precision);
    let positions = model.config().n_positions;
    let block = config.data.block_size.expect("validated");
    for (key, needed) in [
        ("data.block_size", block),
        ("evaluation.window", config.evaluation.window),
        (
            "evaluation.prefix_len",
            config.evaluation.prefix_len + config.evaluation.continuation_len,
        ),
    ] {
        if needed > positions {
            return Err(invalid(
                &opts.config_path,
                key,
                format!("needs {needed} positions but the model has n_positions = {positions}"),
            ));
        }
    }

    let spec = TokenizeSpec::lm_text();
    let train_split = tokenize(&train_files.files, &tokenizer, &spec, &train_files.label)?;
    let valid_split = tokenize(&valid_files.files, &tokenizer, &spec, &valid_files.label)?;
    let test_split = tokenize(&test_files.files, &tokenizer, &spec, &test_files.label)?;
    fn column(s: &TokenizedSplit) -> &scalegrad_data::cache::TokenArray {
        &s.column("text").expect("tokenised text column").rows.tokens
    }
    let windows = WindowConfig::new(block).with_last(LastWindow::Drop);
    let train_windows = LmWindows::new(column(&train_split), windows)?;
    let valid_windows = LmWindows::new(column(&valid_split), windows)?;
    if train_windows.is_empty() || valid_windows.is_empty() {
        return Err(invalid(
            &opts.config_path,
            "data.block_size",
            format!("{block} tokens leave no full window in the training or validation split"),
        ));
    }
    let objective = config
        .objective
        .init(Some(scalegrad_data::IGNORE_INDEX))
        .map_err(|e| invalid(&opts.config_path, "objective", e.to_string()))?;
    let n_train = config
        .data
        .max_train_examples
        .map_or(train_windows.len(), |m| m.min(train_windows.len()));
    let sampler = BatchSampler::new(
        n_train,
        SamplerConfig::shuffled(config.training.batch_size, config.run.seed),
    )?;
    let task = LmTask {
        train: train_windows,
        valid: valid_windows,
        sampler,
        objective: objective.clone(),
        batch_size: config.training.batch_size,
        max_valid: config.data.max_valid_examples,
        tokenizer_dir: tokenizer_dir.clone(),
        epoch_cache: RefCell::new(None),
    };

    let (train, model) = train_unless_eval_only(
        &task,
        model,
        train_spec(opts, config, dir, train_device.clone(), objective),
        |best| {
            Ok(Gpt2::from_pretrained(best, &opts.device)?
                .0
                .with_execution(opts.execution)
                .with_precision(config.training.precision))
        },
    )?;

    let started = Instant::now();
    let e = &config.evaluation;
    let (metrics, samples) = guard_evaluation(config, opts, dir, || {
        open_ended::evaluate(
            &model,
            &OpenEndedEval {
                tokens: column(&test_split),
                window: e.window,
                max_windows: e.max_windows,
                prefix_len: e.prefix_len,
                continuation_len: e.continuation_len,
                max_continuations: e.max_continuations,
                decoding: &e.decoding,
                batch_size: e.batch_size,
                seed: config.run.seed,
                tokenizer: &tokenizer,
                samples: 5,
                chunk_bytes: e.chunk_mib << 20,
            },
        )
    })?
    .map_err(RunError::Eval)?;
    Ok(Outcome {
        train,
        eval_seconds: started.elapsed().as_secs_f64(),
        section: (
            "open_ended",
            serde_json::to_value(&metrics).expect("serialisable"),
        ),
        samples: samples
            .iter()
            .map(|s| serde_json::to_value(s).expect("serialisable"))
            .collect(),
    })
}

fn summarization_run(
    config: &RunConfig,
    opts: &RunOptions,
    dir: &Path,
    hub: &HubConfig,
) -> Result<Outcome> {
    let source = dataset_source(config)?;
    let train_files = source.split_files(&config.data.train_split, hub)?;
    let valid_files = source.split_files(&config.data.valid_split, hub)?;
    let test_files = source.split_files(&config.data.test_split, hub)?;
    let (tokenizer, tokenizer_dir) = resolve_tokenizer(config, opts, hub, &train_files.files)?;
    let ids = bert_special_ids(&tokenizer)?;

    let train_device = opts.device.clone().autodiff();
    train_device.seed(config.run.seed);
    let (model, model_config, generation) = if config.model.source == "scratch" {
        let side = toml_to_json(config.model.scratch.as_ref().expect("validated"));
        let ids = ScratchIds {
            pad: ids.pad,
            cls: ids.cls,
            sep: ids.sep,
        };
        let (model_config, generation) = scratch_config(&side, tokenizer.get_vocab_size(true), ids)
            .map_err(|e| invalid(&opts.config_path, "model.scratch", e.to_string()))?;
        (model_config.init(&train_device), model_config, generation)
    } else {
        let model_dir =
            resolve_model_dir(hub, &config.model.source, config.model.revision.as_deref())?;
        let loaded = scalegrad_bert2bert::load_pretrained(&model_dir, &train_device)?;
        (loaded.model, loaded.config, loaded.generation)
    };
    let model = model
        .with_execution(opts.execution)
        .with_precision(config.training.precision);
    let max_source = config.data.max_source_length.expect("validated");
    let max_target = config.data.max_target_length.expect("validated");
    if max_source > model_config.encoder.max_position_embeddings {
        return Err(invalid(
            &opts.config_path,
            "data.max_source_length",
            format!(
                "{max_source} exceeds the encoder's max_position_embeddings = {}",
                model_config.encoder.max_position_embeddings
            ),
        ));
    }
    if max_target > model_config.decoder.max_position_embeddings {
        return Err(invalid(
            &opts.config_path,
            "data.max_target_length",
            format!(
                "{max_target} exceeds the decoder's max_position_embeddings = {}",
                model_config.decoder.max_position_embeddings
            ),
        ));
    }

    // The evaluation's decoding settings (the checkpoint's with `[evaluation]`'s
    // overrides), checked before any training.
    let ev = &config.evaluation;
    let generation = generation.resolve()?.with_overrides(&GenerationOverrides {
        num_beams: ev.num_beams,
        max_length: ev.max_length,
        min_length: ev.min_length,
        no_repeat_ngram_size: ev.no_repeat_ngram_size,
        length_penalty: ev.length_penalty,
        early_stopping: None,
    });
    generation
        .validate()
        .map_err(|err| invalid(&opts.config_path, "evaluation", err.to_string()))?;
    generation
        .check_positions(model_config.decoder.max_position_embeddings)
        .map_err(|err| invalid(&opts.config_path, "evaluation.max_length", err.to_string()))?;

    let shaping = SummarizationConfig {
        max_source_len: max_source,
        max_target_len: max_target,
        ..SummarizationConfig::bert(&ids)
    };
    shaping.validate()?;
    let spec = shaping.tokenize_spec();
    let train_split = tokenize(&train_files.files, &tokenizer, &spec, &train_files.label)?;
    let valid_split = tokenize(&valid_files.files, &tokenizer, &spec, &valid_files.label)?;
    let test_split = tokenize(&test_files.files, &tokenizer, &spec, &test_files.label)?;
    let train_set = SummarizationSet::new(&train_split, shaping)?;
    let valid_set = SummarizationSet::new(&valid_split, shaping)?;
    let test_set = SummarizationSet::new(&test_split, shaping)?;
    let n_train = config
        .data
        .max_train_examples
        .map_or(train_set.len(), |m| m.min(train_set.len()));
    let lengths: Vec<usize> = (0..n_train).map(|i| train_set.source_len(i)).collect();
    let sampler = BatchSampler::with_lengths(
        lengths,
        SamplerConfig {
            bucket_batches: Some(50),
            ..SamplerConfig::shuffled(config.training.batch_size, config.run.seed)
        },
    )?;
    let objective = config
        .objective
        .init(Some(scalegrad_data::IGNORE_INDEX))
        .map_err(|e| invalid(&opts.config_path, "objective", e.to_string()))?;
    let task = SummarizationTask {
        train: train_set,
        valid: valid_set,
        sampler,
        objective: objective.clone(),
        batch_size: config.training.batch_size,
        max_valid: config.data.max_valid_examples,
        pad_id: ids.pad,
        model_config: model_config.clone(),
        tokenizer_dir: tokenizer_dir.clone(),
        epoch_cache: RefCell::new(None),
    };

    let (train, model) = train_unless_eval_only(
        &task,
        model,
        train_spec(opts, config, dir, train_device.clone(), objective),
        |best| {
            Ok(scalegrad_bert2bert::load_pretrained(best, &opts.device)?
                .model
                .with_execution(opts.execution)
                .with_precision(config.training.precision))
        },
    )?;

    let e = &config.evaluation;
    let raw = read_columns(&test_files.files, &["article", "highlights", "id"])?;
    let started = Instant::now();
    let (metrics, samples) = guard_evaluation(config, opts, dir, || {
        summarization::evaluate(
            &model,
            &SummarizationEval {
                test: &test_set,
                articles: &raw[0],
                highlights: &raw[1],
                ids: &raw[2],
                max_examples: e.max_examples,
                generation: &generation,
                batch_size: e.batch_size,
                pad_id: ids.pad,
                tokenizer: &tokenizer,
                stemmer: e.rouge_stemmer,
                bootstrap: BootstrapConfig {
                    n_samples: e.bootstrap_samples,
                    ..BootstrapConfig::default()
                },
                samples: 5,
            },
        )
    })?
    .map_err(RunError::Eval)?;
    Ok(Outcome {
        train,
        eval_seconds: started.elapsed().as_secs_f64(),
        section: (
            "summarization",
            serde_json::to_value(&metrics).expect("serialisable"),
        ),
        samples: samples
            .iter()
            .map(|s| serde_json::to_value(s).expect("serialisable"))
            .collect(),
    })
}

fn toml_to_json(table: &toml::Table) -> Value {
    serde_json::to_value(table).expect("TOML values convert to JSON")
}
