//! `scalegrad rouge`: ROUGE-1/2/L/Lsum of prediction files against reference files,
//! identical to Google's rouge_score, with means and seeded bootstrap intervals.
//!
//! Input files hold one summary per entry, paired by position:
//! - plain text (any extension but `.jsonl`): one summary per line; a final newline
//!   does not start another summary, `\r\n` line ends are accepted, and an empty line is
//!   an empty summary;
//! - JSONL (extension `.jsonl`, case-insensitive, or `--format jsonl`): one JSON string
//!   per line, so a summary may contain `\n`-separated sentences, which is what
//!   ROUGE-Lsum splits on.
//!
//! The format is chosen by extension, never guessed from content, so a text summary
//! that happens to start with `"` is not misread.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use scalegrad_metrics::{BootstrapConfig, RougeReport, RougeScorer};

/// Arguments of `scalegrad rouge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Predicted summaries: a text file (one per line) or a `.jsonl` file of strings.
    #[arg(long, value_name = "FILE")]
    predictions: PathBuf,
    /// Reference summaries, in the same order and format rules as the predictions.
    #[arg(long, value_name = "FILE")]
    references: PathBuf,
    /// Do not Porter-stem tokens (HF `evaluate`'s default; rouge_score papers usually stem).
    #[arg(long)]
    no_stemmer: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// How to read both files: by extension (`.jsonl` is JSONL, anything else text).
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Bootstrap resamples per ROUGE type.
    #[arg(long, default_value_t = 1000)]
    bootstrap_samples: usize,
    /// Width of the bootstrap interval, in [0, 1].
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Seed of the bootstrap resampling (reruns with the same seed agree exactly).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Layout of a summaries file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// `.jsonl` files are JSONL, every other file is text.
    Auto,
    /// One summary per line.
    Text,
    /// One JSON string per line.
    Jsonl,
}

/// Scores the files and prints the report.
pub fn run(args: Args) -> Result<()> {
    let predictions = read_summaries(&args.predictions, args.format)?;
    let references = read_summaries(&args.references, args.format)?;
    check_pairing(
        &args.predictions,
        &predictions,
        &args.references,
        &references,
    )?;
    let config = BootstrapConfig {
        n_samples: args.bootstrap_samples,
        confidence_interval: args.confidence,
        seed: args.seed,
    };
    config.validate().context("bad bootstrap settings")?;
    let scorer = RougeScorer::new(!args.no_stemmer);
    let report = RougeReport::compute(&scorer, &references, &predictions, &config)
        .context("computing ROUGE")?;
    if !predictions
        .iter()
        .chain(&references)
        .any(|s| s.contains('\n'))
    {
        eprintln!(
            "note: no summary contains a newline, so rougeLsum equals rougeL; for \
             summary-level ROUGE-Lsum put one sentence per line inside each summary \
             (JSONL input)"
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report, &args);
    }
    Ok(())
}

/// Reads one summaries file, with errors naming the file and line.
fn read_summaries(path: &Path, format: Format) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let line = err.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            bail!(
                "{}: line {line}: invalid UTF-8 at byte {valid}; summaries files must be UTF-8",
                path.display()
            );
        }
    };
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let jsonl = match format {
        Format::Text => false,
        Format::Jsonl => true,
        Format::Auto => path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl")),
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    // A final newline ends the last summary; it does not start an empty one.
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let lines = lines.into_iter().map(|l| l.strip_suffix('\r').unwrap_or(l));
    if !jsonl {
        return Ok(lines.map(str::to_string).collect());
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            if line.trim().is_empty() {
                bail!(
                    "{}: line {}: empty line in a JSONL file; write \"\" for an empty summary",
                    path.display(),
                    i + 1
                );
            }
            serde_json::from_str::<String>(line).map_err(|err| {
                // serde_json positions are within this one line; name the file's line.
                let full = err.to_string();
                let reason = full
                    .strip_suffix(&format!(" at line {} column {}", err.line(), err.column()))
                    .unwrap_or(&full);
                // Type errors (a number, an object) carry no useful column.
                let column = match err.column() {
                    0 => String::new(),
                    c => format!(", column {c}"),
                };
                anyhow::anyhow!(
                    "{}: line {}{column}: expected one JSON string per line (JSONL), e.g. \
                     \"First sentence.\\nSecond.\": {reason}",
                    path.display(),
                    i + 1,
                )
            })
        })
        .collect()
}

/// Errors unless both files hold the same number of summaries (or none at all).
fn check_pairing(
    pred_path: &Path,
    predictions: &[String],
    ref_path: &Path,
    references: &[String],
) -> Result<()> {
    let (p, r) = (predictions.len(), references.len());
    if p != r {
        let (longer, shorter, shorter_len) = if p > r {
            (pred_path, ref_path, r)
        } else {
            (ref_path, pred_path, p)
        };
        bail!(
            "{} has {p} predictions but {} has {r} references: line {} of {} has no \
             counterpart in {} (line i of one file pairs with line i of the other)",
            pred_path.display(),
            ref_path.display(),
            shorter_len + 1,
            longer.display(),
            shorter.display(),
        );
    }
    if p == 0 {
        bail!(
            "{} and {} hold no summaries",
            pred_path.display(),
            ref_path.display()
        );
    }
    Ok(())
}

fn print_table(report: &RougeReport, args: &Args) {
    let b = &report.bootstrap;
    println!(
        "ROUGE of {} predictions ({}) against references ({})",
        report.count,
        args.predictions.display(),
        args.references.display()
    );
    println!(
        "stemmer: {}; rougeLsum splits sentences on newlines",
        if report.use_stemmer {
            "on (NLTK Porter on tokens longer than 3 characters)"
        } else {
            "off"
        }
    );
    println!(
        "bootstrap: {} resamples, {}% interval, seed {} (mid is the bootstrap median, as HF \
         evaluate reports)\n",
        b.n_samples,
        b.confidence_interval * 100.0,
        b.seed
    );
    println!(
        "| {:<9} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "type", "P mean", "R mean", "F mean", "F low", "F mid", "F high"
    );
    println!(
        "|{:-<11}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", ""
    );
    for (name, t) in report.types() {
        println!(
            "| {name:<9} | {:>8.4} | {:>8.4} | {:>8.4} | {:>8.4} | {:>8.4} | {:>8.4} |",
            t.precision, t.recall, t.fmeasure, t.low.fmeasure, t.mid.fmeasure, t.high.fmeasure
        );
    }
}
