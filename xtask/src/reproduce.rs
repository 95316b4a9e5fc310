//! `cargo xtask reproduce`: runs an experiment grid with the release CLI, then the report.
//!
//! A preset is a folder `configs/<preset>/` of run configs (one TOML file per run). For
//! each config of the chosen experiments, in file-name order, it runs
//! `scalegrad train --config FILE --out OUT/<preset>`. A run whose `metrics.json`
//! exists is finished and skipped; an interrupted run resumes from its last checkpoint
//! (`--resume` is passed for it). Afterwards it writes the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::util::{cargo, root, run as spawn};

/// Which experiments to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Both experiments.
    All,
    /// GPT-2 language modelling and continuation.
    OpenEnded,
    /// BERT2BERT summarisation.
    Summarization,
}

/// Arguments of `cargo xtask reproduce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which experiments.
    #[arg(value_enum)]
    target: Target,
    /// Config preset: a folder under configs/ (demo, full, gamma-sweep).
    #[arg(long, default_value = "demo")]
    preset: String,
    /// Execution backend; the CLI is built with this cargo feature.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Output folder; runs go to OUT/<preset>/<experiment>/<run>.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Only list the runs that would be executed.
    #[arg(long)]
    dry_run: bool,
    /// Runs at once: the experiments' chains side by side (default: 2 on the CPU
    /// backends, 1 on GPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Pass `--max-steps N` to every run (a smoke test of the wiring, used by CI); the
    /// runs go to OUT/<preset>-smoke<N> and always start over.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Build the CLI with gemm's AVX-512 matrix kernels (the `x86-v4` feature, picked at
    /// run time, so the binary still runs without AVX-512): CPU training and decoding about
    /// 15-25% faster on an AVX-512 machine, for about 3.5 more minutes of release build
    /// (no gain on GPU backends or for the demo's tiny models, whose whole grid runs in
    /// under 3 minutes).
    #[arg(long)]
    avx512: bool,
    /// With `--backend wgpu`: build in burn's SPIR-V compiler (the CLI's `vulkan`
    /// feature), what a Vulkan GPU wants (Linux, Windows; cooperative-matrix kernels for
    /// half inputs). Not the default: Mesa's software Vulkan (lavapipe 22.3) crashes
    /// compiling its kernels.
    #[arg(long)]
    vulkan: bool,
}

/// A run config with the fields the orchestration needs.
#[derive(Debug)]
pub struct RunEntry {
    /// The config file.
    pub path: PathBuf,
    /// `run.experiment`.
    pub experiment: String,
    /// `run.name`.
    pub name: String,
}

/// Reads the configs of a preset, sorted by file name.
pub fn preset_runs(preset: &str) -> Result<Vec<RunEntry>> {
    let dir = root().join("configs").join(preset);
    if !dir.is_dir() {
        let known: Vec<String> = std::fs::read_dir(root().join("configs"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "no preset `{preset}` (configs/{preset}/); known presets: {}",
            known.join(", ")
        );
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let value: toml::Table =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            let run = value
                .get("run")
                .and_then(|r| r.as_table())
                .with_context(|| format!("{}: missing [run] table", path.display()))?;
            let field = |key: &str| {
                run.get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .with_context(|| format!("{}: missing run.{key}", path.display()))
            };
            Ok(RunEntry {
                experiment: field("experiment")?,
                name: field("name")?,
                path,
            })
        })
        .collect()
}

/// The `scalegrad` binary built for `backend`.
pub fn build_cli(backend: &str, avx512: bool, vulkan: bool) -> Result<PathBuf> {
    if vulkan && backend != "wgpu" {
        bail!("--vulkan goes with --backend wgpu (it builds wgpu's SPIR-V compiler)");
    }
    let features = match backend {
        "flex" => "flex",
        "ndarray" => "ndarray",
        "wgpu" if vulkan => "flex,vulkan",
        "wgpu" => "flex,wgpu",
        "cuda" => "flex,cuda",
        "tch" => "flex,tch",
        other => bail!("unknown backend `{other}`; expected flex, ndarray, wgpu, cuda or tch"),
    };
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "-p",
        "scalegrad-cli",
        "--features",
        features,
    ]);
    if avx512 {
        cmd.args(crate::util::cpu_kernel_features("scalegrad-cli"));
    }
    if backend == "tch" {
        for (key, value) in crate::libtorch::libtorch_env()? {
            cmd.env(key, value);
        }
    }
    spawn(&mut cmd).with_context(|| format!("building the CLI with the `{backend}` backend"))?;
    Ok(root().join("target/release/scalegrad"))
}

