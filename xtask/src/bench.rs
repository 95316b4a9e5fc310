//! `cargo xtask bench NAME`: ours beside the reference stack, on this machine, now.
//!
//! Each benchmark has two sides that print the same JSON lines on standard output,
//! one per measurement:
//!
//! ```text
//! {"case": "4x128", "metric": "ms", "value": 12.5, "better": "lower"}
//! ```
//!
//! The Rust side is an example binary of the crate under test, built in release; the
//! reference side is a Python script run with the reference environment (see
//! `cargo xtask setup python`). When Python or its packages are missing, the reference
//! side is skipped with the reason and the last figures measured on this machine kind
//! (shared REFERENCE.md §6) are shown instead, labelled as such. Results are written to
//! `results/bench/NAME.json`.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::util::{cargo, output, root};

/// One side-by-side benchmark.
struct Spec {
    name: &'static str,
    about: &'static str,
    /// Package holding the Rust side.
    package: &'static str,
    /// Example binary of that package that prints the JSON lines.
    example: &'static str,
    /// Python script (from the workspace root) that prints the reference JSON lines.
    python: Option<&'static str>,
    /// Reference figures to show when the Python side cannot run: (case, metric, value).
    last_known: &'static [(&'static str, &'static str, f64)],
}

/// Every benchmark `cargo xtask bench` knows. Keep the names short: they are typed.
const SPECS: &[Spec] = &[
    Spec {
        name: "loss",
        about: "loss forward+backward: cross-entropy vs ScaleGrad vs masked reference",
        package: "scalegrad-loss",
        example: "bench_loss",
        python: Some("crates/scalegrad-loss/bench/bench_loss.py"),
        last_known: &[
            ("ce 4x128x50257", "ms", 109.0),
            ("sg_masked 4x128x50257", "ms", 1062.0),
            ("sg 4x128x50257", "ms", 104.0),
            ("ce 8x256x50257", "ms", 386.0),
            ("sg_masked 8x256x50257", "ms", 3672.0),
            ("sg 8x256x50257", "ms", 406.0),
            ("ce 8x256x50257", "peak_mb", 1181.0),
            ("sg_masked 8x256x50257", "peak_mb", 2953.0),
            ("sg 8x256x50257", "peak_mb", 1192.0),
        ],
    },
    Spec {
        // scalegrad-metrics: ROUGE-1/2/L/Lsum on 2,000 pairs of 50-70 words.
        name: "rouge",
        about: "ROUGE-1/2/L/Lsum pairs per second: ours vs rouge_score on the same 2,000 pairs",
        package: "scalegrad-metrics",
        example: "bench_rouge",
        python: Some("crates/scalegrad-metrics/bench/bench_rouge.py"),
        last_known: &[
            ("2000 pairs stem", "pairs_per_s", 202.0),
            ("2000 pairs stem 1 thread", "pairs_per_s", 202.0),
        ],
    },
    Spec {
        // distilgpt2-architecture train step (fwd, CE, bwd, the training loop's AdamW) on flex.
        name: "gpt2-train",
        about: "distilgpt2 train step (forward, CE, backward, AdamW) tokens/s: flex vs PyTorch",
        package: "scalegrad-train",
        example: "bench_gpt2_train",
        python: Some("crates/scalegrad-gpt2/bench/bench_gpt2_train.py"),
        last_known: &[
            ("1x128", "tokens_per_s", 152.0),
            ("4x128", "tokens_per_s", 240.0),
        ],
    },
    Spec {
        // scalegrad-gpt2: greedy decoding, 50-token prompt + 100 new tokens, KV cache.
        name: "gpt2-decode",
        about: "distilgpt2 greedy decoding new tokens/s (50 + 100, KV cache): flex vs generate",
        package: "scalegrad-gpt2",
        example: "bench_gpt2_decode",
        python: Some("crates/scalegrad-gpt2/bench/bench_gpt2_decode.py"),
        last_known: &[
            ("batch 1, 50+100", "tokens_per_s", 35.4),
            ("batch 8, 50+100", "tokens_per_s", 131.0),
        ],
    },
    Spec {
        // scalegrad-data: parquet -> GPT-2 BPE tokens -> cached 1024-token windows, 100 MB.
        name: "data",
        about: "parquet to cached GPT-2 windows, tokens/s on 100 MB: ours vs datasets.map",
        package: "scalegrad-data",
        example: "bench_data",
        python: Some("crates/scalegrad-data/bench/bench_data.py"),
        // REFERENCE.md §6 has no figure for this; run the Python side.
        last_known: &[],
    },
    Spec {
        // bert-small2bert-small train step (fwd, CE, bwd, the training loop's AdamW) on flex.
        name: "b2b-train",
        about: "bert2bert-small train step, sources 512 + targets 128: flex vs PyTorch",
        package: "scalegrad-train",
        example: "bench_b2b_train",
        python: Some("crates/scalegrad-bert2bert/bench/bench_b2b_train.py"),
        last_known: &[
            ("train 1x512+128", "s", 1.00),
            ("train 4x512+128", "s", 3.13),
            ("train 1x512+128", "tokens_per_s", 640.0),
            ("train 4x512+128", "tokens_per_s", 818.0),
        ],
    },
    Spec {
        // scalegrad-bert2bert: 4-beam search, 512-token sources, 128 new tokens (EOS off).
        name: "b2b-beam",
        about: "bert2bert-small 4-beam search, 512-token source, 128 new tokens: flex vs generate",
        package: "scalegrad-bert2bert",
        example: "bench_b2b_beam",
        python: Some("crates/scalegrad-bert2bert/bench/bench_b2b_beam.py"),
        last_known: &[
            ("beam4 1x512 128new", "s_per_article", 4.29),
            ("beam4 4x512 128new", "s_per_article", 2.07),
        ],
    },
];

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Benchmark to run; `list` shows them all.
    name: String,
    /// Skip the reference (Python) side.
    #[arg(long)]
    no_reference: bool,
    /// `gpu` only: the GPU backend to build and time (wgpu, cuda).
    #[arg(long, default_value = "wgpu")]
    backend: String,
    /// `gpu` only: the type of scalegrad's products, timed against PyTorch's autocast in
    /// the same type (f32: TF32 off).
    #[arg(long, value_parser = ["f32", "bf16", "f16"])]
    precision: Option<String>,
    /// Extra arguments passed to both sides (e.g. `--quick`).
    #[arg(last = true)]
    extra: Vec<String>,
}

