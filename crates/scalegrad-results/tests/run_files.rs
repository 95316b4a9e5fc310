//! The types read what the trainer wrote: the committed run folders of a real demo
//! reproduction (`xtask/fixtures/demo-run`) parse, and nothing in them is dropped or
//! renamed on the way.

use std::path::{Path, PathBuf};

use scalegrad_results::{
    ContinuationSample, Event, ObjectiveRecord, ReadError, RunMetrics, SummarySample, read_events,
    read_metrics, read_samples, to_jsonl,
};
use serde_json::Value;

fn demo_runs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/fixtures/demo-run");
    let mut runs = Vec::new();
    for experiment in ["open-ended", "summarization"] {
        for entry in std::fs::read_dir(root.join(experiment)).unwrap() {
            runs.push(entry.unwrap().path());
        }
    }
    runs.sort();
    assert_eq!(runs.len(), 6, "{runs:?}");
    runs
}

/// Every leaf of `written` is in `read` with the same value (`read` may add defaults).
fn assert_kept(written: &Value, read: &Value, path: &str) {
    match written {
        Value::Object(map) => {
            for (key, value) in map {
                let inner = read
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}/{key} was dropped"));
                assert_kept(value, inner, &format!("{path}/{key}"));
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                assert_kept(value, &read[i], &format!("{path}/{i}"));
            }
        }
        leaf => assert_eq!(leaf, read, "{path}"),
    }
}

#[test]
fn metrics_of_real_runs_read_back_whole() {
    for run in demo_runs() {
        let path = run.join("metrics.json");
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let metrics = read_metrics(&path).unwrap();
        assert_kept(&written, &serde_json::to_value(&metrics).unwrap(), "");
        // The experiment's own section, and only it.
        let open = run.parent().unwrap().ends_with("open-ended");
        assert_eq!(metrics.open_ended.is_some(), open, "{}", run.display());
        assert_eq!(metrics.summarization.is_some(), !open, "{}", run.display());
        // Written again, the file reads back to the same value.
        let again: RunMetrics = serde_json::from_str(&metrics.to_json()).unwrap();
        assert_eq!(again, metrics);
    }
}

#[test]
fn the_runs_say_what_they_trained_and_from_where() {
    let runs = demo_runs();
    let metrics = |name: &str| {
        let run = runs.iter().find(|r| r.ends_with(name)).unwrap();
        read_metrics(&run.join("metrics.json")).unwrap()
    };
    let before = metrics("open-ended/before");
    assert!(before.is_initial());
    assert_eq!(before.checkpoint.valid_nll, None);
    let sg = metrics("open-ended/sg0.2");
    assert!(!sg.is_initial());
    assert_eq!(sg.objective, ObjectiveRecord::ScaleGrad { gamma: 0.2 });
    assert_eq!(sg.objective.label(), "ScaleGrad γ=0.2");
    assert_eq!(sg.objective.gamma(), Some(0.2));
    assert_eq!(metrics("summarization/mle").objective.gamma(), Some(1.0));
    // Runs written before mixed precision say nothing of it: they computed in f32.
    assert_eq!(sg.provenance.precision, "f32");
    assert_eq!(
        ObjectiveRecord::Unlikelihood { alpha: 1.0 }.label(),
        "UL α=1.0"
    );
}

#[test]
fn samples_and_logs_of_real_runs_read_back() {
    for run in demo_runs() {
        let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
        let lines = samples.lines().count();
        let again = if run.parent().unwrap().ends_with("open-ended") {
            let read: Vec<ContinuationSample> = read_samples(&run.join("samples.jsonl")).unwrap();
            assert_eq!(read.len(), lines);
            to_jsonl(&read)
        } else {
            let read: Vec<SummarySample> = read_samples(&run.join("samples.jsonl")).unwrap();
            assert_eq!(read.len(), lines);
            to_jsonl(&read)
        };
        let values = |text: &str| -> Vec<Value> {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert_eq!(values(&again), values(&samples), "{}", run.display());

        let log = run.join("log.jsonl");
        if run.ends_with("before") {
            assert!(!log.exists(), "an evaluation-only run trains nothing");
            continue;
        }
        let events = read_events(&log).unwrap();
        let valid = events
            .iter()
            .filter(|e| matches!(e, Event::Valid { .. }))
            .count();
        assert!(valid > 0 && events.len() > valid, "{}", run.display());
        assert!(events.windows(2).all(|w| w[0].step() <= w[1].step()));
    }
}

#[test]
fn a_damaged_file_is_an_error_naming_it_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.jsonl");
    let good = r#"{"id":"a","article":"x","reference":"y","summary":"z","summary_ids":[1]}"#;
    std::fs::write(&path, format!("{good}\n{{\"id\": 3}}\n")).unwrap();
    let err = read_samples::<SummarySample>(&path).unwrap_err();
    assert!(
        matches!(err, ReadError::Format { line: Some(2), .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("samples.jsonl line 2"), "{message}");

    let metrics = dir.path().join("metrics.json");
    std::fs::write(&metrics, r#"{"experiment": "open-ended"}"#).unwrap();
    let message = read_metrics(&metrics).unwrap_err().to_string();
    assert!(
        message.contains("metrics.json") && message.contains("run"),
        "{message}"
    );
    let missing = read_metrics(&dir.path().join("none.json")).unwrap_err();
    assert!(matches!(missing, ReadError::Io { .. }), "{missing:?}");
}

#[test]
fn a_non_finite_number_written_as_null_reads_back_as_nan() {
    let dir = tempfile::tempdir().unwrap();
    // serde_json writes an infinite gradient norm as `null`.
    let event = Event::Train {
        step: 3,
        loss: 2.0,
        nll: 2.0,
        lr: 1e-3,
        grad_norm: f64::INFINITY,
        tokens_per_s: 10.0,
        novel_fraction: 0.5,
        loss_scale: None,
        skipped: 0,
    };
    let line = serde_json::to_string(&event).unwrap();
    assert!(line.contains("\"grad_norm\":null"), "{line}");
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, format!("{line}\n{line}\n")).unwrap();
    let events = read_events(&log).unwrap();
    assert_eq!(events.len(), 2, "no line is taken for a torn one");
    match events[0] {
        Event::Train {
            grad_norm, loss, ..
        } => {
            assert!(grad_norm.is_nan());
            assert_eq!(loss, 2.0);
        }
        _ => panic!("{:?}", events[0]),
    }

    let runs = demo_runs();
    let mut metrics = read_metrics(&runs[0].join("metrics.json")).unwrap();
    metrics.open_ended.as_mut().unwrap().next_token.perplexity = f64::INFINITY;
    let path = dir.path().join("metrics.json");
    std::fs::write(&path, metrics.to_json()).unwrap();
    let read = read_metrics(&path).unwrap();
    assert!(read.open_ended.unwrap().next_token.perplexity.is_nan());
}
