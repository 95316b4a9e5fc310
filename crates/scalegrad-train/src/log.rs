//! The run's event log (`log.jsonl`) and its progress display.
//!
//! Every logged training step and every evaluation is one JSON object per line. When a
//! run resumes from a checkpoint, events after the checkpoint's step are dropped first,
//! so the log of a resumed run reads like the log of an uninterrupted one.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
pub use scalegrad_results::log::{Event, read_events};
use scalegrad_results::to_jsonl;

/// An append-only writer of `log.jsonl`.
pub struct RunLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl RunLog {
    /// Opens the log for a run that starts fresh (`resume_step = None`, any old log is
    /// replaced) or resumes after `resume_step` (later events are dropped).
    /// Errors name the file.
    pub fn open(path: &Path, resume_step: Option<usize>) -> std::io::Result<Self> {
        Self::open_inner(path, resume_step)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    fn open_inner(path: &Path, resume_step: Option<usize>) -> std::io::Result<Self> {
        let kept: Vec<Event> = match resume_step {
            Some(step) if path.exists() => read_events(path)?
                .into_iter()
                .filter(|e| e.step() <= step)
                .collect(),
            _ => Vec::new(),
        };
        scalegrad_fs::write_atomic(path, to_jsonl(&kept).as_bytes())?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends an event and flushes it, so a crash loses nothing already logged.
    pub fn write(&mut self, event: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Flushes and fsyncs what was appended, so that the events before a checkpoint
    /// survive a power loss as the checkpoint does.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Progress of a loop: an indicatif bar on a terminal, a plain line every few seconds
/// otherwise (logs of CI and `reproduce` stay readable).
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    position: u64,
    started: Instant,
    last_line: Instant,
    message: String,
}

impl Progress {
    /// A progress display for `total` units of work starting at `position`.
    pub fn new(label: &str, total: u64, position: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total).with_position(position);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}, \
                     {per_sec}] {msg}",
                )
                .expect("valid template"),
            );
            bar.set_prefix(label.to_string());
            bar.reset_eta();
            bar
        });
        Self {
            bar,
            label: label.to_string(),
            total,
            position,
            started: Instant::now(),
            last_line: Instant::now(),
            message: String::new(),
        }
    }

    /// Advances by `n` units with a status message (loss, lr, tokens/s).
    pub fn advance(&mut self, n: u64, message: impl Into<String>) {
        self.position += n;
        self.message = message.into();
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.position);
                bar.set_message(self.message.clone());
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(10)
                    || self.position == self.total
                {
                    self.last_line = Instant::now();
                    eprintln!(
                        "{} {}/{} ({:.0}s) {}",
                        self.label,
                        self.position,
                        self.total,
                        self.started.elapsed().as_secs_f64(),
                        self.message
                    );
                }
            }
        }
    }

    /// Prints a line above the bar (or plainly).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.println(line.as_ref()),
            None => eprintln!("{}", line.as_ref()),
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(step: usize) -> Event {
        Event::Train {
            step,
            loss: 1.0 / step as f64,
            nll: 1.0,
            lr: 1e-3,
            grad_norm: 0.5,
            tokens_per_s: 100.0,
            novel_fraction: 0.5,
            loss_scale: None,
            skipped: 0,
        }
    }

    #[test]
    fn resuming_drops_events_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = RunLog::open(&path, None).unwrap();
        for step in 1..=6 {
            log.write(&train(step)).unwrap();
        }
        drop(log);
        let mut log = RunLog::open(&path, Some(4)).unwrap();
        log.write(&train(5)).unwrap();
        drop(log);
        let steps: Vec<usize> = read_events(&path)
            .unwrap()
            .iter()
            .map(Event::step)
            .collect();
        assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn resuming_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = RunLog::open(&path, None).unwrap();
        for step in 1..=3 {
            log.write(&train(step)).unwrap();
        }
        drop(log);
        // A crash in the middle of appending step 4's line.
        let whole = serde_json::to_string(&train(4)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&whole.as_bytes()[..whole.len() / 2]).unwrap();
        drop(f);
        let mut log = RunLog::open(&path, Some(3)).unwrap();
        log.write(&train(4)).unwrap();
        drop(log);
        let events = read_events(&path).unwrap();
        assert_eq!(
            events.iter().map(Event::step).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(events[3], train(4));
    }

    #[test]
    fn a_bad_line_before_the_end_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let good = serde_json::to_string(&train(1)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"event\": \"tr\n{good}\n")).unwrap();
        let err = RunLog::open(&path, Some(1)).err().expect("a damaged log");
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert_eq!(message.matches("log.jsonl").count(), 1, "{message}");
        // Nothing was rewritten.
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"tr\n"));
    }

    #[test]
    fn a_fresh_run_replaces_an_old_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = RunLog::open(&path, None).unwrap();
        log.write(&train(1)).unwrap();
        drop(log);
        RunLog::open(&path, None).unwrap();
        assert!(read_events(&path).unwrap().is_empty());
    }
}
