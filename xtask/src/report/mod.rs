//! `cargo xtask report`: gathers the runs of a preset into `REPORT.md` and figures.
//!
//! It reads each run folder `<preset>/<experiment>/<run>/` written by `scalegrad train`
//! (`metrics.json`, `log.jsonl`, `samples.jsonl`) with the types of `scalegrad-results`,
//! the ones the trainer writes them with (serde only: xtask links no model crate), so a
//! renamed field is a compile error here. Tables put the "before fine-tuning" row, MLE,
//! ScaleGrad (and unlikelihood or a gamma sweep when run) and the human reference side by
//! side, with the paper's published direction of each effect beside ours.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use scalegrad_results::{
    ContinuationReport, ContinuationSample, Event, ObjectiveRecord, OpenEndedMetrics, RunMetrics,
    SummarizationMetrics, SummarySample, read_events, read_metrics, read_samples,
};

use crate::plot::{self, Series};
use crate::util::root;

mod open_ended;
mod summarization;

use open_ended::open_ended_section;
use summarization::summarization_section;

/// Arguments of `cargo xtask report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Preset whose runs to report.
    #[arg(long, default_value = "demo")]
    preset: String,
    /// Output folder given to `reproduce`.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

/// Entry point of `cargo xtask report`.
pub fn run(args: Args) -> Result<()> {
    let out = if args.out.is_absolute() {
        args.out
    } else {
        root().join(args.out)
    };
    write_report(&out.join(&args.preset), &args.preset)
}

/// A finished run.
struct Run {
    name: String,
    metrics: RunMetrics,
    /// `(step, train nll)` and `(step, valid nll)` from `log.jsonl`.
    train_curve: Vec<(f64, f64)>,
    valid_curve: Vec<(f64, f64)>,
    /// `(input, output)` of the kept samples: prefix and continuation, or reference and
    /// summary.
    samples: Vec<(String, String)>,
}

impl Run {
    fn label(&self) -> String {
        if self.metrics.is_initial() {
            return "before fine-tuning".to_string();
        }
        self.metrics.objective.label()
    }

    /// Sort key: before fine-tuning, MLE, ScaleGrad by decreasing gamma, unlikelihood.
    fn order(&self) -> (u8, i64) {
        if self.metrics.is_initial() {
            return (0, 0);
        }
        match self.metrics.objective {
            ObjectiveRecord::Mle => (1, 0),
            ObjectiveRecord::ScaleGrad { gamma } => (2, -((gamma * 1000.0) as i64)),
            ObjectiveRecord::Unlikelihood { .. } => (3, 0),
        }
    }

    fn open_ended(&self) -> &OpenEndedMetrics {
        self.metrics.open_ended.as_ref().expect("checked on load")
    }

    fn summarization(&self) -> &SummarizationMetrics {
        self.metrics
            .summarization
            .as_ref()
            .expect("checked on load")
    }
}

/// Which experiment a folder of runs holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Experiment {
    OpenEnded,
    Summarization,
}

/// The finished runs (those with a `metrics.json`) of one experiment's folder, in table
/// order.
fn load_runs(dir: &Path, experiment: Experiment) -> Result<Vec<Run>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let run_dir = entry?.path();
        let metrics_path = run_dir.join("metrics.json");
        if !metrics_path.exists() {
            continue;
        }
        let metrics = read_metrics(&metrics_path)?;
        let has_section = match experiment {
            Experiment::OpenEnded => metrics.open_ended.is_some(),
            Experiment::Summarization => metrics.summarization.is_some(),
        };
        anyhow::ensure!(
            has_section,
            "{} has no metrics of the {} experiment whose folder it is in; it was moved there \
             by hand, or written by another version: rerun it with --restart",
            metrics_path.display(),
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let log = run_dir.join("log.jsonl");
        let events = if log.exists() {
            read_events(&log).with_context(|| format!("reading {}", log.display()))?
        } else {
            Vec::new()
        };
        let mut train_curve = Vec::new();
        let mut valid_curve = Vec::new();
        for event in events {
            match event {
                Event::Train { step, nll, .. } => train_curve.push((step as f64, nll)),
                Event::Valid { step, nll, .. } => valid_curve.push((step as f64, nll)),
            }
        }
        let samples_path = run_dir.join("samples.jsonl");
        let samples = if !samples_path.exists() {
            Vec::new()
        } else if experiment == Experiment::OpenEnded {
            read_samples::<ContinuationSample>(&samples_path)?
                .into_iter()
                .map(|s| (s.prefix, s.continuation))
                .collect()
        } else {
            read_samples::<SummarySample>(&samples_path)?
                .into_iter()
                .map(|s| (s.reference, s.summary))
                .collect()
        };
        runs.push(Run {
            name: run_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            metrics,
            train_curve,
            valid_curve,
            samples,
        });
    }
    runs.sort_by_key(|r| (r.order(), r.name.clone()));
    Ok(runs)
}

