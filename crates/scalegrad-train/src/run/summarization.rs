//! The summarisation experiment's run: a BERT2BERT (from scratch or a checkpoint)
//! trained on article/highlights pairs, then summarising the test split with the
//! checkpoint's generation settings and `[evaluation]`'s overrides.

use burn::tensor::Device;
use scalegrad_bert2bert::{
    Bert2Bert, Bert2BertConfig, GenerationConfig, GenerationOverrides, GenerationSettings,
    ScratchIds, scratch_config,
};
use scalegrad_data::reader::read_columns;
use scalegrad_data::tokenizer::{BertSpecialIds, bert_special_ids};
use scalegrad_data::{BatchSampler, SamplerConfig, SummarizationConfig, SummarizationSet};
use scalegrad_metrics::BootstrapConfig;

use super::results::{Outcome, Results};
use super::steps::{RunData, toml_to_json};
use super::{Result, Run};
use crate::summarization::{SummarizationEval, SummarizationTask, evaluate};
use crate::task::TaskData;

/// Data, model, training and evaluation of a summarisation run.
pub(super) fn run(run: &Run) -> Result<Outcome> {
    let data = run.data()?;
    let ids = bert_special_ids(&data.tokenizer)?;
    let train_device = run.train_device();
    let (model, model_config, generation) = model(run, &data, &ids, &train_device)?;
    let shaping = shaping(run, &model_config, &ids)?;
    // The evaluation's decoding settings, checked before any training.
    let generation = generation_config(run, generation, &model_config)?;
    let [train, valid, test] = data.tokenize(&shaping.tokenize_spec())?;
    let [train, valid, test] =
        [&train, &valid, &test].map(|split| SummarizationSet::new(split, shaping));
    let (train, valid, test) = (train?, valid?, test?);
    let objective = run.objective()?;
    let n_train = run.train_examples(train.len());
    let lengths: Vec<usize> = (0..n_train).map(|i| train.source_len(i)).collect();
    let config = run.config;
    let task = SummarizationTask {
        data: TaskData {
            sampler: BatchSampler::with_lengths(
                lengths,
                SamplerConfig {
                    bucket_batches: Some(50),
                    ..SamplerConfig::shuffled(config.training.batch_size, config.run.seed)
                },
            )?,
            train,
            valid,
            objective: objective.clone(),
            batch_size: config.training.batch_size,
            max_valid: config.data.max_valid_examples,
            tokenizer_dir: data.tokenizer_dir.clone(),
        },
        pad_id: ids.pad,
        model_config,
    };
    let (trained, model) = run.train(&task, model, train_device, objective, |best| {
        Ok(
            scalegrad_bert2bert::load_pretrained(best, &run.opts.device)?
                .model
                .with_execution(run.opts.execution)
                .with_precision(config.training.precision),
        )
    })?;

    let e = &config.evaluation;
    let raw = read_columns(&data.splits[2].files, &["article", "highlights", "id"])?;
    let evaluated = run.evaluate(|| {
        evaluate(
            &model,
            &SummarizationEval {
                test: &test,
                articles: &raw[0],
                highlights: &raw[1],
                ids: &raw[2],
                max_examples: e.max_examples,
                generation: &generation,
                batch_size: e.batch_size,
                pad_id: ids.pad,
                tokenizer: &data.tokenizer,
                stemmer: e.rouge_stemmer,
                bootstrap: BootstrapConfig {
                    n_samples: e.bootstrap_samples,
                    ..BootstrapConfig::default()
                },
                samples: 5,
            },
        )
    })?;
    let (metrics, samples) = evaluated.value;
    Ok(Outcome {
        train: trained,
        eval_seconds: evaluated.seconds,
        results: Results::Summarization(Box::new(metrics), samples),
    })
}

/// The model to train, with its config and generation settings: the config's scratch
/// architecture (sized to the tokenizer, with its special tokens) or a checkpoint, on
/// `device`.
fn model(
    run: &Run,
    data: &RunData,
    ids: &BertSpecialIds,
    device: &Device,
) -> Result<(Bert2Bert, Bert2BertConfig, GenerationSettings)> {
    let config = run.config;
    let (model, model_config, generation) = if config.model.source == "scratch" {
        let side = toml_to_json(config.model.scratch.as_ref().expect("validated"));
        let ids = ScratchIds {
            pad: ids.pad,
            cls: ids.cls,
            sep: ids.sep,
        };
        let (model_config, generation) =
            scratch_config(&side, data.tokenizer.get_vocab_size(true), ids)
                .map_err(|e| run.invalid("model.scratch", e.to_string()))?;
        (model_config.init(device), model_config, generation)
    } else {
        let loaded =
            scalegrad_bert2bert::load_pretrained(&run.model_dir(&config.model.source)?, device)?;
        (loaded.model, loaded.config, loaded.generation)
    };
    let model = model
        .with_execution(run.opts.execution)
        .with_precision(config.training.precision);
    Ok((model, model_config, generation))
}

/// How examples are cut and shaped: the config's source and target lengths, which must
/// fit the encoder's and the decoder's positions.
fn shaping(
    run: &Run,
    model: &Bert2BertConfig,
    ids: &BertSpecialIds,
) -> Result<SummarizationConfig> {
    let data = &run.config.data;
    let max_source = data.max_source_length.expect("validated");
    let max_target = data.max_target_length.expect("validated");
    for (key, length, side, positions) in [
        (
            "data.max_source_length",
            max_source,
            "encoder",
            model.encoder.max_position_embeddings,
        ),
        (
            "data.max_target_length",
            max_target,
            "decoder",
            model.decoder.max_position_embeddings,
        ),
    ] {
        if length > positions {
            return Err(run.invalid(
                key,
                format!("{length} exceeds the {side}'s max_position_embeddings = {positions}"),
            ));
        }
    }
    let shaping = SummarizationConfig {
        max_source_len: max_source,
        max_target_len: max_target,
        ..SummarizationConfig::bert(ids)
    };
    shaping.validate()?;
    Ok(shaping)
}

/// The checkpoint's generation settings with `[evaluation]`'s overrides, valid and
/// within the decoder's positions.
fn generation_config(
    run: &Run,
    settings: GenerationSettings,
    model: &Bert2BertConfig,
) -> Result<GenerationConfig> {
    let e = &run.config.evaluation;
    let generation = settings.resolve()?.with_overrides(&GenerationOverrides {
        num_beams: e.num_beams,
        max_length: e.max_length,
        min_length: e.min_length,
        no_repeat_ngram_size: e.no_repeat_ngram_size,
        length_penalty: e.length_penalty,
        early_stopping: None,
    });
    generation
        .validate()
        .map_err(|err| run.invalid("evaluation", err.to_string()))?;
    generation
        .check_positions(model.decoder.max_position_embeddings)
        .map_err(|err| run.invalid("evaluation.max_length", err.to_string()))?;
    Ok(generation)
}
