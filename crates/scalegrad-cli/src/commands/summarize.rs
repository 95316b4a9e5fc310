//! `scalegrad summarize`: summarise articles with a BERT2BERT checkpoint.
//!
//! `--model` is a Hugging Face `EncoderDecoderModel` directory (`config.json`,
//! `model.safetensors` or `pytorch_model.bin`, `vocab.txt` or `tokenizer.json`) or a hub
//! id such as `mrm8488/bert-small2bert-small-finetuned-cnn_daily_mail-summarization`,
//! resolved to a snapshot of the Hugging Face cache through scalegrad-data (downloading
//! when online; `HF_HUB_OFFLINE=1` reads the cache only).
//!
//! `--input` holds the articles, chosen by the file's extension: `.parquet` (an
//! `article` column, as in CNN/DailyMail), `.jsonl` / `.json` (one JSON value per line:
//! a string, or an object with an `article` string), anything else plain text (one
//! article per non-empty line). Articles are tokenised with the checkpoint's tokenizer,
//! truncated to `--max-source-length` tokens (default: the encoder's positions) as
//! transformers' `tokenizer(truncation=True)` does, padded per batch of `--batch-size`,
//! and summarised with scalegrad-bert2bert's `generate`, whose decoding knobs default to
//! the checkpoint's (`generation_config.json`, else the top level of `config.json`, as
//! transformers reads them) and are overridden by the flags. The resolved knobs are
//! printed to stderr before decoding.
//!
//! Output: one summary per line, or with `--json` one object per article and line:
//! `index`, `summary` (special tokens skipped), `summary_ids` (the generated tokens after
//! the decoder start token), `score` (beam score, null for greedy), `source_tokens` and
//! `truncated`.

use std::path::{Path, PathBuf};

use super::{ModelArgs, on_device};
use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Int, Tensor, TensorData};
use scalegrad_bert2bert::{
    EarlyStopping, GenerationConfig, GenerationOverrides, generate, load_pretrained,
};
use scalegrad_data::reader::read_columns;
use scalegrad_data::tokenizer::load_tokenizer;
use tokenizers::{Tokenizer, TruncationParams};

use super::progress::ItemProgress;
use crate::backend::DeviceArgs;

/// Arguments of `scalegrad summarize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Articles: `.parquet` (`article` column), `.jsonl`/`.json` (strings or objects with
    /// `article`), or text (one article per line).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Beam width (1 = greedy); default from the checkpoint.
    #[arg(long)]
    num_beams: Option<usize>,
    /// Maximum summary length, decoder start token included (transformers' max_length);
    /// default from the checkpoint.
    #[arg(long)]
    max_length: Option<usize>,
    /// Minimum summary length, decoder start token included; default from the checkpoint.
    #[arg(long)]
    min_length: Option<usize>,
    /// n-grams of this size may occur only once per summary (0 = off); default from the
    /// checkpoint.
    #[arg(long)]
    no_repeat_ngram_size: Option<usize>,
    /// Exponent of the length normalisation of finished beams; default from the checkpoint.
    #[arg(long, allow_negative_numbers = true)]
    length_penalty: Option<f64>,
    /// Beam stopping rule: `true`, `false` or `never`; default from the checkpoint.
    #[arg(long, value_parser = parse_early_stopping)]
    early_stopping: Option<EarlyStopping>,
    /// Source tokens kept per article (special tokens included); default: the encoder's
    /// positions.
    #[arg(long)]
    max_source_length: Option<usize>,
    /// Articles summarised together.
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Print one JSON object per article instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

fn parse_early_stopping(text: &str) -> Result<EarlyStopping, String> {
    EarlyStopping::parse(text).ok_or_else(|| format!("`{text}`: expected true, false or never"))
}

/// Reads the articles of `path`, choosing the format by its extension.
fn read_articles(path: &Path) -> Result<Vec<String>> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let articles = match extension.as_deref() {
        Some("parquet") => {
            let mut columns = read_columns(&[path.to_path_buf()], &["article"])
                .with_context(|| format!("reading the `article` column of {}", path.display()))?;
            columns.pop().unwrap_or_default()
        }
        Some("jsonl" | "json") => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
                let article = match &value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Object(o) => match o.get("article") {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        _ => bail!(
                            "{} line {}: the object has no string field `article`",
                            path.display(),
                            i + 1
                        ),
                    },
                    _ => bail!(
                        "{} line {}: expected a string or an object with `article`",
                        path.display(),
                        i + 1
                    ),
                };
                out.push(article);
            }
            out
        }
        _ => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    };
    if articles.is_empty() {
        bail!("{} holds no articles", path.display());
    }
    Ok(articles)
}

/// The checkpoint's decoding knobs with the command line's overrides.
fn generation_config(args: &Args, defaults: GenerationConfig) -> Result<GenerationConfig> {
    let config = defaults.with_overrides(&GenerationOverrides {
        num_beams: args.num_beams,
        max_length: args.max_length,
        min_length: args.min_length,
        no_repeat_ngram_size: args.no_repeat_ngram_size,
        length_penalty: args.length_penalty,
        early_stopping: args.early_stopping,
    });
    config.validate()?;
    Ok(config)
}

