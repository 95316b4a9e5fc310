//! The steps both experiments take the same way: data (split files and tokenizer),
//! the objective, training (unless the run only evaluates) and a guarded, timed
//! evaluation.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use scalegrad_data::hub::resolve_model_dir;
use scalegrad_data::source::SplitFiles;
use scalegrad_data::tokenizer::load_tokenizer;
use scalegrad_data::trained::{TokenizerKind, TokenizerTraining, trained_tokenizer};
use scalegrad_data::{
    DatasetName, DatasetSource, TokenizeOptions, TokenizeSpec, TokenizedSplit, tokenize_files,
};
use scalegrad_loss::Objective;
use tokenizers::Tokenizer;

use super::{Result, Run, RunError};
use crate::config::Experiment;
use crate::device_failure::LOST_IN_A_RUN;
use crate::trainer::{self, TrainOutcome, TrainSpec, best_dir};

/// A config value that conflicts with the model, the data or the device.
pub(super) fn invalid(config_path: &Path, key: &str, message: String) -> RunError {
    RunError::Invalid {
        path: config_path.to_path_buf(),
        key: key.to_string(),
        message,
    }
}

/// The data of a run: the parquet files of its three splits and its tokenizer.
pub(super) struct RunData {
    /// Training, validation and test files.
    pub splits: [SplitFiles; 3],
    pub tokenizer: Tokenizer,
    /// The folder whose tokenizer files are copied next to saved models.
    pub tokenizer_dir: PathBuf,
}

impl RunData {
    /// Tokenises the three splits with `spec` (cached by `scalegrad-data`).
    pub fn tokenize(&self, spec: &TokenizeSpec) -> Result<[TokenizedSplit; 3]> {
        let tokenize = |split: &SplitFiles| {
            let options = TokenizeOptions::default();
            tokenize_files(&split.files, &self.tokenizer, spec, &options, &split.label)
                .map(|(tokenized, _)| tokenized)
        };
        // In order, stopping at the first failure.
        let [train, valid, test] = &self.splits;
        Ok([tokenize(train)?, tokenize(valid)?, tokenize(test)?])
    }
}

/// What evaluation produced and how long it took.
pub(super) struct Evaluated<T> {
    pub value: T,
    pub seconds: f64,
}

