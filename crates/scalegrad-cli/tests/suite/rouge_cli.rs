//! `scalegrad rouge` end to end: output equals the library's report, the settings are
//! stated, and bad input gets errors that name the file and line.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{self, failure, scalegrad, success_json};
use scalegrad_metrics::{BootstrapConfig, RougeReport, RougeScorer};

fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn rouge(predictions: &Path, references: &Path, extra: &[&str]) -> Output {
    common::run(
        scalegrad()
            .arg("rouge")
            .arg("--predictions")
            .arg(predictions)
            .arg("--references")
            .arg(references)
            .args(extra),
    )
}

const PREDICTIONS: &str = "the cats are running home\nA dog barked at the mailman.\n";
const REFERENCES: &str = "the cat runs home\r\nthe dog barked loudly at a mailman\r\n";

#[test]
fn json_output_equals_the_library_report() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pred.txt", PREDICTIONS.as_bytes());
    let r = write(dir.path(), "ref.txt", REFERENCES.as_bytes());
    let json = success_json(&rouge(&p, &r, &["--json"]));

    let predictions = ["the cats are running home", "A dog barked at the mailman."];
    let references = ["the cat runs home", "the dog barked loudly at a mailman"];
    let expected = RougeReport::compute(
        &RougeScorer::new(true),
        &references,
        &predictions,
        &BootstrapConfig::default(),
    )
    .unwrap();
    assert_eq!(json, serde_json::to_value(&expected).unwrap());
    assert_eq!(json["count"], 2);
    assert_eq!(json["use_stemmer"], true);
    assert_eq!(json["lsum_sentence_split"], "newline");
    for t in ["rouge1", "rouge2", "rougeL", "rougeLsum"] {
        for k in ["precision", "recall", "fmeasure"] {
            assert!(json[t][k].is_f64(), "{t}.{k}");
            for bound in ["low", "mid", "high"] {
                assert!(json[t][bound][k].is_f64(), "{t}.{bound}.{k}");
            }
        }
    }
}

#[test]
fn no_stemmer_changes_the_scores_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pred.txt", PREDICTIONS.as_bytes());
    let r = write(dir.path(), "ref.txt", REFERENCES.as_bytes());
    let stem = success_json(&rouge(&p, &r, &["--json"]));
    let plain = success_json(&rouge(&p, &r, &["--json", "--no-stemmer"]));
    assert_eq!(plain["use_stemmer"], false);
    // "cats"/"cat" and "running"/"runs" only match after stemming.
    assert!(
        stem["rouge1"]["fmeasure"].as_f64() > plain["rouge1"]["fmeasure"].as_f64(),
        "stem={} plain={}",
        stem["rouge1"],
        plain["rouge1"]
    );
}

#[test]
fn jsonl_summaries_keep_sentences_for_lsum() {
    let dir = tempfile::tempdir().unwrap();
    // The prediction has the reference's two sentences in the other order: ROUGE-L over
    // the concatenation matches one sentence, ROUGE-Lsum matches both.
    let p = write(dir.path(), "pred.jsonl", b"\"c d\\na b\"\n");
    let r = write(dir.path(), "ref.JSONL", b"\"a b\\nc d\"\n");
    let json = success_json(&rouge(&p, &r, &["--json", "--no-stemmer"]));
    assert_eq!(json["rougeLsum"]["fmeasure"], 1.0);
    assert_eq!(json["rougeL"]["fmeasure"], 0.5);
}

#[test]
fn table_output_states_stemmer_and_sentence_split() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pred.txt", PREDICTIONS.as_bytes());
    let r = write(dir.path(), "ref.txt", REFERENCES.as_bytes());
    let out = rouge(&p, &r, &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("stemmer: on"), "{text}");
    assert!(
        text.contains("rougeLsum splits sentences on newlines"),
        "{text}"
    );
    assert!(text.contains("| rougeLsum |"), "{text}");
    // Single-line summaries: the user is told that Lsum equals L here.
    assert!(String::from_utf8_lossy(&out.stderr).contains("rougeLsum equals rougeL"));
}

#[test]
fn mismatched_counts_name_both_files_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pred.txt", b"a\nb\nc\n");
    let r = write(dir.path(), "ref.txt", b"a\nb\n");
    let err = failure(&rouge(&p, &r, &[]));
    assert!(err.contains("has 3 predictions"), "{err}");
    assert!(err.contains("has 2 references"), "{err}");
    assert!(err.contains(&format!("line 3 of {}", p.display())), "{err}");
    assert!(err.contains(&r.display().to_string()), "{err}");
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(dir.path(), "ref.txt", b"a\n");
    let missing = dir.path().join("missing.txt");
    let err = failure(&rouge(&missing, &r, &[]));
    assert!(
        err.contains(&format!("cannot read {}", missing.display())),
        "{err}"
    );
}

#[test]
fn invalid_utf8_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pred.txt", b"fine\nbad \xff byte\n");
    let r = write(dir.path(), "ref.txt", b"a\nb\n");
    let err = failure(&rouge(&p, &r, &[]));
    assert!(
        err.contains(&format!("{}: line 2: invalid UTF-8", p.display())),
        "{err}"
    );
}

#[test]
fn bad_json_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "pred.jsonl",
        b"\"ok\"\n{\"text\": \"not a string\"}\n",
    );
    let r = write(dir.path(), "ref.jsonl", b"\"a\"\n\"b\"\n");
    let err = failure(&rouge(&p, &r, &[]));
    assert!(
        err.contains(&format!(
            "{}: line 2: expected one JSON string",
            p.display()
        )),
        "{err}"
    );
    assert!(err.contains("invalid type: map"), "{err}");

    let truncated = write(dir.path(), "truncated.jsonl", b"\"ok\"\n\"unterminated\n");
    let err = failure(&rouge(&truncated, &r, &[]));
    assert!(
        err.contains(&format!("{}: line 2, column 13:", truncated.display())),
        "{err}"
    );
    assert!(err.contains("EOF while parsing a string"), "{err}");

    let blank = write(dir.path(), "blank.jsonl", b"\"ok\"\n\n\"b\"\n");
    let err = failure(&rouge(&blank, &r, &[]));
    assert!(
        err.contains(&format!("{}: line 2: empty line", blank.display())),
        "{err}"
    );
}

#[test]
fn empty_inputs_and_bad_bootstrap_settings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "pred.txt", b"");
    let r = write(dir.path(), "ref.txt", b"");
    assert!(failure(&rouge(&p, &r, &[])).contains("hold no summaries"));
    let p = write(dir.path(), "pred2.txt", b"a\n");
    let r = write(dir.path(), "ref2.txt", b"a\n");
    let err = failure(&rouge(&p, &r, &["--confidence", "1.5"]));
    assert!(
        err.contains("confidence interval must be in [0, 1]"),
        "{err}"
    );
}
