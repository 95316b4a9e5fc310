//! Fault injection: a demo-sized training run is killed with SIGKILL at seeded random
//! moments (some while a checkpoint is being written), resumed each time, and must end
//! with the same numbers as a run that was never interrupted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{self, succeeded};
use serde_json::Value;

/// The open-ended demo cut to 12 steps of batch 4, validating every 4 steps,
/// checkpointing every 2 and logging every 3 (so a resumed run must restore the log
/// window open at its checkpoint): a second or two of work on two cores, with many
/// checkpoint, best-model and log writes to land in.
fn config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/demo/open-ended-2-sg0.2.toml"),
    )
    .unwrap();
    let reduced = text
        .replace("max_valid_examples = 64", "max_valid_examples = 8")
        .replace("max_windows = 64", "max_windows = 2")
        .replace("max_continuations = 100", "max_continuations = 4")
        .replace("warmup_steps = 20", "warmup_steps = 2")
        .replace("steps = 200", "steps = 12")
        .replace("batch_size = 16", "batch_size = 4")
        .replace("eval_every = 50", "eval_every = 4\ncheckpoint_every = 2")
        .replace("log_every = 10", "log_every = 3");
    let path = dir.join("crash.toml");
    std::fs::write(&path, reduced).unwrap();
    path
}

