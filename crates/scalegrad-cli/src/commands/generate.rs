//! `scalegrad generate`: continue prompts with a GPT-2 checkpoint.
//!
//! `--model` is a Hugging Face model directory (`config.json`, `model.safetensors` or
//! `pytorch_model.bin`, `tokenizer.json`) or a hub id such as `distilgpt2`, resolved to
//! a snapshot of the Hugging Face cache through scalegrad-data (downloading when online;
//! `HF_HUB_OFFLINE=1` reads the cache only). Prompts come from `--prompt` (repeatable)
//! or `--prompt-file` (one per line); they are decoded in batches of `--batch-size`,
//! left-padded, with a key/value cache (see scalegrad-gpt2's `generate`).
//!
//! Output: each prompt followed by its continuation, or with `--json` one JSON object
//! per prompt and line: `prompt`, `prompt_ids`, `generated_ids` (including a final EOS),
//! `text` (the decoded continuation, special tokens skipped) and `stopped_at_eos`.

use std::path::{Path, PathBuf};

use super::{ModelArgs, on_device};
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use scalegrad_data::tokenizer::load_tokenizer;
use scalegrad_gpt2::{GenerationConfig, Gpt2, Strategy, generate};

use super::progress::ItemProgress;
use crate::backend::DeviceArgs;

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    /// The most likely token.
    Greedy,
    /// Sample among the `--top-k` most likely tokens (default 50).
    TopK,
    /// Sample from the smallest set of tokens whose probability reaches `--top-p`
    /// (default 0.9).
    TopP,
    /// Sample from the whole (tempered) distribution.
    Sample,
}

/// Arguments of `scalegrad generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// A prompt; repeat the flag for several.
    #[arg(
        long,
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    prompt: Vec<String>,
    /// A file with one prompt per line (empty lines are skipped).
    #[arg(long, value_name = "FILE")]
    prompt_file: Option<PathBuf>,
    /// Maximum number of new tokens per prompt.
    #[arg(long, default_value_t = 50)]
    max_new_tokens: usize,
    /// Decoding strategy.
    #[arg(long, value_enum, default_value_t = StrategyArg::Greedy)]
    strategy: StrategyArg,
    /// Number of tokens kept by top-k sampling (also narrows top-p sampling when given).
    #[arg(long)]
    top_k: Option<usize>,
    /// Probability mass kept by nucleus sampling (also narrows top-k sampling when given).
    #[arg(long)]
    top_p: Option<f64>,
    /// Sampling temperature (> 0); sampling strategies only.
    #[arg(long)]
    temperature: Option<f64>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// transformers' repetition penalty (1 disables it; 1.2 is common).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f64,
    /// Never repeat an n-gram of this size (0 disables it).
    #[arg(long, default_value_t = 0)]
    no_repeat_ngram_size: usize,
    /// Prompts decoded together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Print one JSON object per prompt instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

impl Args {
    fn strategy(&self) -> Result<Strategy> {
        let temperature = self.temperature.unwrap_or(1.0);
        Ok(match self.strategy {
            StrategyArg::Greedy => {
                if self.top_k.is_some() || self.top_p.is_some() || self.temperature.is_some() {
                    bail!(
                        "--top-k, --top-p and --temperature apply to sampling; greedy decoding \
                         ignores them (use --strategy top-k, top-p or sample)"
                    );
                }
                Strategy::Greedy
            }
            StrategyArg::TopK => Strategy::Sample {
                temperature,
                top_k: Some(self.top_k.unwrap_or(50)),
                top_p: self.top_p,
            },
            StrategyArg::TopP => Strategy::Sample {
                temperature,
                top_k: self.top_k,
                top_p: Some(self.top_p.unwrap_or(0.9)),
            },
            StrategyArg::Sample => Strategy::Sample {
                temperature,
                top_k: self.top_k,
                top_p: self.top_p,
            },
        })
    }

    fn prompts(&self) -> Result<Vec<String>> {
        let prompts = match &self.prompt_file {
            Some(path) => read_prompts(path)?,
            None => self.prompt.clone(),
        };
        if prompts.is_empty() {
            bail!("no prompts given (the prompt file has only empty lines)");
        }
        Ok(prompts)
    }
}

fn read_prompts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the prompt file {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// Runs `scalegrad generate`.
pub fn run(args: Args) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let strategy = args.strategy()?;
    let prompts = args.prompts()?;
    let (device, _) = args.device.backend.open()?;
    // Refused before the model is fetched or loaded.
    let precision = args.device.precision_on(&device)?;

    let dir = args.model.dir()?;
    let (model, report) = Gpt2::from_pretrained(&dir, &device)
        .with_context(|| format!("loading the GPT-2 checkpoint in {}", dir.display()))?;
    let model = model
        .with_execution(args.device.backend.execution())
        .with_precision(precision);
    eprintln!(
        "loaded {} ({} tensors, {} parameters) on {}",
        report.path.display(),
        report.applied,
        model.config().num_params(),
        args.device.backend.name()
    );
    let tokenizer = load_tokenizer(&dir)
        .with_context(|| format!("loading the tokenizer of {}", dir.display()))?;

    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        strategy,
        seed: args.seed,
        repetition_penalty: args.repetition_penalty,
        no_repeat_ngram_size: args.no_repeat_ngram_size,
        eos_token_ids: model.config().eos_token_ids(),
        pad_token_id: model.config().pad_token_id,
        padding_side: Default::default(),
    };
    config.validate()?;

    let mut encoded = Vec::with_capacity(prompts.len());
    for (i, prompt) in prompts.iter().enumerate() {
        let encoding = tokenizer
            .encode(prompt.as_str(), true)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("tokenising prompt {i}"))?;
        encoded.push(encoding.get_ids().to_vec());
    }

    let progress = ItemProgress::new(prompts.len(), "prompts", prompts.len() > args.batch_size);
    for (batch_index, (texts, ids)) in prompts
        .chunks(args.batch_size)
        .zip(encoded.chunks(args.batch_size))
        .enumerate()
    {
        let first = batch_index * args.batch_size;
        let advice = format!("lower --batch-size (now {})", args.batch_size);
        let outputs = on_device("decoding", &advice, || {
            generate(&model, ids, &config)
                .with_context(|| format!("generating for prompts {first}..{}", first + ids.len()))
        })?;
        progress.suspend(|| -> Result<()> {
            for ((text, prompt_ids), output) in texts.iter().zip(ids).zip(&outputs) {
                let continuation = tokenizer
                    .decode(&output.tokens, true)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("decoding generated tokens")?;
                if args.json {
                    let line = serde_json::json!({
                        "prompt": text,
                        "prompt_ids": prompt_ids,
                        "generated_ids": output.tokens,
                        "text": continuation,
                        "stopped_at_eos": output.stopped_at_eos,
                    });
                    println!("{line}");
                } else {
                    println!("{text}{continuation}");
                    println!();
                }
            }
            Ok(())
        })?;
        progress.advance(texts.len());
    }
    progress.finish();
    Ok(())
}
