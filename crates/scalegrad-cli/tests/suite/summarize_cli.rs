//! `scalegrad summarize` end to end on scalegrad-bert2bert's tiny fixture checkpoint
//! (`pytorch_model.bin` + `vocab.txt`, generation settings at the top of config.json):
//! text in, summaries equal to transformers' (tokenizer, generate() with the checkpoint's
//! defaults, decoding; recorded by that crate's fixture script), the same for every input
//! format and batch size, and mistakes get errors that say what to fix.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{self, failure, json_lines, scalegrad, succeeded};
use scalegrad_data::reader::write_string_columns;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scalegrad-bert2bert/fixtures")
}

fn model_dir() -> String {
    fixtures().join("tiny-bin").to_string_lossy().into_owned()
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("fixture");
    serde_json::from_str::<Value>(&text).expect("json")["cli"].clone()
}

fn articles() -> Vec<String> {
    serde_json::from_value(expected()["articles"].clone()).expect("articles")
}

fn summarize(args: &[&str]) -> Output {
    common::run(scalegrad().arg("summarize").args(args))
}

fn text_file(dir: &Path) -> String {
    let path = dir.join("articles.txt");
    std::fs::write(&path, articles().join("\n\n") + "\n").expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn json_summaries_equal_transformers_tokenize_generate_decode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = text_file(dir.path());
    let model = model_dir();
    let lines = json_lines(&summarize(&[
        "--model", &model, "--input", &input, "--json",
    ]));
    let want = expected();
    assert_eq!(lines.len(), 3, "empty lines are skipped");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i);
        let source = want["source_ids"][i].as_array().expect("ids");
        assert_eq!(
            line["source_tokens"],
            source.len(),
            "article {i}: tokens, rust vs python"
        );
        assert_eq!(
            line["truncated"],
            i == 2,
            "article {i}: only the long one is cut at 64"
        );
        // transformers' row: start token, summary, then EOS filling the padded tail.
        let row: Vec<u64> = serde_json::from_value(want["sequences"][i].clone()).expect("row");
        let ours: Vec<u64> = serde_json::from_value(line["summary_ids"].clone()).expect("ids");
        assert_eq!(row[0], 101);
        assert_eq!(
            ours[..],
            row[1..=ours.len()],
            "article {i}: rust={ours:?}, python={row:?}"
        );
        assert!(
            row[ours.len() + 1..].iter().all(|&t| t == 102),
            "python={row:?}"
        );
        assert_eq!(
            line["summary"], want["summaries"][i],
            "article {i}: text, rust vs python"
        );
        assert!(line["score"].is_f64(), "beam search reports a score");
    }
}

#[test]
fn input_formats_and_batch_sizes_give_the_same_summaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model_dir();
    let text = text_file(dir.path());
    let articles = articles();

    let jsonl = dir.path().join("articles.jsonl");
    let lines = [
        serde_json::to_string(&articles[0]).expect("json"),
        String::new(),
        serde_json::json!({"article": articles[1], "id": "b"}).to_string(),
        serde_json::json!({"article": articles[2]}).to_string(),
    ];
    std::fs::write(&jsonl, lines.join("\n")).expect("write");
    let parquet = dir.path().join("test.parquet");
    let ids: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    write_string_columns(&parquet, &[("id", &ids), ("article", &articles)], 2).expect("parquet");

    let summaries = |input: &str, batch: &str| {
        succeeded(&summarize(&[
            "--model",
            &model,
            "--input",
            input,
            "--batch-size",
            batch,
        ]))
    };
    let reference = summaries(&text, "4");
    let want: Vec<String> =
        serde_json::from_value(expected()["summaries"].clone()).expect("summaries");
    assert_eq!(
        reference.lines().collect::<Vec<_>>(),
        want,
        "text output: one summary per line"
    );
    assert_eq!(summaries(&text, "1"), reference, "batch size 1");
    assert_eq!(
        summaries(&jsonl.to_string_lossy(), "2"),
        reference,
        "JSONL input"
    );
    assert_eq!(
        summaries(&parquet.to_string_lossy(), "3"),
        reference,
        "parquet input"
    );
}

#[test]
fn flags_override_the_checkpoint_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = text_file(dir.path());
    let model = model_dir();
    let out = summarize(&[
        "--model",
        &model,
        "--input",
        &input,
        "--json",
        "--num-beams",
        "1",
        "--max-length",
        "4",
        "--min-length",
        "0",
        "--no-repeat-ngram-size",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for line in json_lines(&out) {
        let ids = line["summary_ids"].as_array().expect("ids");
        assert!(
            !ids.is_empty() && ids.len() <= 3,
            "max_length 4 counts the start token: {ids:?}"
        );
        assert!(line["score"].is_null(), "greedy has no beam score");
    }
    assert!(
        stderr.contains("\"num_beams\":1") && stderr.contains("\"max_length\":4"),
        "{stderr}"
    );

    let out = summarize(&[
        "--model",
        &model,
        "--input",
        &input,
        "--max-source-length",
        "8",
        "--json",
    ]);
    for line in json_lines(&out) {
        assert!(line["source_tokens"].as_u64().expect("n") <= 8);
        assert_eq!(line["truncated"], true);
    }
}

#[test]
fn mistakes_are_errors_that_say_what_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = text_file(dir.path());
    let model = model_dir();

    let err = failure(&summarize(&[
        "--model",
        "./no-such-model-dir",
        "--input",
        &input,
    ]));
    assert!(
        err.contains("no-such-model-dir") && err.contains("neither a model directory"),
        "{err}"
    );

    let err = failure(&summarize(&[
        "--model",
        &model,
        "--input",
        "/no/such/articles.txt",
    ]));
    assert!(err.contains("reading /no/such/articles.txt"), "{err}");

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "\"fine\"\n{\"text\": \"no article field\"}\n").expect("write");
    let err = failure(&summarize(&[
        "--model",
        &model,
        "--input",
        &bad.to_string_lossy(),
    ]));
    assert!(err.contains("line 2") && err.contains("`article`"), "{err}");

    let parquet = dir.path().join("no_article.parquet");
    let rows: Vec<String> = vec!["x".into()];
    write_string_columns(&parquet, &[("highlights", &rows)], 1).expect("parquet");
    let err = failure(&summarize(&[
        "--model",
        &model,
        "--input",
        &parquet.to_string_lossy(),
    ]));
    assert!(err.contains("article"), "{err}");

    for (flag, value, expected) in [
        ("--num-beams", "0", "num_beams must be at least 1"),
        (
            "--max-length",
            "100",
            "max_length 100 exceeds the decoder's 64 positions",
        ),
        (
            "--max-source-length",
            "65",
            "--max-source-length must be in 1..=64",
        ),
        ("--early-stopping", "maybe", "expected true, false or never"),
    ] {
        let err = failure(&summarize(&[
            "--model", &model, "--input", &input, flag, value,
        ]));
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
}
