//! Streaming string columns out of parquet files.
//!
//! Files are read one arrow record batch at a time (never a whole file at once) with a
//! column projection, so only the requested columns are decoded: `text` for WikiText,
//! `article` / `highlights` (and `id`) for CNN/DailyMail. A column may be stored as
//! arrow `string` (Utf8), `large_string` (LargeUtf8) or `string_view`; anything else is
//! a schema error naming the file, the column and the type found. Nulls in a text
//! column are an error naming the row (an empty string is fine: WikiText has many).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, LargeStringArray, RecordBatch, StringArray, StringViewArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// The types a text column may have, in words (for error messages).
pub const STRING_TYPES: &str = "a string column (arrow Utf8, LargeUtf8 or Utf8View)";

/// Rows per record batch when streaming.
pub const DEFAULT_BATCH_ROWS: usize = 4096;

/// One decoded string column of a record batch, whichever string type it was stored as.
#[derive(Clone, Debug)]
pub enum TextArray {
    /// Arrow `string` (32-bit offsets).
    Utf8(StringArray),
    /// Arrow `large_string` (64-bit offsets).
    LargeUtf8(LargeStringArray),
    /// Arrow `string_view`.
    Utf8View(StringViewArray),
}

impl TextArray {
    fn from_array(array: &ArrayRef) -> Option<Self> {
        let any = array.as_any();
        if let Some(a) = any.downcast_ref::<StringArray>() {
            Some(Self::Utf8(a.clone()))
        } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
            Some(Self::LargeUtf8(a.clone()))
        } else {
            any.downcast_ref::<StringViewArray>()
                .map(|a| Self::Utf8View(a.clone()))
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Utf8(a) => a.len(),
            Self::LargeUtf8(a) => a.len(),
            Self::Utf8View(a) => a.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of row `i` (rows are checked for nulls when read).
    pub fn value(&self, i: usize) -> &str {
        match self {
            Self::Utf8(a) => a.value(i),
            Self::LargeUtf8(a) => a.value(i),
            Self::Utf8View(a) => a.value(i),
        }
    }

    /// All rows, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.value(i))
    }

    fn first_null(&self) -> Option<usize> {
        let nulls = match self {
            Self::Utf8(a) => a.nulls(),
            Self::LargeUtf8(a) => a.nulls(),
            Self::Utf8View(a) => a.nulls(),
        }?;
        (0..nulls.len()).find(|&i| nulls.is_null(i))
    }
}

/// A slice of rows of one file, with the requested columns in the requested order.
#[derive(Clone, Debug)]
pub struct TextBatch {
    /// Index of the file in the reader's file list.
    pub file: usize,
    /// Index (within that file) of the batch's first row.
    pub first_row: u64,
    /// The columns, in the order they were requested.
    pub columns: Vec<TextArray>,
}

impl TextBatch {
    /// The number of rows in the batch.
    pub fn num_rows(&self) -> usize {
        self.columns.first().map_or(0, TextArray::len)
    }
}

fn describe_schema(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens a parquet file and checks that it has each of `columns` as a string column.
/// Returns the reader builder and the columns' root indices.
fn open_checked(
    path: &Path,
    columns: &[&str],
) -> Result<(ParquetRecordBatchReaderBuilder<File>, Vec<usize>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| Error::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    let schema = builder.schema().clone();
    let mut indices = Vec::with_capacity(columns.len());
    for &column in columns {
        let Some((index, field)) = schema.column_with_name(column) else {
            return Err(Error::MissingColumn {
                path: path.to_path_buf(),
                column: column.to_string(),
                expected: STRING_TYPES,
                found: describe_schema(&schema),
            });
        };
        if !matches!(
            field.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return Err(Error::ColumnType {
                path: path.to_path_buf(),
                column: column.to_string(),
                expected: STRING_TYPES,
                found: field.data_type().to_string(),
            });
        }
        indices.push(index);
    }
    Ok((builder, indices))
}

/// The total number of rows of `files`, from their footers, after checking that each
/// has the `columns` as string columns.
pub fn count_rows(files: &[PathBuf], columns: &[&str]) -> Result<u64> {
    let mut rows = 0u64;
    for path in files {
        let (builder, _) = open_checked(path, columns)?;
        rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
    }
    Ok(rows)
}

/// Streams the string `columns` of `files`, in file order, one record batch at a time.
///
/// Every file's schema is checked when the file is opened, so a bad file later in the
/// list fails when the reader reaches it; call [`count_rows`] first to check them all
/// up front.
pub struct ParquetTextReader {
    files: Vec<PathBuf>,
    columns: Vec<String>,
    batch_rows: usize,
    next_file: usize,
    current: Option<(usize, ParquetRecordBatchReader, u64)>,
}

impl ParquetTextReader {
    /// A reader of `columns` over `files` with [`DEFAULT_BATCH_ROWS`] rows per batch.
    pub fn new(files: Vec<PathBuf>, columns: &[&str]) -> Self {
        Self {
            files,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            batch_rows: DEFAULT_BATCH_ROWS,
            next_file: 0,
            current: None,
        }
    }

    /// Sets the number of rows per batch (at least 1).
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    /// The files being read.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn open_next(&mut self) -> Result<bool> {
        if self.next_file >= self.files.len() {
            return Ok(false);
        }
        let index = self.next_file;
        self.next_file += 1;
        let path = &self.files[index];
        let columns: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        let (builder, indices) = open_checked(path, &columns)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(self.batch_rows)
            .build()
            .map_err(|source| Error::Parquet {
                path: path.clone(),
                source,
            })?;
        self.current = Some((index, reader, 0));
        Ok(true)
    }

    fn convert(&self, file: usize, first_row: u64, batch: &RecordBatch) -> Result<TextBatch> {
        let path = &self.files[file];
        let mut columns = Vec::with_capacity(self.columns.len());
        for name in &self.columns {
            let array = batch
                .column_by_name(name)
                .ok_or_else(|| Error::MissingColumn {
                    path: path.clone(),
                    column: name.clone(),
                    expected: STRING_TYPES,
                    found: describe_schema(&batch.schema()),
                })?;
            let text = TextArray::from_array(array).ok_or_else(|| Error::ColumnType {
                path: path.clone(),
                column: name.clone(),
                expected: STRING_TYPES,
                found: array.data_type().to_string(),
            })?;
            if let Some(row) = text.first_null() {
                return Err(Error::NullText {
                    path: path.clone(),
                    column: name.clone(),
                    row: first_row + row as u64,
                });
            }
            columns.push(text);
        }
        Ok(TextBatch {
            file,
            first_row,
            columns,
        })
    }
}

