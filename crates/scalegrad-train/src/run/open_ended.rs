//! The open-ended experiment's run: a GPT-2 (from scratch or a checkpoint) trained on
//! windows of the tokenised text, then scored on the test split.

use scalegrad_data::cache::TokenArray;
use scalegrad_data::lm::{LastWindow, WindowConfig};
use scalegrad_data::tokenizer::GPT2_EOS;
use scalegrad_data::{BatchSampler, LmWindows, SamplerConfig, TokenizeSpec, TokenizedSplit};
use scalegrad_gpt2::{Gpt2, Gpt2Config};
use scalegrad_loss::Objective;
use serde_json::json;
use tokenizers::Tokenizer;

use super::results::{Outcome, Results};
use super::steps::{RunData, toml_to_json};
use super::{Result, Run};
use crate::open_ended::{LmTask, OpenEndedEval, evaluate};

/// Data, model, training and evaluation of an open-ended run.
pub(super) fn run(run: &Run) -> Result<Outcome> {
    let data = run.data()?;
    let train_device = run.train_device();
    let model = model(run, &data.tokenizer, &train_device)?;
    check_positions(run, model.config().n_positions)?;
    let [train, valid, test] = data.tokenize(&TokenizeSpec::lm_text())?;
    let objective = run.objective()?;
    let task = task(run, &data, [&train, &valid], objective.clone())?;
    let (trained, model) = run.train(&task, model, train_device, objective, |best| {
        Ok(Gpt2::from_pretrained(best, &run.opts.device)?
            .0
            .with_execution(run.opts.execution)
            .with_precision(run.config.training.precision))
    })?;
    let e = &run.config.evaluation;
    let evaluated = run.evaluate(|| {
        evaluate(
            &model,
            &OpenEndedEval {
                tokens: text(&test),
                window: e.window,
                max_windows: e.max_windows,
                prefix_len: e.prefix_len,
                continuation_len: e.continuation_len,
                max_continuations: e.max_continuations,
                decoding: &e.decoding,
                batch_size: e.batch_size,
                seed: run.config.run.seed,
                tokenizer: &data.tokenizer,
                samples: 5,
                chunk_bytes: e.chunk_mib << 20,
            },
        )
    })?;
    let (metrics, samples) = evaluated.value;
    Ok(Outcome {
        train: trained,
        eval_seconds: evaluated.seconds,
        results: Results::OpenEnded(metrics, samples),
    })
}

/// The model to train: the config's scratch architecture (sized to the tokenizer, its
/// end-of-text token as BOS and EOS) or a checkpoint, on `device`.
fn model(run: &Run, tokenizer: &Tokenizer, device: &burn::tensor::Device) -> Result<Gpt2> {
    let config = run.config;
    let model = if config.model.source == "scratch" {
        let mut json = toml_to_json(config.model.scratch.as_ref().expect("validated"));
        json["vocab_size"] = json!(tokenizer.get_vocab_size(true));
        if let Some(eos) = tokenizer.token_to_id(GPT2_EOS) {
            json["bos_token_id"] = json!(eos);
            json["eos_token_id"] = json!(eos);
        }
        Gpt2Config::from_json_str(&json.to_string())
            .map_err(|e| run.invalid("model.scratch", e.to_string()))?
            .init(device)
    } else {
        Gpt2::from_pretrained(&run.model_dir(&config.model.source)?, device)?.0
    };
    Ok(model
        .with_execution(run.opts.execution)
        .with_precision(config.training.precision))
}

/// Every length of the config fits the model's `n_positions`.
fn check_positions(run: &Run, positions: usize) -> Result<()> {
    let (data, e) = (&run.config.data, &run.config.evaluation);
    for (key, needed) in [
        ("data.block_size", data.block_size.expect("validated")),
        ("evaluation.window", e.window),
        ("evaluation.prefix_len", e.prefix_len + e.continuation_len),
    ] {
        if needed > positions {
            return Err(run.invalid(
                key,
                format!("needs {needed} positions but the model has n_positions = {positions}"),
            ));
        }
    }
    Ok(())
}

/// The tokens of a split's `text` column.
fn text(split: &TokenizedSplit) -> &TokenArray {
    &split
        .column("text")
        .expect("tokenised text column")
        .rows
        .tokens
}

/// Training and validation windows of `data.block_size` tokens (a last partial window
/// dropped) and the seeded batch order.
fn task<'a>(
    run: &Run,
    data: &RunData,
    [train, valid]: [&'a TokenizedSplit; 2],
    objective: Objective,
) -> Result<LmTask<'a>> {
    let config = run.config;
    let block = config.data.block_size.expect("validated");
    let windows = WindowConfig::new(block).with_last(LastWindow::Drop);
    let train = LmWindows::new(text(train), windows)?;
    let valid = LmWindows::new(text(valid), windows)?;
    if train.is_empty() || valid.is_empty() {
        return Err(run.invalid(
            "data.block_size",
            format!("{block} tokens leave no full window in the training or validation split"),
        ));
    }
    let sampler = BatchSampler::new(
        run.train_examples(train.len()),
        SamplerConfig::shuffled(config.training.batch_size, config.run.seed),
    )?;
    Ok(LmTask {
        train,
        valid,
        sampler,
        objective,
        batch_size: config.training.batch_size,
        max_valid: config.data.max_valid_examples,
        tokenizer_dir: data.tokenizer_dir.clone(),
    })
}