impl Run<'_> {
    /// A config value that conflicts with the model, the data or the device.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> RunError {
        invalid(&self.opts.config_path, key, message.into())
    }

    /// The split files of the config's dataset and the run's tokenizer: trained on the
    /// training split (cached next to the runs, so every run of a preset shares it) or
    /// read from the model's folder.
    pub fn data(&self) -> Result<RunData> {
        let config = self.config;
        let source = DatasetSource {
            dataset: config.data.dataset.parse::<DatasetName>()?,
            config: Some(config.data.config.clone()),
            data_dir: config.data.data_dir.clone(),
            revision: None,
        };
        let splits = [
            source.split_files(&config.data.train_split, &self.hub)?,
            source.split_files(&config.data.valid_split, &self.hub)?,
            source.split_files(&config.data.test_split, &self.hub)?,
        ];
        let Some(train) = &config.model.tokenizer.train else {
            let source = config.model.tokenizer.source.as_ref();
            let dir = self.model_dir(source.unwrap_or(&config.model.source))?;
            return Ok(RunData {
                splits,
                tokenizer: load_tokenizer(&dir)?,
                tokenizer_dir: dir,
            });
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
        let (tokenizer, tokenizer_dir) = trained_tokenizer(
            &training,
            &splits[0].files,
            &self.opts.out.join(config.run.experiment.name()),
        )?;
        Ok(RunData {
            splits,
            tokenizer,
            tokenizer_dir,
        })
    }

    /// The local folder of a model `source` (a folder or a hub id at the config's
    /// revision).
    pub fn model_dir(&self, source: &str) -> Result<PathBuf> {
        Ok(resolve_model_dir(
            &self.hub,
            source,
            self.config.model.revision.as_deref(),
        )?)
    }

    /// The device training runs on (with autodiff), seeded with the run's seed.
    pub fn train_device(&self) -> Device {
        let device = self.opts.device.clone().autodiff();
        device.seed(self.config.run.seed);
        device
    }

    /// The config's objective, ignoring padded targets.
    pub fn objective(&self) -> Result<Objective> {
        self.config
            .objective
            .init(Some(scalegrad_data::IGNORE_INDEX))
            .map_err(|e| self.invalid("objective", e.to_string()))
    }

    /// How many of `available` training examples the run uses (`data.max_train_examples`).
    pub fn train_examples(&self, available: usize) -> usize {
        self.config
            .data
            .max_train_examples
            .map_or(available, |m| m.min(available))
    }

    /// The model to evaluate: `model` itself (in evaluation mode) for an `eval_only` run,
    /// otherwise the best checkpoint of training it on `task`, read back with `load_best`
    /// on the evaluation device. Returns the training outcome too. A device allocation
    /// failure becomes an error naming the keys to lower.
    pub fn train<T: trainer::Task>(
        &self,
        task: &T,
        model: T::Model,
        train_device: Device,
        objective: Objective,
        load_best: impl FnOnce(&Path) -> Result<T::Model>,
    ) -> Result<(Option<TrainOutcome>, T::Model)> {
        if self.config.run.eval_only {
            return Ok((None, model.valid()));
        }
        let spec = TrainSpec {
            config: self.config,
            run_dir: self.dir,
            device: train_device,
            objective,
            max_steps: self.opts.max_steps,
            resume: self.opts.resume,
            execution: self.opts.execution,
        };
        let advice = format!(
            "lower training.chunk_mib and rerun with --resume (the checkpoints in {} are \
             intact), or lower training.batch_size, raise optimizer.grad_accumulation to \
             keep the effective batch and start over with --restart (a checkpoint continues \
             only under the batch it was made with)",
            self.dir.display()
        );
        let outcome =
            crate::device_failure::guard("training", &advice, || trainer::train(task, model, spec))
                .map_err(RunError::OutOfMemory)??;
        Ok((Some(outcome), load_best(&best_dir(self.dir))?))
    }

    /// Runs and times an evaluation, turning a device allocation failure into an error
    /// that names the evaluation keys to lower and says that the trained model is kept.
    pub fn evaluate<T>(
        &self,
        work: impl FnOnce() -> std::result::Result<T, String>,
    ) -> Result<Evaluated<T>> {
        let chunk = match self.config.run.experiment {
            Experiment::OpenEnded => " or evaluation.chunk_mib",
            Experiment::Summarization => "",
        };
        let kept = if self.config.run.eval_only {
            String::new()
        } else {
            format!(
                "; training is finished and its best model is kept in {}, so the rerun only \
                 evaluates",
                best_dir(self.dir).display()
            )
        };
        let advice = format!(
            "lower evaluation.batch_size{chunk} in {} and rerun with --resume{kept}",
            self.opts.config_path.display()
        );
        let started = Instant::now();
        // A failure can come as a panic inside burn or as an error read back from the
        // device (GPT-2's decoding reads with `try_into_data`): the same message for both.
        let value = crate::device_failure::guard("evaluation", &advice, work)
            .map_err(RunError::OutOfMemory)?
            .map_err(|e| {
                crate::device_failure::explain("evaluation", &advice, LOST_IN_A_RUN, &e)
                    .map_or(RunError::Eval(e), RunError::OutOfMemory)
            })?;
        Ok(Evaluated {
            value,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A `[model.scratch]` TOML table as the JSON of a Hugging Face `config.json`.
pub(super) fn toml_to_json(table: &toml::Table) -> serde_json::Value {
    serde_json::to_value(table).expect("TOML values convert to JSON")
}
