//! Reading parquet: the committed fixtures (written by pyarrow, one with large_string
//! columns), streaming across row groups, and clear errors for bad files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use scalegrad_data::reader::{ParquetTextReader, count_rows, read_columns, write_string_columns};
use scalegrad_data::{Error, TokenizeOptions, TokenizeSpec, load_tokenizer, tokenize_files};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn expect() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("parquet_expect.json")).unwrap())
        .unwrap()
}

/// One column of a hand-made file: its values and, for an optional column, the
/// definition levels (0 for a null row).
enum Column<'a> {
    Int64(&'a [i64], Option<&'a [i16]>),
    Bytes(&'a [&'a [u8]], Option<&'a [i16]>),
}

/// Writes a one-row-group parquet file with the schema `message` (in parquet's schema
/// syntax) and one `Column` per field, in order.
fn write_file(path: &Path, message: &str, columns: &[Column]) {
    write_groups(path, message, &[columns], WriterProperties::builder());
}

/// Writes a parquet file of several row groups, each given as one `Column` per field.
fn write_groups(
    path: &Path,
    message: &str,
    groups: &[&[Column]],
    props: parquet::file::properties::WriterPropertiesBuilder,
) {
    let schema = Arc::new(parse_message_type(message).unwrap());
    let props = Arc::new(props.build());
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    for columns in groups {
        let mut group = writer.next_row_group().unwrap();
        for column in *columns {
            let mut out = group.next_column().unwrap().unwrap();
            match column {
                Column::Int64(values, levels) => {
                    out.typed::<Int64Type>()
                        .write_batch(values, *levels, None)
                        .unwrap();
                }
                Column::Bytes(values, levels) => {
                    let values: Vec<ByteArray> =
                        values.iter().map(|v| ByteArray::from(v.to_vec())).collect();
                    out.typed::<ByteArrayType>()
                        .write_batch(&values, *levels, None)
                        .unwrap();
                }
            }
            out.close().unwrap();
        }
        group.close().unwrap();
    }
    writer.close().unwrap();
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
fn our_writer_round_trips_and_streams_in_batches_across_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..20).map(|i| format!(" row {i} é \n")).collect();
    let ids: Vec<String> = (0..20).map(|i| format!("id{i}")).collect();
    // 20 rows in row groups of 8: batches of 3 run on across row-group ends.
    let path = dir.path().join("a.parquet");
    write_string_columns(&path, &[("text", &rows), ("id", &ids)], 8).unwrap();
    let batches: Vec<_> = ParquetTextReader::new(vec![path.clone()], &["id", "text"])
        .batch_rows(3)
        .collect::<Result<_, _>>()
        .unwrap();
    let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, [3, 3, 3, 3, 3, 3, 2]);
    let starts: Vec<u64> = batches.iter().map(|b| b.first_row).collect();
    assert_eq!(starts, [0, 3, 6, 9, 12, 15, 18]);
    let column = |c: usize| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| b.columns[c].iter().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    assert_eq!(column(0), ids, "columns come back in the asked order");
    assert_eq!(column(1), rows);
    // Two files read in order, as one split.
    let other = dir.path().join("b.parquet");
    write_string_columns(&other, &[("text", &rows)], 100).unwrap();
    let files = vec![path, other];
    assert_eq!(count_rows(&files, &["text"]).unwrap(), 40);
    let both = read_columns(&files, &["text"]).unwrap().remove(0);
    assert_eq!(both, [rows.clone(), rows].concat());
}

#[test]
fn projection_ignores_other_columns_of_any_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.parquet");
    write_file(
        &path,
        "message m { optional int64 n; required binary text (STRING); }",
        &[
            Column::Int64(&[1], Some(&[1, 0])),
            Column::Bytes(&[b"x", b"y"], None),
        ],
    );
    assert_eq!(read_columns(&[path], &["text"]).unwrap()[0], vec!["x", "y"]);
}

#[test]
fn older_utf8_annotation_and_optional_columns_without_nulls_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("utf8.parquet");
    write_file(
        &path,
        "message m { optional binary text (UTF8); }",
        &[Column::Bytes(&[b"a", b"", b"c"], Some(&[1, 1, 1]))],
    );
    assert_eq!(
        read_columns(&[path], &["text"]).unwrap()[0],
        vec!["a", "", "c"]
    );
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
    assert!(
        msg.contains("text: string"),
        "lists the columns found: {msg}"
    );
}