impl Iterator for ParquetTextReader {
    type Item = Result<TextBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                match self.open_next() {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(err) => {
                        // Stop after the first error: the caller cannot skip a bad file.
                        self.next_file = self.files.len();
                        return Some(Err(err));
                    }
                }
            }
            let (file, reader, row) = self.current.as_mut().expect("opened above");
            let (file, first_row) = (*file, *row);
            match reader.next() {
                Some(Ok(batch)) => {
                    *row += batch.num_rows() as u64;
                    let converted = self.convert(file, first_row, &batch);
                    if converted.is_err() {
                        self.current = None;
                        self.next_file = self.files.len();
                    }
                    return Some(converted);
                }
                Some(Err(source)) => {
                    self.current = None;
                    self.next_file = self.files.len();
                    return Some(Err(Error::Arrow {
                        path: self.files[file].clone(),
                        source,
                    }));
                }
                None => self.current = None,
            }
        }
    }
}

/// Reads whole string columns into memory (for small files: fixtures, demo data,
/// samples). Returns one `Vec<String>` per requested column.
pub fn read_columns(files: &[PathBuf], columns: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut out = vec![Vec::new(); columns.len()];
    for batch in ParquetTextReader::new(files.to_vec(), columns) {
        let batch = batch?;
        for (dst, src) in out.iter_mut().zip(&batch.columns) {
            dst.extend(src.iter().map(str::to_string));
        }
    }
    Ok(out)
}

/// How [`write_string_columns`] stores its columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringType {
    /// Arrow `string` (what `datasets` writes for most text).
    Utf8,
    /// Arrow `large_string`.
    LargeUtf8,
}

/// Writes string columns (all of the same length) to a parquet file, zstd-compressed,
/// atomically (a `.tmp` file renamed into place). Used by the demo data generator, the
/// benchmark and the tests.
pub fn write_string_columns(
    path: &Path,
    columns: &[(&str, &[String])],
    string_type: StringType,
    row_group_rows: usize,
) -> Result<()> {
    let rows = columns.first().map_or(0, |(_, c)| c.len());
    if columns.iter().any(|(_, c)| c.len() != rows) {
        return Err(Error::Config(format!(
            "{}: columns of different lengths",
            path.display()
        )));
    }
    let data_type = match string_type {
        StringType::Utf8 => DataType::Utf8,
        StringType::LargeUtf8 => DataType::LargeUtf8,
    };
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, _)| Field::new(*name, data_type.clone(), false))
            .collect::<Vec<_>>(),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(6).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build();
    let file = scalegrad_fs::AtomicFile::create(path).map_err(|e| Error::io(path, e))?;
    let to_parquet = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(to_parquet)?;
    let chunk = row_group_rows.max(1);
    let mut start = 0;
    while start < rows.max(1) {
        let end = (start + chunk).min(rows);
        let arrays: Vec<ArrayRef> = columns
            .iter()
            .map(|(_, values)| -> ArrayRef {
                let slice = values[start..end].iter().map(String::as_str);
                match string_type {
                    StringType::Utf8 => Arc::new(StringArray::from_iter_values(slice)),
                    StringType::LargeUtf8 => Arc::new(LargeStringArray::from_iter_values(slice)),
                }
            })
            .collect();
        let batch =
            RecordBatch::try_new(schema.clone(), arrays).map_err(|source| Error::Arrow {
                path: path.to_path_buf(),
                source,
            })?;
        writer.write(&batch).map_err(to_parquet)?;
        start = end;
        if rows == 0 {
            break;
        }
    }
    // `into_inner` writes the footer (as `close` would) and hands the file back.
    let file = writer.into_inner().map_err(to_parquet)?;
    file.commit().map_err(|e| Error::io(path, e))
}
