//! The run folder before any work: started over on `--restart`, left alone when the run
//! is finished, refused when it holds an interrupted run and `--resume` was not given.

use std::path::Path;

use super::{Result, RunError, RunOptions, io_err};
use crate::trainer::TrainError;

/// What [`prepare`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// `metrics.json` exists: nothing to do.
    Finished,
    /// The folder exists and holds the config: the run can start or resume.
    Ready,
}

/// Makes `dir` ready for the run `opts` asks for, and writes the config into it first,
/// so even a run that fails at once says what it was.
pub(super) fn prepare(opts: &RunOptions, dir: &Path) -> Result<State> {
    if opts.restart && dir.exists() {
        ensure_run_folder(&opts.out, dir)?;
        std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    if dir.join("metrics.json").exists() {
        eprintln!(
            "{} is finished (metrics.json exists); pass --restart to run it again",
            dir.display()
        );
        return Ok(State::Finished);
    }
    let has_checkpoints = !crate::checkpoint::list(dir)
        .map_err(TrainError::from)?
        .is_empty();
    if has_checkpoints && !opts.resume {
        return Err(RunError::RunFolder(format!(
            "{} already holds checkpoints of an interrupted run; pass --resume to continue it \
             or --restart to start over",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let config_text =
        std::fs::read_to_string(&opts.config_path).map_err(io_err(&opts.config_path))?;
    let config_copy = dir.join("config.toml");
    scalegrad_fs::write_atomic(&config_copy, config_text.as_bytes())
        .map_err(io_err(&config_copy))?;
    Ok(State::Ready)
}

/// Refuses to let `--restart` delete `dir` unless it is a run folder (it holds a run's
/// `config.toml`, `log.jsonl`, `metrics.json` or checkpoints) and lies inside `out`: a
/// folder the user made, or one a changed config points at by mistake, is never removed.
fn ensure_run_folder(out: &Path, dir: &Path) -> Result<()> {
    let refuse = |why: &str| {
        Err(RunError::RunFolder(format!(
            "--restart would delete {}, but {why}; remove it yourself if that is what you \
             want, or pick another run.name or --out",
            dir.display()
        )))
    };
    let (Ok(out), Ok(real)) = (out.canonicalize(), dir.canonicalize()) else {
        return refuse("its path cannot be resolved");
    };
    if real == out || !real.starts_with(&out) {
        return refuse(&format!(
            "it is not inside the output folder {}",
            out.display()
        ));
    }
    let marked = ["config.toml", "log.jsonl", "metrics.json"]
        .iter()
        .any(|f| dir.join(f).is_file())
        || !crate::checkpoint::list(dir)
            .map_err(TrainError::from)?
            .is_empty();
    if !marked {
        return refuse("it holds no run (no config.toml, log.jsonl, metrics.json or checkpoint)");
    }
    Ok(())
}