#[test]
fn non_string_columns_are_type_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("message m { required int64 text; }", "INT64"),
        // Bytes without the string annotation: arrow's `binary`, not text.
        ("message m { required binary text; }", "BYTE_ARRAY"),
    ];
    for (i, (message, found)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.parquet"));
        let column = if found == "INT64" {
            Column::Int64(&[1, 2], None)
        } else {
            Column::Bytes(&[b"a", b"b"], None)
        };
        write_file(&path, message, &[column]);
        let err = read_columns(&[path], &["text"]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::ColumnType { .. }), "{msg}");
        assert!(
            msg.contains(&format!("has type {found},")) && msg.contains("large_string"),
            "{msg}"
        );
    }
}

#[test]
fn null_text_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.parquet");
    write_file(
        &path,
        "message m { optional binary text (STRING); }",
        &[Column::Bytes(&[b"a", b"", b"b"], Some(&[1, 1, 0, 1]))],
    );
    let err = read_columns(&[path], &["text"]).unwrap_err();
    match &err {
        Error::NullText { row, column, .. } => assert_eq!((*row, column.as_str()), (2, "text")),
        other => panic!("expected NullText, got {other}"),
    }
    assert!(err.to_string().contains("row 2 has a null `text`"), "{err}");
}

#[test]
fn text_that_is_not_utf8_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.parquet");
    write_file(
        &path,
        "message m { required binary text (STRING); }",
        &[Column::Bytes(&[b"ok", b"caf\xe9"], None)],
    );
    let err = read_columns(&[path], &["text"]).unwrap_err();
    match &err {
        Error::InvalidUtf8 { row, column, .. } => assert_eq!((*row, column.as_str()), (1, "text")),
        other => panic!("expected InvalidUtf8, got {other}"),
    }
    assert!(err.to_string().contains("latin1.parquet"), "{err}");
}

#[test]
fn batches_run_across_row_groups_empty_ones_included() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.parquet");
    let message = "message m { required binary text (STRING); }";
    write_groups(
        &path,
        message,
        &[
            &[Column::Bytes(&[b"a", b"b"], None)],
            &[Column::Bytes(&[], None)],
            &[Column::Bytes(&[b"c", b"d", b"e"], None)],
        ],
        WriterProperties::builder(),
    );
    let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let group_rows: Vec<i64> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(group_rows, [2, 0, 3], "the file has an empty row group");
    let batches: Vec<_> = ParquetTextReader::new(vec![path], &["text"])
        .batch_rows(4)
        .collect::<Result<_, _>>()
        .unwrap();
    let got: Vec<(u64, Vec<&str>)> = batches
        .iter()
        .map(|b| (b.first_row, b.columns[0].iter().collect()))
        .collect();
    assert_eq!(got, [(0, vec!["a", "b", "c", "d"]), (4, vec!["e"])]);
}

#[test]
fn a_null_in_a_later_row_group_names_its_file_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late-null.parquet");
    write_groups(
        &path,
        "message m { optional binary text (STRING); }",
        &[
            &[Column::Bytes(&[b"a", b"b", b"c"], Some(&[1, 1, 1]))],
            &[Column::Bytes(&[b"d", b"f"], Some(&[1, 0, 1]))],
        ],
        WriterProperties::builder(),
    );
    let err = ParquetTextReader::new(vec![path], &["text"])
        .batch_rows(2)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    match &err {
        Error::NullText { row, .. } => assert_eq!(*row, 4),
        other => panic!("expected NullText, got {other}"),
    }
}

#[test]
fn a_damaged_page_is_an_error_naming_the_file_not_a_crash() {
    // An uncompressed, plain-encoded page without statistics: each value is its length
    // (4 bytes, little-endian) and its bytes. Stretching the first length to end 2 bytes
    // before the page does leaves the decoder too few bytes for the next length, where
    // parquet's plain decoder slices out of range (a panic, caught by the reader).
    use parquet::basic::{Compression, Encoding};
    use parquet::file::properties::EnabledStatistics;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.parquet");
    let (first, second) = (&b"first-value-marker"[..], &b"second"[..]);
    write_groups(
        &path,
        "message m { required binary text (STRING); }",
        &[&[Column::Bytes(&[first, second], None)]],
        WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::PLAIN)
            .set_statistics_enabled(EnabledStatistics::None),
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(first.len())
        .position(|w| w == first)
        .expect("the value is stored as is");
    assert_eq!(
        bytes.windows(first.len()).filter(|w| *w == first).count(),
        1
    );
    let stretched = (first.len() + 4 + second.len() - 2) as u32;
    bytes[at - 4..at].copy_from_slice(&stretched.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = read_columns(&[path], &["text"]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Decode { .. }), "{msg}");
    assert!(
        msg.contains("damaged.parquet") && msg.contains("decoder stopped"),
        "{msg}"
    );
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
    let reader = SerializedFileReader::new(File::open(&src).unwrap()).unwrap();
    let column = reader.metadata().row_group(0).column(0);
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
    write_string_columns(&path, &[("text", &[])], 10).unwrap();
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