/// One tokenised article.
struct Source {
    ids: Vec<u32>,
    truncated: bool,
}

fn tokenize(tokenizer: &Tokenizer, articles: &[String], max_len: usize) -> Result<Vec<Source>> {
    let mut full = tokenizer.clone();
    full.with_truncation(None)
        .map_err(|e| anyhow!("{e}"))
        .context("configuring the tokenizer")?;
    let mut truncating = tokenizer.clone();
    truncating
        .with_truncation(Some(TruncationParams {
            max_length: max_len,
            ..Default::default()
        }))
        .map_err(|e| anyhow!("{e}"))
        .context("configuring truncation")?;
    articles
        .iter()
        .enumerate()
        .map(|(i, article)| {
            let encode = |t: &Tokenizer| {
                t.encode(article.as_str(), true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| anyhow!("{e}"))
                    .with_context(|| format!("tokenising article {i}"))
            };
            let ids = encode(&truncating)?;
            if ids.is_empty() {
                bail!("article {i} has no tokens");
            }
            let truncated = encode(&full)?.len() > ids.len();
            Ok(Source { ids, truncated })
        })
        .collect()
}

/// Right-padded ids and the HF attention mask of a batch.
fn batch_tensors(
    sources: &[Source],
    pad: u32,
    device: &burn::tensor::Device,
) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let len = sources.iter().map(|s| s.ids.len()).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(sources.len() * len);
    let mut mask = Vec::with_capacity(sources.len() * len);
    for s in sources {
        ids.extend(s.ids.iter().map(|&t| t as i64));
        ids.extend(std::iter::repeat_n(pad as i64, len - s.ids.len()));
        mask.extend(std::iter::repeat_n(1i64, s.ids.len()));
        mask.extend(std::iter::repeat_n(0i64, len - s.ids.len()));
    }
    let shape = [sources.len(), len];
    (
        Tensor::from_data(TensorData::new(ids, shape), device),
        Tensor::from_data(TensorData::new(mask, shape), device),
    )
}

/// Runs `scalegrad summarize`.
pub fn run(args: Args) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let articles = read_articles(&args.input)?;
    let (device, _) = args.device.backend.open()?;
    // Refused before the model is fetched or loaded.
    let precision = args.device.precision_on(&device)?;

    let dir = args.model.dir()?;
    let mut loaded = load_pretrained(&dir, &device)
        .with_context(|| format!("loading the BERT2BERT checkpoint in {}", dir.display()))?;
    loaded.model = loaded
        .model
        .with_execution(args.device.backend.execution())
        .with_precision(precision);
    let tokenizer = load_tokenizer(&dir)
        .with_context(|| format!("loading the tokenizer of {}", dir.display()))?;
    let defaults = loaded
        .generation
        .resolve()
        .with_context(|| format!("reading the generation settings of {}", dir.display()))?;
    let config = generation_config(&args, defaults)?;
    config
        .check_positions(loaded.config.decoder.max_position_embeddings)
        .context("--max-length")?;
    let max_positions = loaded.config.encoder.max_position_embeddings;
    let max_source = args.max_source_length.unwrap_or(max_positions);
    if max_source == 0 || max_source > max_positions {
        bail!("--max-source-length must be in 1..={max_positions} (the encoder's positions)");
    }
    eprintln!(
        "loaded {} on {}; decoding with {}",
        loaded.weights.display(),
        args.device.backend.name(),
        serde_json::to_string(&config)?
    );

    let sources = tokenize(&tokenizer, &articles, max_source)?;
    let pad = loaded.config.encoder.pad_token_id.unwrap_or(0);
    let progress = ItemProgress::new(articles.len(), "articles", articles.len() > args.batch_size);
    for (batch_index, batch) in sources.chunks(args.batch_size).enumerate() {
        let first = batch_index * args.batch_size;
        let (ids, mask) = batch_tensors(batch, pad, &device);
        let advice = format!(
            "lower --batch-size (now {}), --num-beams or --max-source-length",
            args.batch_size
        );
        let outputs = on_device("summarising", &advice, || {
            generate(&loaded.model, ids, Some(mask), &config)
                .with_context(|| format!("summarising articles {first}..{}", first + batch.len()))
        })?;
        progress.suspend(|| -> Result<()> {
            for (i, (source, output)) in batch.iter().zip(&outputs).enumerate() {
                let summary = tokenizer
                    .decode(&output.tokens, true)
                    .map_err(|e| anyhow!("{e}"))
                    .context("decoding a summary")?;
                if args.json {
                    let line = serde_json::json!({
                        "index": first + i,
                        "summary": summary,
                        "summary_ids": output.tokens,
                        "score": output.score,
                        "source_tokens": source.ids.len(),
                        "truncated": source.truncated,
                    });
                    println!("{line}");
                } else {
                    println!("{summary}");
                }
            }
            Ok(())
        })?;
        progress.advance(batch.len());
    }
    progress.finish();
    Ok(())
}
