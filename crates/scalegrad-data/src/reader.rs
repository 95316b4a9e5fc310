//! Streaming string columns out of parquet files.
//!
//! Files are read one batch of rows at a time (never a whole file at once), and only the
//! requested columns are decoded: `text` for WikiText, `article` / `highlights` (and `id`)
//! for CNN/DailyMail. A text column must be a parquet `BYTE_ARRAY` annotated as a string
//! (the `String` logical type or the older `UTF8` converted type): what arrow's `string`,
//! `large_string` and `string_view` are all stored as. Anything else is a schema error
//! naming the file, the column and the type found. Nulls in a text column are an error
//! naming the row (an empty string is fine: WikiText has many), and so is text that is
//! not UTF-8.
//!
//! This uses the `parquet` crate's own column readers rather than its arrow reader: the
//! rows are only ever copied into Rust strings, and leaving out arrow (21 crates) takes
//! about a tenth off every build of the workspace.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::ZstdLevel;
use parquet::basic::{Compression, ConvertedType, LogicalType, Repetition, Type as PhysicalType};
use parquet::column::reader::{ColumnReaderImpl, get_typed_column_reader};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::error::{Error, Result};

/// The types a text column may have, in words (for error messages).
pub const STRING_TYPES: &str = "a string column (parquet BYTE_ARRAY with the String/UTF8 annotation: arrow's string, \
     large_string or string_view)";

/// Rows per batch when streaming.
pub const DEFAULT_BATCH_ROWS: usize = 4096;

/// One decoded string column of a batch: the rows' text, stored back to back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextArray {
    text: String,
    /// `ends[i]` is where row `i` ends in `text`; it starts where row `i - 1` ends.
    ends: Vec<usize>,
}

