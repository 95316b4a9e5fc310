//! What a finished run leaves: `samples.jsonl`, then `metrics.json` (typed by
//! `scalegrad-results`, which the report reads with the same types).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use burn::tensor::Device;
use scalegrad_loss::ObjectiveConfig;
use scalegrad_ops::Execution;
use scalegrad_results::{
    CheckpointRecord, CheckpointSource, ContinuationSample, ObjectiveRecord, OpenEndedMetrics,
    Provenance, RunMetrics, SummarizationMetrics, SummarySample, to_jsonl,
};

use super::{Result, Run, io_err};
use crate::trainer::TrainOutcome;

/// An experiment's metrics and the samples kept for the report.
pub(super) enum Results {
    /// GPT-2 on WikiText.
    OpenEnded(OpenEndedMetrics, Vec<ContinuationSample>),
    /// BERT2BERT on CNN/DailyMail.
    Summarization(Box<SummarizationMetrics>, Vec<SummarySample>),
}

/// What an experiment's run produced.
pub(super) struct Outcome {
    /// The training outcome (`None` for an evaluation-only run).
    pub train: Option<TrainOutcome>,
    /// Seconds of the test evaluation.
    pub eval_seconds: f64,
    pub results: Results,
}

/// The objective as `metrics.json` records it.
fn objective_record(objective: &ObjectiveConfig) -> ObjectiveRecord {
    match *objective {
        ObjectiveConfig::Mle => ObjectiveRecord::Mle,
        ObjectiveConfig::ScaleGrad { gamma } => ObjectiveRecord::ScaleGrad { gamma },
        ObjectiveConfig::Unlikelihood { alpha } => ObjectiveRecord::Unlikelihood { alpha },
    }
}

/// Writes `samples.jsonl`, then `metrics.json` (last: it marks the run finished).
pub(super) fn write(run: &Run, outcome: Outcome, started: Instant) -> Result<()> {
    let (config, opts) = (run.config, run.opts);
    let trained = outcome.train.as_ref();
    let provenance = Provenance {
        config_file: opts.config_path.display().to_string(),
        git_revision: opts.code_revision.clone(),
        backend: opts.backend.clone(),
        precision: config.training.precision.name().to_string(),
        device: device_description(opts.execution, &opts.device),
        adapter: opts.adapter.clone(),
        steps: trained.map_or(0, |t| t.state.step),
        train_seconds: trained.map_or(0.0, |t| t.state.train_seconds),
        train_tokens_per_s: trained.map_or(0.0, |t| t.tokens_per_s),
        eval_seconds: outcome.eval_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        finished_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let checkpoint = match trained {
        Some(t) if !config.run.eval_only => CheckpointRecord {
            source: CheckpointSource::Best,
            step: t.state.best.as_ref().map_or(0, |b| b.step),
            valid_nll: t.state.best.as_ref().map(|b| b.value),
        },
        _ => CheckpointRecord {
            source: CheckpointSource::Initial,
            step: 0,
            valid_nll: None,
        },
    };
    let mut metrics = RunMetrics {
        experiment: config.run.experiment.name().to_string(),
        run: config.run.name.clone(),
        description: config.run.description.clone(),
        objective: objective_record(&config.objective),
        checkpoint,
        provenance,
        open_ended: None,
        summarization: None,
    };
    let samples = match outcome.results {
        Results::OpenEnded(section, samples) => {
            metrics.open_ended = Some(section);
            to_jsonl(&samples)
        }
        Results::Summarization(section, samples) => {
            metrics.summarization = Some(*section);
            to_jsonl(&samples)
        }
    };
    for (name, text) in [
        ("samples.jsonl", samples),
        ("metrics.json", metrics.to_json()),
    ] {
        let path = run.dir.join(name);
        scalegrad_fs::write_atomic(&path, text.as_bytes()).map_err(io_err(&path))?;
    }
    eprintln!("wrote {}", run.dir.join("metrics.json").display());
    Ok(())
}

/// The device as burn prints it, with the matrix kernels of the CPU backends (gemm's
/// AVX-512 or AVX2 code), which change a CPU run's speed by a quarter.
fn device_description(execution: Execution, device: &Device) -> String {
    match execution {
        Execution::Host if scalegrad_ops::avx512_kernels() => {
            format!("{device:?}, gemm AVX-512 kernels")
        }
        Execution::Host => format!("{device:?}, gemm without AVX-512"),
        Execution::Device | Execution::Fused => format!("{device:?}"),
    }
}