fn train(config: &Path, out: &Path, cache: &Path) -> std::process::Command {
    let mut cmd = common::scalegrad();
    cmd.args(["train", "--resume", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .env("HF_HUB_OFFLINE", "1")
        .env("SCALEGRAD_CACHE", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// What must not depend on interruptions: every metric (provenance's clocks and the
/// throughput aside), the samples, the log's events (without tokens/s) and the tokenizer.
fn outcome(out: &Path) -> (Value, String, Vec<Value>, Vec<u8>) {
    let run = out.join("open-ended/sg0.2");
    let mut metrics: Value = common::json(&run.join("metrics.json"));
    let steps = metrics["provenance"]["steps"].clone();
    metrics["provenance"] = steps;
    let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    let events = std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).unwrap();
            e.as_object_mut().unwrap().remove("tokens_per_s");
            e
        })
        .collect();
    let tokenizer = common::trained_tokenizer(&out.join("open-ended"));
    (metrics, samples, events, tokenizer)
}

/// A folder being written under a staging name: a checkpoint or the best model.
fn staging(out: &Path) -> Option<PathBuf> {
    let run = out.join("open-ended/sg0.2");
    let best = run.join("best.tmp");
    if best.exists() {
        return Some(best);
    }
    std::fs::read_dir(run.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tmp"))
}

/// A git repository with one commit, unrelated to this workspace.
fn other_repository(dir: &Path) -> PathBuf {
    let repo = dir.join("elsewhere");
    std::fs::create_dir_all(&repo).unwrap();
    for args in [
        &["init", "-q"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "unrelated",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
    repo
}

/// SplitMix64: seeded delays, so a failure names a reproducible schedule.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result() {
    const KILLS: usize = 12;
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let cache = tmp.path().join("cache");

    let reference_out = tmp.path().join("reference");
    // Run from inside another git repository: the provenance must still name the
    // revision the binary was built from.
    let elsewhere = other_repository(tmp.path());
    let started = Instant::now();
    let reference = train(&config, &reference_out, &cache)
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    succeeded(&reference);
    let span = started.elapsed();
    let metrics: Value = common::json(&reference_out.join("open-ended/sg0.2/metrics.json"));
    assert_eq!(
        metrics["provenance"]["git_revision"],
        env!("SCALEGRAD_GIT_REVISION"),
        "the build's revision, not that of {}",
        elsewhere.display()
    );
    let expected = outcome(&reference_out);
    assert_eq!(expected.0["provenance"], 12);

    let mut seed = 0x5CA1_E64A_D000_0013u64;
    let (mut kills, mut in_writes, mut lives) = (0, 0, 0);
    let mut schedule = Vec::new();
    while kills < KILLS {
        lives += 1;
        let out = tmp.path().join(format!("life-{lives}"));
        loop {
            let mut child = train(&config, &out, &cache).spawn().unwrap();
            // Half the kills at a random moment of the run's span, half as soon as a
            // checkpoint or best model is seen being written.
            let at_write = kills % 2 == 1;
            let deadline = Instant::now()
                + if at_write {
                    span * 2
                } else {
                    span.mul_f64((next(&mut seed) % 1000) as f64 / 1000.0)
                };
            let mut exited = None;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().unwrap() {
                    exited = Some(status);
                    break;
                }
                if at_write && staging(&out).is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            if exited.is_none() {
                exited = child.try_wait().unwrap();
            }
            if let Some(status) = exited {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(status.success(), "a resumed run failed ({status}):\n{err}");
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            // The staging folder outlives the process only when the kill interrupted it.
            let interrupted_write = staging(&out).is_some();
            in_writes += usize::from(interrupted_write);
            let checkpoints = std::fs::read_dir(out.join("open-ended/sg0.2/checkpoints"))
                .map_or(0, |d| d.count());
            schedule.push(format!(
                "life {lives} kill {kills}: {} ({checkpoints} checkpoint entries{})",
                if at_write { "at a write" } else { "at random" },
                if interrupted_write { ", mid-write" } else { "" }
            ));
            if kills >= KILLS {
                // Finish this life without further kills.
                succeeded(&train(&config, &out, &cache).output().unwrap());
                break;
            }
        }
        let got = outcome(&out);
        assert_eq!(got.0, expected.0, "metrics after {schedule:#?}");
        assert_eq!(got.1, expected.1, "samples after {schedule:#?}");
        assert_eq!(got.2, expected.2, "log after {schedule:#?}");
        assert_eq!(got.3, expected.3, "tokenizer after {schedule:#?}");
    }
    assert!(
        in_writes >= 1,
        "no kill landed inside a checkpoint or best-model write: {schedule:#?}"
    );
    eprintln!("{kills} kills over {lives} runs, {in_writes} mid-write: {schedule:#?}");
}

/// A run stopped after `steps` steps (a checkpoint at the stop), in `out`.
fn interrupted(config: &Path, out: &Path, cache: &Path, steps: &str) {
    succeeded(
        &train(config, out, cache)
            .args(["--max-steps", steps])
            .output()
            .unwrap(),
    );
}

/// Every file under `dir` with its contents, for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn resume_refuses_a_config_that_changes_training_and_accepts_evaluation_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    interrupted(&config, &out, &cache, "2");
    std::fs::remove_file(out.join("open-ended/sg0.2/metrics.json")).unwrap();
    let before = snapshot(&out);

    let text = std::fs::read_to_string(&config).unwrap();
    let changed = text
        .replace("lr = 2e-3", "lr = 1e-3")
        .replace("steps = 12", "steps = 14");
    std::fs::write(&config, &changed).unwrap();
    let refused = train(&config, &out, &cache).output().unwrap();
    let message = common::failure(&refused);
    for needle in [
        "optimizer.lr: 0.002 -> 0.001",
        "training.steps: 12 -> 14",
        "--restart",
        "step-0000002",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(!message.contains("evaluation."), "{message}");
    // config.toml is written before training; everything else is as it was.
    let after: Vec<_> = snapshot(&out)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("config.toml"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.ends_with("config.toml"))
        .collect();
    assert!(after == before, "a refused resume changed the run folder");

    // Evaluation and logging keys may change.
    std::fs::write(
        &config,
        text.replace("max_windows = 2", "max_windows = 1")
            .replace("log_every = 3", "log_every = 2"),
    )
    .unwrap();
    let resumed = train(&config, &out, &cache).output().unwrap();
    succeeded(&resumed);
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming from"));
}

#[test]
fn a_failed_write_stops_with_one_message_and_keeps_what_was_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path());
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    interrupted(&config, &out, &cache, "2");
    let run = out.join("open-ended/sg0.2");
    std::fs::remove_file(run.join("metrics.json")).unwrap();
    let checkpoint = snapshot(&run.join("checkpoints"));
    let best = snapshot(&run.join("best"));
    let outside: Vec<_> = snapshot(&out)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&run))
        .collect();

    // A 2 MiB file-size limit (the model files are ~4 MB): every write past it fails
    // with EFBIG, as on a full disk; SIGXFSZ is ignored so the write returns an error.
    let cmd = train(&config, &out, &cache);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut limited = std::process::Command::new("bash");
    if let Some(dir) = cmd.get_current_dir() {
        limited.current_dir(dir);
    }
    limited
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("SCALEGRAD_CACHE", &cache);
    let failed = limited.output().unwrap();
    let message = common::failure(&failed);
    assert!(!message.contains("panicked"), "{message}");
    for needle in [
        "saving the best model of step 4 failed",
        "step-0000002 is intact",
        "--out",
        "--resume",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(
        snapshot(&run.join("checkpoints")) == checkpoint,
        "the checkpoint changed"
    );
    assert!(
        snapshot(&run.join("best")) == best,
        "the best model changed"
    );
    let outside_after: Vec<_> = snapshot(&out)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&run))
        .collect();
    assert!(
        outside_after == outside,
        "files outside the run folder changed"
    );

    // With room again, the run resumes from the intact checkpoint and finishes.
    let resumed = train(&config, &out, &cache).output().unwrap();
    succeeded(&resumed);
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("step 2"));
}