/// One measurement line.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Measurement {
    case: String,
    metric: String,
    value: f64,
    #[serde(default = "lower")]
    better: String,
}

fn lower() -> String {
    "lower".to_string()
}

/// The saved result of a run.
#[derive(Debug, Serialize)]
struct Report {
    name: String,
    ours: Vec<Measurement>,
    reference: Vec<Measurement>,
    reference_source: String,
}

/// Entry point of `cargo xtask bench`.
pub fn run(args: Args) -> Result<()> {
    if args.name == "list" {
        for spec in SPECS {
            println!("{:<10} {}", spec.name, spec.about);
        }
        println!(
            "{:<10} train steps and greedy decoding on a GPU beside PyTorch (builds a bundle to \
             run where the GPU is)",
            "gpu"
        );
        return Ok(());
    }
    if args.precision.is_some() && args.name != "gpu" {
        bail!("--precision is an option of `cargo xtask bench gpu` only");
    }
    if args.name == "gpu" {
        return crate::bench_gpu::run_gpu(&args.backend, args.precision.as_deref(), &args.extra);
    }
    let Some(spec) = SPECS.iter().find(|s| s.name == args.name) else {
        let names: Vec<_> = SPECS.iter().map(|s| s.name).collect();
        bail!(
            "unknown benchmark `{}`; known: {}",
            args.name,
            names.join(", ")
        );
    };

    let ours_out = output(
        cargo()
            // The `scalegrad` binary's allocator setting (see its `keep_freed_memory`);
            // the examples use the same allocator.
            .env("MIMALLOC_PURGE_DELAY", "-1")
            .args(["run", "--release", "--quiet", "-p", spec.package])
            .args(crate::util::cpu_kernel_features(spec.package))
            .args(["--example", spec.example, "--"])
            .args(&args.extra),
    )?;
    let ours = parse(&ours_out).context("reading the Rust side's output")?;

    let (reference, source) = if args.no_reference {
        (
            last_known(spec),
            "skipped (--no-reference); last known figures".to_string(),
        )
    } else {
        match reference_side(spec, &args.extra) {
            Ok(reference) => (reference, "measured now, same machine".to_string()),
            Err(err) => {
                eprintln!("reference side skipped: {err:#}");
                (
                    last_known(spec),
                    "last known figures (shared REFERENCE.md §6, same machine kind)".to_string(),
                )
            }
        }
    };

    print_table(spec, &ours, &reference, &source);
    let report = Report {
        name: spec.name.to_string(),
        ours,
        reference,
        reference_source: source,
    };
    let dir = root().join("results/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.json", spec.name));
    scalegrad_fs::write_atomic(&path, &serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn reference_side(spec: &Spec, extra: &[String]) -> Result<Vec<Measurement>> {
    let Some(script) = spec.python else {
        bail!("this benchmark has no reference script");
    };
    let python = crate::python::python()?;
    let out = output(
        Command::new(python)
            .arg(root().join(script))
            .args(extra)
            .current_dir(root()),
    )?;
    parse(&out).context("reading the reference side's output")
}

fn last_known(spec: &Spec) -> Vec<Measurement> {
    spec.last_known
        .iter()
        .map(|(case, metric, value)| Measurement {
            case: case.to_string(),
            metric: metric.to_string(),
            value: *value,
            better: if metric.ends_with("_per_s") {
                "higher"
            } else {
                "lower"
            }
            .to_string(),
        })
        .collect()
}

fn parse(out: &str) -> Result<Vec<Measurement>> {
    out.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad line: {l}")))
        .collect()
}

/// Prints `case | metric | ours | reference | speed-up`, where the speed-up is > 1 when
/// ours is better, whichever direction "better" is.
fn print_table(spec: &Spec, ours: &[Measurement], reference: &[Measurement], source: &str) {
    let reference: BTreeMap<(&str, &str), f64> = reference
        .iter()
        .map(|m| ((m.case.as_str(), m.metric.as_str()), m.value))
        .collect();
    println!("\n{}: {}", spec.name, spec.about);
    println!("reference: {source}\n");
    println!(
        "| {:<28} | {:<10} | {:>12} | {:>12} | {:>8} |",
        "case", "metric", "ours", "reference", "ours/ref"
    );
    println!(
        "|{:-<30}|{:-<12}|{:->14}|{:->14}|{:->10}|",
        "", "", "", "", ""
    );
    for m in ours {
        let (reference, ratio) = match reference.get(&(m.case.as_str(), m.metric.as_str())) {
            Some(&r) => {
                let ratio = if m.better == "higher" {
                    m.value / r
                } else {
                    r / m.value
                };
                (format!("{r:.3}"), format!("{ratio:.2}x"))
            }
            None => ("-".to_string(), "-".to_string()),
        };
        println!(
            "| {:<28} | {:<10} | {:>12.3} | {:>12} | {:>8} |",
            m.case, m.metric, m.value, reference, ratio
        );
    }
    println!("\nours/ref > 1 means ours is better (faster, smaller or higher throughput).");
}
