//! The checks of a config that need no model: every numeric key against its range
//! ([`RunConfig::key_ranges`]) and the rules between keys ([`RunConfig::validate`]).

use std::path::Path;

use scalegrad_loss::ObjectiveConfig;

use super::{ConfigError, DecodingSpec, Experiment, RunConfig, is_folder_name};

/// The allowed values of a numeric key ([`RunConfig::key_ranges`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// Integers `lo..=hi`.
    Int(u64, u64),
    /// Reals in `lo..=hi` (`open_low`: `lo` itself excluded; `open_high`: `hi` excluded).
    Real {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
        /// Whether `lo` itself is excluded.
        open_low: bool,
        /// Whether `hi` itself is excluded.
        open_high: bool,
    },
}

fn real(lo: f64, hi: f64) -> Range {
    Range::Real {
        lo,
        hi,
        open_low: false,
        open_high: false,
    }
}

/// `(lo, hi]`: positive reals up to `hi`.
fn positive(hi: f64) -> Range {
    Range::Real {
        lo: 0.0,
        hi,
        open_low: true,
        open_high: false,
    }
}

/// A value of one key: `None` for an optional key left out.
#[derive(Clone, Copy)]
enum Value {
    Int(Option<u64>),
    Real(Option<f64>),
}

fn int(v: usize) -> Value {
    Value::Int(Some(v as u64))
}

fn opt_int(v: Option<usize>) -> Value {
    Value::Int(v.map(|v| v as u64))
}

/// Largest count or interval accepted (steps, examples, windows): far beyond any
/// real run, small enough to catch a typo of a few extra digits.
const MAX_COUNT: u64 = 1_000_000_000_000;
/// Largest length in tokens accepted (block, window, source, summary).
const MAX_TOKENS: u64 = 1 << 20;
/// Largest batch, beam count or micro-batch count accepted.
const MAX_BATCH: u64 = 1 << 16;

