//! Reading parquet: the committed fixtures (written by pyarrow), string and
//! large_string columns, streaming, and clear errors for bad files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use scalegrad_data::reader::{
    ParquetTextReader, StringType, count_rows, read_columns, write_string_columns,
};
use scalegrad_data::{Error, TokenizeOptions, TokenizeSpec, load_tokenizer, tokenize_files};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn expect() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("parquet_expect.json")).unwrap())
        .unwrap()
}

fn write_batch(path: &Path, batch: RecordBatch) {
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn no_cache() -> TokenizeOptions {
    TokenizeOptions {
        cache_dir: None,
        progress: false,
        batch_rows: 7,
        fast_bpe: true,
    }
}

#[test]
fn committed_wikitext_fixture_reads_with_pyarrow_counts() {
    let e = &expect()["wikitext-20.parquet"];
    let file = fixtures().join("wikitext-20.parquet");
    let cols = read_columns(std::slice::from_ref(&file), &["text"]).unwrap();
    let rows = &cols[0];
    assert_eq!(rows.len() as u64, e["rows"].as_u64().unwrap());
    let chars: usize = rows.iter().map(|r| r.chars().count()).sum();
    assert_eq!(
        chars as u64,
        e["chars"].as_u64().unwrap(),
        "rust=chars, python=len()"
    );
    for (i, row) in e["first_rows"].as_array().unwrap().iter().enumerate() {
        assert_eq!(rows[i], row.as_str().unwrap());
    }
    // GPT-2 token count of all rows, tokenised row by row: as HF `tokenizer(rows)`.
    let tok = load_tokenizer(&fixtures().join("tiny-gpt2")).unwrap();
    let (split, _) =
        tokenize_files(&[file], &tok, &TokenizeSpec::lm_text(), &no_cache(), "w20").unwrap();
    let text = split.column("text").unwrap();
    assert_eq!(
        text.rows.tokens.len() as u64,
        e["gpt2_tokens"].as_u64().unwrap()
    );
    assert_eq!(text.chars, chars as u64);
}

#[test]
fn committed_cnn_fixture_reads_large_string_columns() {
    let e = &expect()["cnn-20.parquet"];
    let file = fixtures().join("cnn-20.parquet");
    let cols = read_columns(&[file], &["id", "article", "highlights"]).unwrap();
    assert_eq!(cols[0].len(), 20);
    assert_eq!(
        cols[0][0],
        e["first_id"].as_str().unwrap(),
        "columns come back in the asked order"
    );
    let count = |c: &Vec<String>| c.iter().map(|s| s.chars().count() as u64).sum::<u64>();
    assert_eq!(count(&cols[1]), e["article_chars"].as_u64().unwrap());
    assert_eq!(count(&cols[2]), e["highlights_chars"].as_u64().unwrap());
}

#[test]
fn our_writer_round_trips_utf8_and_large_utf8_and_streams_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..20).map(|i| format!(" row {i} é \n")).collect();
    for (ty, name) in [
        (StringType::Utf8, "a.parquet"),
        (StringType::LargeUtf8, "b.parquet"),
    ] {
        let path = dir.path().join(name);
        write_string_columns(&path, &[("text", &rows)], ty, 8).unwrap();
        let batches: Vec<_> = ParquetTextReader::new(vec![path.clone()], &["text"])
            .batch_rows(3)
            .collect::<Result<_, _>>()
            .unwrap();
        let starts: Vec<u64> = batches.iter().map(|b| b.first_row).collect();
        assert!(batches.iter().all(|b| b.num_rows() <= 3));
        assert_eq!(starts.first(), Some(&0));
        let back: Vec<String> = batches
            .iter()
            .flat_map(|b| b.columns[0].iter().map(str::to_string).collect::<Vec<_>>())
            .collect();
        assert_eq!(back, rows, "{name}");
    }
    // Two files read in order, as one split.
    let files = vec![dir.path().join("a.parquet"), dir.path().join("b.parquet")];
    assert_eq!(count_rows(&files, &["text"]).unwrap(), 40);
}

#[test]
fn projection_ignores_other_columns_of_any_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("text", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            Arc::new(StringArray::from(vec!["x", "y"])),
        ],
    )
    .unwrap();
    write_batch(&path, batch);
    assert_eq!(read_columns(&[path], &["text"]).unwrap()[0], vec!["x", "y"]);
}

#[test]
fn missing_column_names_file_column_and_what_exists() {
    let err = read_columns(&[fixtures().join("wikitext-20.parquet")], &["article"]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingColumn { .. }), "{msg}");
    assert!(
        msg.contains("wikitext-20.parquet") && msg.contains("`article`"),
        "{msg}"
    );
    assert!(msg.contains("text: Utf8"), "lists the columns found: {msg}");
}

