//! Running the `scalegrad` binary and reading what it printed, for every CLI test.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The binary without the user's Hugging Face settings, so that no test reads the real
/// cache or reaches for the network unless it sets them itself. It runs in `tests/cubecl`,
/// whose cubecl.toml makes autotune try fewer candidate kernels and time each once (see
/// that file); the tests pass absolute paths for everything they read or write.
pub fn scalegrad() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalegrad"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cubecl"));
    for var in [
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "HF_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run scalegrad")
}

/// Standard output of a run that must have succeeded (else the panic shows its stderr).
pub fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "scalegrad failed ({:?}); stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a run that must have failed.
pub fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output as one JSON object, whatever the exit status.
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON object ({err}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Standard output of a successful run as one JSON object.
pub fn success_json(out: &Output) -> Value {
    succeeded(out);
    stdout_json(out)
}

/// Standard output of a successful run as JSON lines.
pub fn json_lines(out: &Output) -> Vec<Value> {
    succeeded(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// A JSON file.
pub fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The events of a run folder's `log.jsonl`.
pub fn events(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `tokenizer.json` a run trained, from its experiment folder (`OUT/<experiment>`).
pub fn trained_tokenizer(experiment_dir: &Path) -> Vec<u8> {
    let dir = std::fs::read_dir(experiment_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("_tokenizer")
        })
        .expect("a trained tokenizer folder");
    std::fs::read(dir.join("tokenizer.json")).unwrap()
}