impl TextArray {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The text of row `i`.
    pub fn value(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// All rows, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.value(i))
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

/// Whether a root field of a parquet schema is a (non-repeated) string column.
fn is_string_column(field: &Type) -> bool {
    let info = field.get_basic_info();
    field.is_primitive()
        && field.get_physical_type() == PhysicalType::BYTE_ARRAY
        && !(info.has_repetition() && info.repetition() == Repetition::REPEATED)
        && (matches!(info.logical_type_ref(), Some(LogicalType::String))
            || info.converted_type() == ConvertedType::UTF8)
}

/// A root field's type in words: `string` for a text column, else the parquet type.
fn describe_type(field: &Type) -> String {
    if is_string_column(field) {
        return "string".into();
    }
    if !field.is_primitive() {
        return "group (a nested column)".into();
    }
    let info = field.get_basic_info();
    let mut out = field.get_physical_type().to_string();
    if let Some(logical) = info.logical_type_ref() {
        // The logical type's name, without its parameters (`Integer { bit_width: .. }`).
        let name = format!("{logical:?}");
        let name = name.split([' ', '(', '{']).next().unwrap_or_default();
        out += &format!(" ({name})");
    } else if info.converted_type() != ConvertedType::NONE {
        out += &format!(" ({})", info.converted_type());
    }
    if info.has_repetition() && info.repetition() == Repetition::REPEATED {
        out += ", repeated";
    }
    out
}

fn describe_schema(fields: &[Arc<Type>]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.name(), describe_type(f)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parquet_error(path: &Path) -> impl Fn(ParquetError) -> Error + '_ {
    |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a parquet file and checks that it has each of `columns` as a string column.
/// Returns the reader and the columns' leaf indices.
fn open_checked(path: &Path, columns: &[&str]) -> Result<(SerializedFileReader<File>, Vec<usize>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(parquet_error(path))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let fields = schema.root_schema().get_fields();
    let mut leaves = Vec::with_capacity(columns.len());
    for &column in columns {
        let Some(root) = fields.iter().position(|f| f.name() == column) else {
            return Err(Error::MissingColumn {
                path: path.to_path_buf(),
                column: column.to_string(),
                expected: STRING_TYPES,
                found: describe_schema(fields),
            });
        };
        if !is_string_column(&fields[root]) {
            return Err(Error::ColumnType {
                path: path.to_path_buf(),
                column: column.to_string(),
                expected: STRING_TYPES,
                found: describe_type(&fields[root]),
            });
        }
        // A primitive root field is exactly one leaf column.
        let leaf = (0..schema.num_columns())
            .find(|&leaf| schema.get_column_root_idx(leaf) == root)
            .expect("a primitive root field is a leaf column");
        leaves.push(leaf);
    }
    // parquet asserts (panics) on negative column chunk offsets when a row group is
    // opened; a damaged footer is an error here instead, before any rows are read.
    for (group, meta) in reader.metadata().row_groups().iter().enumerate() {
        for &leaf in &leaves {
            let chunk = meta.column(leaf);
            if chunk.data_page_offset() < 0
                || chunk.dictionary_page_offset().is_some_and(|o| o < 0)
                || chunk.compressed_size() < 0
            {
                return Err(Error::Parquet {
                    path: path.to_path_buf(),
                    source: ParquetError::General(format!(
                        "row group {group} gives column `{}` a negative offset or size",
                        schema.column(leaf).name()
                    )),
                });
            }
        }
    }
    Ok((reader, leaves))
}

/// Runs one step of parquet's decoding, with its error or panic as an error naming the
/// file. parquet's generic decoders slice and `expect` on what page headers say, and a
/// page checksum (where a file has one) covers the body, not the header, so a damaged
/// header can panic inside the decoder; the panic is caught here so that the user gets
/// this file's name and the fix.
fn decode<T>(path: &Path, step: impl FnOnce() -> parquet::errors::Result<T>) -> Result<T> {
    let source = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(result) => match result {
            Ok(value) => return Ok(value),
            Err(source) => source,
        },
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            ParquetError::General(format!("the decoder stopped: {message}"))
        }
    };
    Err(Error::Decode {
        path: path.to_path_buf(),
        source,
    })
}

/// The total number of rows of `files`, from their footers, after checking that each
/// has the `columns` as string columns.
pub fn count_rows(files: &[PathBuf], columns: &[&str]) -> Result<u64> {
    let mut rows = 0u64;
    for path in files {
        let (reader, _) = open_checked(path, columns)?;
        rows += reader.metadata().file_metadata().num_rows().max(0) as u64;
    }
    Ok(rows)
}

/// The file being read: its reader, the requested columns' leaves, and where it is.
struct OpenFile {
    index: usize,
    reader: SerializedFileReader<File>,
    leaves: Vec<usize>,
    /// Each requested column's maximum definition level (0: the column is required).
    max_defs: Vec<i16>,
    /// The next row group to open.
    next_group: usize,
    /// The open row group, if it has rows left.
    group: Option<RowGroup>,
    /// The file's next row.
    row: u64,
}

/// An open row group: a column reader per requested column, and the rows left.
struct RowGroup {
    readers: Vec<ColumnReaderImpl<ByteArrayType>>,
    left: u64,
    /// The file row at which the row group ends.
    end: u64,
}

/// Streams the string `columns` of `files`, in file order, in batches of a fixed number
/// of rows (the last batch of each file may be shorter; batches run across row groups,
/// never across files).
///
/// Every file's schema is checked when the file is opened, so a bad file later in the
/// list fails when the reader reaches it; call [`count_rows`] first to check them all
/// up front.
pub struct ParquetTextReader {
    files: Vec<PathBuf>,
    columns: Vec<String>,
    batch_rows: usize,
    next_file: usize,
    current: Option<OpenFile>,
    /// Decoding buffers, reused from batch to batch.
    values: Vec<ByteArray>,
    levels: Vec<i16>,
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
            values: Vec::new(),
            levels: Vec::new(),
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
        let columns: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        let (reader, leaves) = open_checked(&self.files[index], &columns)?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let max_defs = leaves
            .iter()
            .map(|&leaf| schema.column(leaf).max_def_level())
            .collect();
        self.current = Some(OpenFile {
            index,
            reader,
            leaves,
            max_defs,
            next_group: 0,
            group: None,
            row: 0,
        });
        Ok(true)
    }

    /// The next batch of the open file, or `None` when it has no rows left.
    fn next_batch(&mut self) -> Result<Option<TextBatch>> {
        let open = self.current.as_mut().expect("a file is open");
        let path = &self.files[open.index];
        let first_row = open.row;
        let mut columns = vec![TextArray::default(); open.leaves.len()];
        let mut rows = 0;
        while rows < self.batch_rows {
            if open.group.as_ref().is_none_or(|group| group.left == 0) {
                if open.next_group >= open.reader.num_row_groups() {
                    break;
                }
                let index = open.next_group;
                open.next_group += 1;
                let (reader, leaves) = (&open.reader, &open.leaves);
                let readers = decode(path, || {
                    let group = reader.get_row_group(index)?;
                    leaves
                        .iter()
                        .map(|&leaf| group.get_column_reader(leaf).map(get_typed_column_reader))
                        .collect()
                })?;
                let left = reader.metadata().row_group(index).num_rows().max(0) as u64;
                open.group = Some(RowGroup {
                    readers,
                    left,
                    end: open.row + left,
                });
                // A row group of no rows: on to the next.
                continue;
            }
            let group = open.group.as_mut().expect("opened above");
            let take = group.left.min((self.batch_rows - rows) as u64) as usize;
            let at = open.row;
            for (i, reader) in group.readers.iter_mut().enumerate() {
                let column = Column {
                    path,
                    name: &self.columns[i],
                    max_def: open.max_defs[i],
                    first_row: at,
                    group_end: group.end,
                };
                column.read(
                    reader,
                    take,
                    &mut self.values,
                    &mut self.levels,
                    &mut columns[i],
                )?;
            }
            group.left -= take as u64;
            open.row += take as u64;
            rows += take;
        }
        Ok((rows > 0).then_some(TextBatch {
            file: open.index,
            first_row,
            columns,
        }))
    }
}