impl RunConfig {
    /// Every number of the config with its allowed range, section by section: counts,
    /// lengths, intervals, batch sizes, beams, probabilities and rates. What a table-driven
    /// test walks through (`tests/suite/configs.rs`).
    fn ranges(&self) -> Vec<(&'static str, Value, Range)> {
        let (d, o, t, e) = (
            &self.data,
            &self.optimizer,
            &self.training,
            &self.evaluation,
        );
        let tokens = |lo| Range::Int(lo, MAX_TOKENS);
        let counts = Range::Int(1, MAX_COUNT);
        let steps_lo = u64::from(!self.run.eval_only);
        let mut table = vec![
            (
                "model.tokenizer.train.vocab_size",
                opt_int(self.model.tokenizer.train.as_ref().map(|t| t.vocab_size)),
                Range::Int(64, 1 << 22),
            ),
            (
                "model.tokenizer.train.min_frequency",
                Value::Int(self.model.tokenizer.train.as_ref().map(|t| t.min_frequency)),
                Range::Int(1, MAX_COUNT),
            ),
            ("data.block_size", opt_int(d.block_size), tokens(2)),
            (
                "data.max_source_length",
                opt_int(d.max_source_length),
                tokens(3),
            ),
            (
                "data.max_target_length",
                opt_int(d.max_target_length),
                tokens(3),
            ),
            (
                "data.max_train_examples",
                opt_int(d.max_train_examples),
                counts,
            ),
            (
                "data.max_valid_examples",
                opt_int(d.max_valid_examples),
                Range::Int(1, MAX_COUNT),
            ),
            ("optimizer.lr", Value::Real(Some(o.lr)), positive(10.0)),
            (
                "optimizer.weight_decay",
                Value::Real(Some(o.weight_decay)),
                real(0.0, 10.0),
            ),
            (
                "optimizer.beta1",
                Value::Real(Some(o.beta1)),
                Range::Real {
                    lo: 0.0,
                    hi: 1.0,
                    open_low: false,
                    open_high: true,
                },
            ),
            (
                "optimizer.beta2",
                Value::Real(Some(o.beta2)),
                Range::Real {
                    lo: 0.0,
                    hi: 1.0,
                    open_low: false,
                    open_high: true,
                },
            ),
            ("optimizer.eps", Value::Real(Some(o.eps)), positive(1.0)),
            (
                "optimizer.warmup_steps",
                int(o.warmup_steps),
                Range::Int(0, MAX_COUNT),
            ),
            (
                "optimizer.max_grad_norm",
                Value::Real(o.max_grad_norm),
                positive(1e6),
            ),
            (
                "optimizer.grad_accumulation",
                int(o.grad_accumulation),
                Range::Int(1, MAX_BATCH),
            ),
            (
                "training.steps",
                int(t.steps),
                Range::Int(steps_lo, MAX_COUNT),
            ),
            (
                "training.batch_size",
                int(t.batch_size),
                Range::Int(1, MAX_BATCH),
            ),
            (
                "training.eval_every",
                int(t.eval_every),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "training.log_every",
                int(t.log_every),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "training.checkpoint_every",
                opt_int(t.checkpoint_every),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "training.chunk_mib",
                int(t.chunk_mib),
                Range::Int(1, 1 << 20),
            ),
            ("evaluation.window", int(e.window), tokens(2)),
            (
                "evaluation.max_windows",
                opt_int(e.max_windows),
                Range::Int(1, MAX_COUNT),
            ),
            ("evaluation.prefix_len", int(e.prefix_len), tokens(1)),
            (
                "evaluation.continuation_len",
                int(e.continuation_len),
                tokens(1),
            ),
            (
                "evaluation.max_continuations",
                opt_int(e.max_continuations),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "evaluation.max_examples",
                opt_int(e.max_examples),
                Range::Int(1, MAX_COUNT),
            ),
            (
                "evaluation.num_beams",
                opt_int(e.num_beams),
                Range::Int(1, 256),
            ),
            ("evaluation.max_length", opt_int(e.max_length), tokens(2)),
            ("evaluation.min_length", opt_int(e.min_length), tokens(0)),
            (
                "evaluation.no_repeat_ngram_size",
                opt_int(e.no_repeat_ngram_size),
                Range::Int(0, 1024),
            ),
            (
                "evaluation.length_penalty",
                Value::Real(e.length_penalty),
                real(-100.0, 100.0),
            ),
            (
                "evaluation.batch_size",
                int(e.batch_size),
                Range::Int(1, MAX_BATCH),
            ),
            (
                "evaluation.chunk_mib",
                int(e.chunk_mib),
                Range::Int(1, 1 << 20),
            ),
            (
                "evaluation.bootstrap_samples",
                int(e.bootstrap_samples),
                Range::Int(1, 1_000_000),
            ),
        ];
        match self.objective {
            ObjectiveConfig::ScaleGrad { gamma } => {
                table.push(("objective.gamma", Value::Real(Some(gamma)), positive(1.0)));
            }
            ObjectiveConfig::Unlikelihood { alpha } => {
                table.push((
                    "objective.alpha",
                    Value::Real(Some(alpha)),
                    real(0.0, 100.0),
                ));
            }
            ObjectiveConfig::Mle => {}
        }
        for d in &e.decoding {
            match *d {
                DecodingSpec::TopK { k } => {
                    table.push(("evaluation.decoding", int(k), Range::Int(1, 1 << 22)));
                }
                DecodingSpec::TopP { p } => {
                    table.push(("evaluation.decoding", Value::Real(Some(p)), positive(1.0)));
                }
                DecodingSpec::Greedy => {}
            }
        }
        table
    }

    /// Every numeric key this config sets or could set, with its allowed range (keys of
    /// the objective and of `evaluation.decoding` as the config chooses them).
    pub fn key_ranges(&self) -> Vec<(&'static str, Range)> {
        self.ranges().into_iter().map(|(k, _, r)| (k, r)).collect()
    }