/// Entry point of `cargo xtask reproduce`.
pub fn run(args: Args) -> Result<()> {
    let runs: Vec<RunEntry> = preset_runs(&args.preset)?
        .into_iter()
        .filter(|r| match args.target {
            Target::All => true,
            Target::OpenEnded => r.experiment == "open-ended",
            Target::Summarization => r.experiment == "summarization",
        })
        .collect();
    if runs.is_empty() {
        bail!("preset `{}` has no {:?} runs", args.preset, args.target);
    }
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root().join(&args.out)
    };
    // A `--max-steps` smoke run writes beside the real runs, never over them.
    let preset_out = match args.max_steps {
        Some(n) => out.join(format!("{}-smoke{n}", args.preset)),
        None => out.join(&args.preset),
    };
    if args.dry_run {
        for r in &runs {
            let state = run_state(&preset_out.join(&r.experiment).join(&r.name));
            println!(
                "{:<14} {:<24} {:<10} {}",
                r.experiment,
                r.name,
                state,
                r.path.display()
            );
        }
        return Ok(());
    }

    let started = Instant::now();
    let cli = build_cli(&args.backend, args.avx512, args.vulkan)?;
    let total = runs.len();
    let jobs = args.jobs.unwrap_or(match args.backend.as_str() {
        // burn's CPU backends keep about one core busy on these small models, so the two
        // experiments' chains run side by side; a GPU is better left to one run at a time.
        "flex" | "ndarray" => 2,
        _ => 1,
    });
    // One chain per experiment, each run in file-name order (the "before" run first).
    let mut chains: Vec<Vec<(usize, &RunEntry)>> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        match chains
            .iter_mut()
            .find(|c| c[0].1.experiment == r.experiment)
        {
            Some(chain) => chain.push((i, r)),
            None => chains.push(vec![(i, r)]),
        }
    }
    let context = RunContext {
        cli: &cli,
        args: &args,
        preset_out: &preset_out,
        total,
        prefixed: jobs > 1 && chains.len() > 1,
    };
    if context.prefixed {
        eprintln!(
            "running the {} experiments side by side; each line is prefixed with its run",
            chains.len()
        );
        std::thread::scope(|scope| -> Result<()> {
            let handles: Vec<_> = chains
                .iter()
                .map(|chain| scope.spawn(|| context.run_chain(chain)))
                .collect();
            let mut errors = handles
                .into_iter()
                .filter_map(|h| h.join().expect("a reproduce worker panicked").err());
            let first = errors.next();
            // The first failure is returned; any other is printed here.
            for other in errors {
                eprintln!("error: {other:#}");
            }
            first.map_or(Ok(()), Err)
        })?;
    } else {
        for chain in &chains {
            context.run_chain(chain)?;
        }
    }
    eprintln!(
        "all {total} runs done in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    crate::report::write_report(&preset_out, &args.preset)?;
    Ok(())
}

/// What every run of a reproduce call shares.
struct RunContext<'a> {
    cli: &'a Path,
    args: &'a Args,
    preset_out: &'a Path,
    total: usize,
    /// Several runs at once: capture each run's output and prefix its lines.
    prefixed: bool,
}

impl RunContext<'_> {
    /// Runs one experiment's configs in order; stops at the first failure.
    fn run_chain(&self, chain: &[(usize, &RunEntry)]) -> Result<()> {
        for &(i, r) in chain {
            self.run_one(i, r)?;
        }
        Ok(())
    }

    fn run_one(&self, i: usize, r: &RunEntry) -> Result<()> {
        let (args, total) = (self.args, self.total);
        let run_dir = self.preset_out.join(&r.experiment).join(&r.name);
        if run_dir.join("metrics.json").exists() && args.max_steps.is_none() {
            eprintln!(
                "[{}/{total}] {}/{}: finished, skipping",
                i + 1,
                r.experiment,
                r.name
            );
            return Ok(());
        }
        eprintln!(
            "[{}/{total}] {}/{} ({})",
            i + 1,
            r.experiment,
            r.name,
            run_state(&run_dir)
        );
        // Relative to the workspace root (the child's directory), so the provenance
        // recorded in metrics.json does not depend on where the clone lives.
        let config = r.path.strip_prefix(root()).unwrap_or(&r.path);
        let mut cmd = Command::new(self.cli);
        cmd.current_dir(root())
            .arg("train")
            .arg("--config")
            .arg(config)
            .arg("--out")
            .arg(self.preset_out)
            .arg("--backend")
            .arg(&args.backend);
        if let Some(steps) = args.max_steps {
            // A smoke run always starts over (in its own folder, see `preset_out`).
            cmd.arg("--max-steps")
                .arg(steps.to_string())
                .arg("--restart");
        } else if run_state(&run_dir) == "resumable" {
            cmd.arg("--resume");
        }
        if args.backend == "tch" {
            for (key, value) in crate::libtorch::libtorch_env()? {
                cmd.env(key, value);
            }
        }
        let what = || format!("run {}/{} ({})", r.experiment, r.name, r.path.display());
        if self.prefixed {
            run_prefixed(&mut cmd, &format!("{}/{}", r.experiment, r.name)).with_context(what)
        } else {
            spawn(&mut cmd).with_context(what)
        }
    }
}

/// Runs `cmd` with its standard output and error captured, printing every line to our
/// standard error behind `[label]`. The child sees pipes, so its progress is plain lines.
fn run_prefixed(cmd: &mut Command, label: &str) -> Result<()> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    eprintln!("[{label}] $ {}", crate::util::describe(cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{}`", crate::util::describe(cmd)))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::scope(|scope| {
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            scope.spawn(move || {
                for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                    // Progress bars redraw with carriage returns; keep the last state.
                    let line = line.rsplit('\r').next().unwrap_or_default();
                    if !line.trim().is_empty() {
                        eprintln!("[{label}] {line}");
                    }
                }
            });
        }
    });
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed with {status}", crate::util::describe(cmd));
    }
    Ok(())
}

/// `finished`, `resumable` or `new`, from what the run folder holds.
fn run_state(run_dir: &Path) -> &'static str {
    if run_dir.join("metrics.json").exists() {
        "finished"
    } else if run_dir.join("checkpoints").is_dir() {
        "resumable"
    } else {
        "new"
    }
}