/// One requested column of one stretch of rows, for reading and for error messages.
struct Column<'a> {
    path: &'a Path,
    name: &'a str,
    max_def: i16,
    /// The file row of the stretch's first row.
    first_row: u64,
    /// The file row at which the row group ends.
    group_end: u64,
}

impl Column<'_> {
    /// Reads `rows` rows from `reader` and appends their text to `out`.
    fn read(
        &self,
        reader: &mut ColumnReaderImpl<ByteArrayType>,
        rows: usize,
        values: &mut Vec<ByteArray>,
        levels: &mut Vec<i16>,
        out: &mut TextArray,
    ) -> Result<()> {
        values.clear();
        levels.clear();
        let mut read = 0;
        while read < rows {
            let (records, _, _) = decode(self.path, || {
                reader.read_records(
                    rows - read,
                    (self.max_def > 0).then_some(&mut *levels),
                    None,
                    values,
                )
            })?;
            if records == 0 {
                return Err(Error::Decode {
                    path: self.path.to_path_buf(),
                    source: ParquetError::General(format!(
                        "column `{}` ends at row {}, but its row group ends at row {}",
                        self.name,
                        self.first_row + read as u64,
                        self.group_end,
                    )),
                });
            }
            read += records;
        }
        // The values hold only the non-null rows: the first level below the maximum is
        // the first null.
        if let Some(row) = levels.iter().position(|&l| l < self.max_def) {
            return Err(Error::NullText {
                path: self.path.to_path_buf(),
                column: self.name.to_string(),
                row: self.first_row + row as u64,
            });
        }
        out.text.reserve(values.iter().map(|v| v.len()).sum());
        out.ends.reserve(rows);
        for (i, value) in values.iter().enumerate() {
            let text = std::str::from_utf8(value.data()).map_err(|_| Error::InvalidUtf8 {
                path: self.path.to_path_buf(),
                column: self.name.to_string(),
                row: self.first_row + i as u64,
            })?;
            out.text.push_str(text);
            out.ends.push(out.text.len());
        }
        Ok(())
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
            match self.next_batch() {
                Ok(Some(batch)) => return Some(Ok(batch)),
                Ok(None) => self.current = None,
                Err(err) => {
                    self.current = None;
                    self.next_file = self.files.len();
                    return Some(Err(err));
                }
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

/// Writes string columns (all of the same length, none nullable) to a parquet file,
/// zstd-compressed, `row_group_rows` rows per row group, atomically (a `.tmp` file
/// renamed into place). Used by the demo data generator, the benchmark and the tests.
pub fn write_string_columns(
    path: &Path,
    columns: &[(&str, &[String])],
    row_group_rows: usize,
) -> Result<()> {
    let rows = columns.first().map_or(0, |(_, c)| c.len());
    if columns.iter().any(|(_, c)| c.len() != rows) {
        return Err(Error::Config(format!(
            "{}: columns of different lengths",
            path.display()
        )));
    }
    let to_parquet = parquet_error(path);
    let fields = columns
        .iter()
        .map(|(name, _)| {
            Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::String))
                .build()
                .map(Arc::new)
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(&to_parquet)?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map_err(&to_parquet)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(6).expect("valid level"),
        ))
        .build();
    let file = scalegrad_fs::AtomicFile::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer =
        SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).map_err(&to_parquet)?;
    let chunk = row_group_rows.max(1);
    for start in (0..rows).step_by(chunk) {
        let end = (start + chunk).min(rows);
        let mut group = writer.next_row_group().map_err(&to_parquet)?;
        for (_, values) in columns {
            let mut column = group
                .next_column()
                .map_err(&to_parquet)?
                .expect("one column writer per schema field");
            let values: Vec<ByteArray> = values[start..end]
                .iter()
                .map(|v| ByteArray::from(v.as_str()))
                .collect();
            column
                .typed::<ByteArrayType>()
                .write_batch(&values, None, None)
                .map_err(&to_parquet)?;
            column.close().map_err(&to_parquet)?;
        }
        group.close().map_err(&to_parquet)?;
    }
    // `into_inner` writes the footer (as `close` would) and hands the file back.
    let file = writer.into_inner().map_err(&to_parquet)?;
    file.commit().map_err(|e| Error::io(path, e))
}