    /// Checks every value of [`RunConfig::ranges`]: one error naming the first key out of
    /// its range, with the range.
    fn check_ranges(&self, path: &Path) -> Result<(), ConfigError> {
        for (key, value, range) in self.ranges() {
            let problem = match (value, &range) {
                (Value::Int(Some(v)), Range::Int(lo, hi)) if v < *lo || v > *hi => {
                    Some(format!("{v} is outside {lo}..={hi}"))
                }
                (
                    Value::Real(Some(v)),
                    Range::Real {
                        lo,
                        hi,
                        open_low,
                        open_high,
                    },
                ) => {
                    let above = if *open_low { v > *lo } else { v >= *lo };
                    let below = if *open_high { v < *hi } else { v <= *hi };
                    (!(v.is_finite() && above && below)).then(|| {
                        format!(
                            "{v} is outside {}{lo}, {hi}{}",
                            if *open_low { "(" } else { "[" },
                            if *open_high { ")" } else { "]" }
                        )
                    })
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key: key.to_string(),
                    message: format!("out of range: {problem}"),
                });
            }
        }
        Ok(())
    }

    /// Checks every value that does not need the model: ranges, sizes and the presence of
    /// the sizes the experiment needs.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if let Err(err) = self.objective.validate() {
            let key = match self.objective {
                ObjectiveConfig::ScaleGrad { .. } => "objective.gamma",
                ObjectiveConfig::Unlikelihood { .. } => "objective.alpha",
                ObjectiveConfig::Mle => "objective",
            };
            return Err(invalid(key, err.to_string()));
        }
        if !is_folder_name(&self.run.name) {
            return Err(invalid(
                "run.name",
                format!(
                    "{:?} must be one folder name: letters, digits, '-', '_' and dots inside \
                     the name (not first or last, so never \".\" or \"..\"); it names the \
                     run's folder, which --restart deletes",
                    self.run.name
                ),
            ));
        }
        match self.data.dataset.as_str() {
            "wikitext" | "cnn_dailymail" => {}
            other => {
                return Err(invalid(
                    "data.dataset",
                    format!(
                        "unknown dataset {other:?}; expected \"wikitext\" or \"cnn_dailymail\""
                    ),
                ));
            }
        }
        let expected_dataset = match self.run.experiment {
            Experiment::OpenEnded => "wikitext",
            Experiment::Summarization => "cnn_dailymail",
        };
        if self.data.dataset != expected_dataset {
            return Err(invalid(
                "data.dataset",
                format!(
                    "the {} experiment uses {expected_dataset:?}, not {:?}",
                    self.run.experiment.name(),
                    self.data.dataset
                ),
            ));
        }
        match self.run.experiment {
            Experiment::OpenEnded => match self.data.block_size {
                None => {
                    return Err(invalid(
                        "data.block_size",
                        "required for open-ended runs".into(),
                    ));
                }
                Some(0) | Some(1) => {
                    return Err(invalid(
                        "data.block_size",
                        "must be at least 2 tokens".into(),
                    ));
                }
                Some(_) => {}
            },
            Experiment::Summarization => {
                for (key, value) in [
                    ("data.max_source_length", self.data.max_source_length),
                    ("data.max_target_length", self.data.max_target_length),
                ] {
                    match value {
                        None => return Err(invalid(key, "required for summarization runs".into())),
                        Some(n) if n < 3 => {
                            return Err(invalid(key, format!("{n} leaves no room for text")));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        self.check_ranges(path)?;
        let (o, t, e) = (&self.optimizer, &self.training, &self.evaluation);
        if o.warmup_steps > t.steps {
            return Err(invalid(
                "optimizer.warmup_steps",
                format!("{} exceeds training.steps = {}", o.warmup_steps, t.steps),
            ));
        }
        if let (Some(min), Some(max)) = (e.min_length, e.max_length)
            && min > max
        {
            return Err(invalid(
                "evaluation.min_length",
                format!("{min} exceeds evaluation.max_length = {max}"),
            ));
        }
        if e.decoding.is_empty() {
            return Err(invalid(
                "evaluation.decoding",
                "list at least one strategy".into(),
            ));
        }
        if self.model.source == "scratch" && self.model.scratch.is_none() {
            return Err(invalid(
                "model.scratch",
                "source = \"scratch\" needs a [model.scratch] table with the architecture".into(),
            ));
        }
        Ok(())
    }
}