#[test]
fn non_string_column_is_a_type_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ints.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new(
        "text",
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef],
    )
    .unwrap();
    write_batch(&path, batch);
    let err = read_columns(&[path], &["text"]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ColumnType { .. }), "{msg}");
    assert!(
        msg.contains("has type Int64") && msg.contains("LargeUtf8"),
        "{msg}"
    );
}

#[test]
fn null_text_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec![
            Some("a"),
            Some(""),
            None,
            Some("b"),
        ])) as ArrayRef],
    )
    .unwrap();
    write_batch(&path, batch);
    let err = read_columns(&[path], &["text"]).unwrap_err();
    match &err {
        Error::NullText { row, column, .. } => assert_eq!((*row, column.as_str()), (2, "text")),
        other => panic!("expected NullText, got {other}"),
    }
    assert!(err.to_string().contains("row 2 has a null `text`"), "{err}");
}

#[test]
fn truncated_and_garbage_files_are_reported_as_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixtures().join("wikitext-20.parquet")).unwrap();
    let cases = [
        ("truncated.parquet", good[..good.len() / 2].to_vec()),
        ("empty.parquet", Vec::new()),
        (
            "garbage.parquet",
            b"this is not a parquet file at all".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_columns(&[path], &["text"]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Parquet { .. }), "{name}: {msg}");
        assert!(
            msg.contains(name) && msg.contains("truncated or corrupt"),
            "{name}: {msg}"
        );
    }
}

#[test]
fn corrupt_pages_with_checksums_fail_with_the_file_named() {
    // The fixture was written by pyarrow with page checksums; flip bytes inside its
    // column chunk, leaving the footer intact.
    let src = fixtures().join("wikitext-20.parquet");
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        File::open(&src).unwrap(),
    )
    .unwrap();
    let column = builder.metadata().row_group(0).column(0);
    let start = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset()) as usize;
    let len = column.compressed_size() as usize;
    let mut bytes = std::fs::read(&src).unwrap();
    for b in &mut bytes[start + len / 2..start + len / 2 + 8] {
        *b ^= 0x5a;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.parquet");
    std::fs::write(&path, bytes).unwrap();
    let err = read_columns(&[path], &["text"]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("pages.parquet") && msg.contains("corrupt"),
        "{msg}"
    );
}

#[test]
fn damaged_hub_blobs_are_caught_by_their_sha256_name() {
    // Most hub parquet files have no page checksums, so a flipped byte in a dictionary
    // page can decode to wrong text silently; the HF cache names each blob after its
    // SHA-256, which tokenize_files checks before reading.
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixtures().join("wikitext-20.parquet")).unwrap();
    let sha: String = Sha256::digest(&good)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let blobs = dir.path().join("blobs");
    let snap = dir.path().join("snapshots/abc/cfg");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(blobs.join(&sha), &bad).unwrap();
    std::os::unix::fs::symlink(blobs.join(&sha), snap.join("test-00000-of-00001.parquet")).unwrap();
    let file = snap.join("test-00000-of-00001.parquet");
    let tok = load_tokenizer(&fixtures().join("tiny-gpt2")).unwrap();
    let err = tokenize_files(
        std::slice::from_ref(&file),
        &tok,
        &TokenizeSpec::lm_text(),
        &no_cache(),
        "x",
    )
    .unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("fetch it again"), "{err}");
    // The intact blob passes.
    std::fs::write(blobs.join(&sha), &good).unwrap();
    assert!(scalegrad_data::hub::verify_blob(&file).unwrap());
    assert!(tokenize_files(&[file], &tok, &TokenizeSpec::lm_text(), &no_cache(), "x").is_ok());
}

#[test]
fn an_empty_split_is_an_error_not_zero_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.parquet");
    write_string_columns(&path, &[("text", &[])], StringType::Utf8, 10).unwrap();
    assert_eq!(
        count_rows(std::slice::from_ref(&path), &["text"]).unwrap(),
        0
    );
    let tok = load_tokenizer(&fixtures().join("tiny-gpt2")).unwrap();
    let err = tokenize_files(
        &[path],
        &tok,
        &TokenizeSpec::lm_text(),
        &no_cache(),
        "wikitext-x-test",
    )
    .unwrap_err();
    assert!(matches!(err, Error::EmptySplit { .. }), "{err}");
    assert!(
        err.to_string().contains("wikitext-x-test") && err.to_string().contains("no rows"),
        "{err}"
    );
}