/// `x` with `digits` decimals, or "–" for a metric that had nothing to measure.
fn num(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(x) => format!("{x:.digits$}"),
        None => "–".to_string(),
    }
}

/// seq-rep-1 to seq-rep-4 of continuations, three decimals each.
fn seq_reps(c: &ContinuationReport) -> [String; 4] {
    [1, 2, 3, 4].map(|n| num(c.seq_rep(n), 3))
}

/// A share as a percentage with two decimals.
fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// Writes `<preset_dir>/REPORT.md` and `<preset_dir>/figures/*`.
pub fn write_report(preset_dir: &Path, preset: &str) -> Result<()> {
    let figures = preset_dir.join("figures");
    std::fs::create_dir_all(&figures)?;
    let open = load_runs(&preset_dir.join("open-ended"), Experiment::OpenEnded)?;
    let summ = load_runs(&preset_dir.join("summarization"), Experiment::Summarization)?;
    if open.is_empty() && summ.is_empty() {
        anyhow::bail!(
            "no finished runs under {} (run `cargo xtask reproduce all --preset {preset}` first)",
            preset_dir.display()
        );
    }

    let mut md = String::new();
    writeln!(md, "# ScaleGrad reproduction: preset `{preset}`\n")?;
    writeln!(
        md,
        "Written by `cargo xtask report --preset {preset}` from the run folders under `{}`. \
         Every number below is read from a run's `metrics.json`; the configs that produced \
         them are in each run folder (`config.toml`) and in `configs/{preset}/`.\n",
        preset_dir
            .strip_prefix(root())
            .unwrap_or(preset_dir)
            .display()
    )?;
    if !open.is_empty() {
        open_ended_section(&mut md, &open, &figures)?;
    }
    if !summ.is_empty() {
        summarization_section(&mut md, &summ, &figures)?;
    }
    provenance_section(&mut md, open.iter().chain(summ.iter()))?;

    let path = preset_dir.join("REPORT.md");
    scalegrad_fs::write_atomic(&path, md.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Training (lines) and validation (marked) NLL curves of the trained runs, one colour
/// per run.
fn loss_figure(runs: &[Run], stem: &Path, title: &str) -> Result<()> {
    let trained: Vec<&Run> = runs.iter().filter(|r| !r.metrics.is_initial()).collect();
    let series = |curve: fn(&Run) -> &Vec<(f64, f64)>, marked: bool| -> Vec<Series> {
        trained
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                label: r.label(),
                points: curve(r).clone(),
                marked,
                color: i,
            })
            .collect()
    };
    let train = series(|r| &r.train_curve, false);
    let valid = series(|r| &r.valid_curve, true);
    plot::two_panels(
        stem,
        &plot::TwoPanels {
            left: (
                &format!("{title}: training NLL"),
                "step",
                "nats / token",
                &train,
            ),
            right: (
                &format!("{title}: validation NLL"),
                "step",
                "nats / token",
                &valid,
            ),
        },
    )
}

/// A markdown table of the first three samples: the shared input column (named
/// `input`), then each run's output.
fn samples_table(md: &mut String, runs: &[Run], input: &str, title: &str) -> Result<()> {
    let with_samples: Vec<&Run> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    if with_samples.is_empty() {
        return Ok(());
    }
    writeln!(md, "### {title}\n")?;
    let clean = |text: &str| {
        text.replace('|', "\\|")
            .replace('\n', " ⏎ ")
            .chars()
            .take(600)
            .collect::<String>()
    };
    write!(md, "| {input} |")?;
    for r in &with_samples {
        write!(md, " {} |", r.label())?;
    }
    writeln!(md)?;
    writeln!(md, "|---|{}", "---|".repeat(with_samples.len()))?;
    for i in 0..3 {
        let Some((first_input, _)) = with_samples[0].samples.get(i) else {
            break;
        };
        write!(md, "| {} |", clean(first_input))?;
        for r in &with_samples {
            write!(
                md,
                " {} |",
                r.samples
                    .get(i)
                    .map(|(_, output)| clean(output))
                    .unwrap_or_default()
            )?;
        }
        writeln!(md)?;
    }
    writeln!(md)?;
    Ok(())
}

/// `path` relative to the workspace root when it lies inside it.
fn relative_to_root(path: &str) -> String {
    Path::new(path)
        .strip_prefix(root())
        .map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

fn provenance_section<'a>(md: &mut String, runs: impl Iterator<Item = &'a Run>) -> Result<()> {
    writeln!(md, "## Provenance\n")?;
    writeln!(
        md,
        "| run | config | git | backend | precision | device | steps | train time | train tokens/s | eval time |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---:|---:|---:|---:|")?;
    for r in runs {
        let p = &r.metrics.provenance;
        writeln!(
            md,
            "| {}/{} | `{}` | `{}` | {} | {} | {} | {} | {} s | {} | {} s |",
            r.metrics.experiment,
            r.name,
            relative_to_root(&p.config_file),
            p.git_revision,
            p.backend,
            p.precision,
            p.adapter.as_deref().unwrap_or(&p.device),
            p.steps,
            num(Some(p.train_seconds), 0),
            num(Some(p.train_tokens_per_s), 0),
            num(Some(p.eval_seconds), 0),
        )?;
    }
    writeln!(md)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Copies the committed demo run folders (metrics, logs and samples of a real
    /// `cargo xtask reproduce all --preset demo`, checkpoints left out) to a temporary
    /// preset folder.
    fn demo_preset() -> tempfile::TempDir {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let path = entry.unwrap().path();
                let target = to.join(path.file_name().unwrap());
                if path.is_dir() {
                    copy(&path, &target);
                } else {
                    std::fs::copy(&path, &target).unwrap();
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        copy(&root().join("xtask/fixtures/demo-run"), dir.path());
        dir
    }

    fn metric(run: &str, pointer: &str) -> f64 {
        let path = root()
            .join("xtask/fixtures/demo-run")
            .join(run)
            .join("metrics.json");
        let metrics: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        metrics.pointer(pointer).and_then(Value::as_f64).unwrap()
    }

    #[test]
    fn the_report_puts_every_run_and_the_papers_direction_side_by_side() {
        let preset = demo_preset();
        write_report(preset.path(), "demo").unwrap();
        let md = std::fs::read_to_string(preset.path().join("REPORT.md")).unwrap();

        // Rows in the order before, MLE, ScaleGrad, human, with the runs' own numbers.
        let row = |label: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| {label} |")))
                .unwrap_or_else(|| panic!("no row `{label}` in\n{md}"))
        };
        let mle_ppl = metric("open-ended/mle", "/open_ended/next_token/perplexity");
        let sg_ppl = metric("open-ended/sg0.2", "/open_ended/next_token/perplexity");
        assert!(
            row("MLE").contains(&format!("| {mle_ppl:.2} |")),
            "{}",
            row("MLE")
        );
        assert!(row("ScaleGrad γ=0.2").contains(&format!("| {sg_ppl:.2} |")));
        let order: Vec<usize> = [
            "| before fine-tuning |",
            "| MLE |",
            "| ScaleGrad γ=0.2 |",
            "| human |",
        ]
        .iter()
        .map(|label| md.find(label).unwrap_or_else(|| panic!("{label} missing")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");

        // The paper's direction beside ours, decided from the numbers.
        let mle_rep = metric(
            "open-ended/mle",
            "/open_ended/continuations/0/token/seq_rep_4",
        );
        let sg_rep = metric(
            "open-ended/sg0.2",
            "/open_ended/continuations/0/token/seq_rep_4",
        );
        let direction = md
            .lines()
            .find(|l| l.starts_with("| seq-rep-4 | lower"))
            .expect("direction row");
        assert!(
            direction.contains(&format!("| {mle_rep:.3} | {sg_rep:.3} |")),
            "{direction}"
        );
        let expected = if sg_rep < mle_rep {
            "| yes |"
        } else {
            "| no |"
        };
        assert!(direction.ends_with(expected), "{direction}");

        // ROUGE with its bootstrap interval, in percent.
        let r2 = metric(
            "summarization/sg0.8",
            "/summarization/rouge/rouge2/fmeasure",
        );
        assert!(row("ScaleGrad γ=0.8").contains(&format!("{:.2} [", r2 * 100.0)));
        // The bootstrap's settings as the runs record them.
        let resamples = metric(
            "summarization/mle",
            "/summarization/rouge/bootstrap/n_samples",
        );
        assert!(
            md.contains(&format!(
                "95% interval [low, high] ({resamples} resamples, seeded)"
            )),
            "{md}"
        );

        // Provenance names the config relative to the repository and every run.
        for run in ["open-ended/before", "open-ended/mle", "summarization/sg0.8"] {
            assert!(md.contains(&format!("| {run} |")), "{run}");
        }
        assert!(md.contains("| `configs/demo/open-ended-1-mle.toml` |"));

        // Figures exist in both formats and are referenced.
        for figure in [
            "open-ended-loss",
            "open-ended-seq-rep-4",
            "summarization-loss",
            "summarization-rouge2",
        ] {
            for ext in ["png", "svg"] {
                let path = preset
                    .path()
                    .join("figures")
                    .join(format!("{figure}.{ext}"));
                assert!(
                    std::fs::metadata(&path).unwrap().len() > 1000,
                    "{}",
                    path.display()
                );
            }
            assert!(md.contains(&format!("figures/{figure}.png")), "{figure}");
        }
    }

    /// A GPU run's device column names its adapter; a CPU run's, burn's device.
    #[test]
    fn the_provenance_names_the_gpu_a_run_ran_on() {
        let preset = demo_preset();
        let path = preset.path().join("open-ended/mle/metrics.json");
        let mut metrics = read_metrics(&path).unwrap();
        let cpu = metrics.provenance.device.clone();
        metrics.provenance.adapter = Some("NVIDIA H200".to_string());
        std::fs::write(&path, metrics.to_json()).unwrap();
        write_report(preset.path(), "demo").unwrap();
        let md = std::fs::read_to_string(preset.path().join("REPORT.md")).unwrap();
        let row = |run: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| {run} |")) && l.contains("` |"))
                .unwrap()
                .to_string()
        };
        let gpu = row("open-ended/mle");
        assert!(
            gpu.contains("| NVIDIA H200 |") && !gpu.contains(&cpu),
            "{gpu}"
        );
        let other = row("open-ended/before");
        assert!(other.contains(&format!("| {cpu} |")), "{other}");
    }

    /// Copies the run `from` of `experiment` to a new run `name` trained with `objective`.
    fn add_run(
        preset: &Path,
        experiment: &str,
        from: &str,
        name: &str,
        objective: ObjectiveRecord,
    ) {
        let dir = preset.join(experiment);
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["log.jsonl", "samples.jsonl"] {
            std::fs::copy(dir.join(from).join(file), to.join(file)).unwrap();
        }
        let mut metrics = read_metrics(&dir.join(from).join("metrics.json")).unwrap();
        metrics.objective = objective;
        metrics.run = name.to_string();
        std::fs::write(to.join("metrics.json"), metrics.to_json()).unwrap();
    }

    /// The unlikelihood baseline and a gamma sweep land in the same tables and figures as
    /// MLE and ScaleGrad, in the order before, MLE, ScaleGrad by decreasing gamma, UL.
    #[test]
    fn unlikelihood_and_a_gamma_sweep_join_the_tables_and_figures() {
        let preset = demo_preset();
        let ul = ObjectiveRecord::Unlikelihood { alpha: 1.0 };
        add_run(preset.path(), "open-ended", "mle", "ul1.0", ul);
        add_run(preset.path(), "summarization", "mle", "ul1.0", ul);
        let sg = ObjectiveRecord::ScaleGrad { gamma: 0.5 };
        add_run(preset.path(), "open-ended", "sg0.2", "sg0.5", sg);
        write_report(preset.path(), "demo").unwrap();
        let md = std::fs::read_to_string(preset.path().join("REPORT.md")).unwrap();

        let open = &md[..md.find("## Summarization").unwrap()];
        let order: Vec<usize> = [
            "| before fine-tuning |",
            "| MLE |",
            "| ScaleGrad γ=0.5 |",
            "| ScaleGrad γ=0.2 |",
            "| UL α=1.0 |",
            "| human |",
        ]
        .iter()
        .map(|label| {
            open.find(label)
                .unwrap_or_else(|| panic!("{label} missing"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        let summ = &md[md.find("## Summarization").unwrap()..];
        assert!(summ.contains("| UL α=1.0 |"), "{summ}");
        // Samples side by side have a UL column.
        assert!(md.contains("| ScaleGrad γ=0.2 | UL α=1.0 |"), "{md}");
        // The figures label the run; three gammas (MLE as 1.0) make the sweep figure.
        let figures = preset.path().join("figures");
        for figure in ["open-ended-seq-rep-4", "summarization-rouge2"] {
            let svg = std::fs::read_to_string(figures.join(format!("{figure}.svg"))).unwrap();
            assert!(svg.contains("UL α=1.0"), "{figure}");
        }
        assert!(figures.join("open-ended-gamma.png").exists());
        assert!(md.contains("figures/open-ended-gamma.png"));
    }

    #[test]
    fn an_empty_preset_is_an_error_naming_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_report(dir.path(), "demo").unwrap_err().to_string();
        assert!(
            err.contains("cargo xtask reproduce all --preset demo"),
            "{err}"
        );
    }
}
