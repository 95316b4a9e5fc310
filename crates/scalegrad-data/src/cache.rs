//! Tokenised splits on disk.
//!
//! A tokenised split is stored as one binary file named
//! `<label>-<key digest>.sgtok` in the cache folder, where the key is (the identity of
//! every input file: canonical path, size and modification time; the tokenizer's
//! fingerprint; the tokenisation settings; the format version). Any change to any of
//! them gives another file name, so a stale cache is never read. The key is also stored
//! inside the file and compared on load.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic         8 bytes  "SGTOKC01"
//! header_len    u64
//! header        JSON: key, rows, vocab size, token width, per column name/tokens/chars
//! per column    offsets: (rows + 1) x u64, then tokens: n x u16 (vocab <= 65536) or u32
//! crc32         u32      CRC-32 (IEEE) of every byte from header_len to the last token
//! total_len     u64      the file's length, to catch truncation before reading further
//! ```
//!
//! Files are written to a temporary name and renamed into place, so a crash never
//! leaves a half-written cache under the real name. A file that fails any check is
//! reported as [`Error::CorruptCache`]; [`crate::tokenize`] then rebuilds it with a
//! warning.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The format version; bump it when the layout or the tokenisation procedure changes.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"SGTOKC01";
const TRAILER_LEN: usize = 4 + 8;

/// Writes `bytes` to `path` atomically and durably ([`scalegrad_fs::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    scalegrad_fs::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// What identifies an input file: where it is, how big it is and when it last changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// The canonical path (symlinks resolved: for the HF cache, the content-addressed
    /// blob).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 if unknown).
    pub mtime_ns: u128,
}

impl FileIdentity {
    /// The identity of the file at `path`.
    pub fn of(path: &Path) -> Result<Self> {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let meta = std::fs::metadata(&canonical).map_err(|e| Error::io(path, e))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            path: canonical.to_string_lossy().into_owned(),
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// Everything a tokenised split depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheKey {
    /// [`FORMAT_VERSION`] when written.
    pub format: u32,
    /// The input files, in reading order.
    pub files: Vec<FileIdentity>,
    /// The tokenizer's fingerprint ([`crate::tokenizer::tokenizer_fingerprint`]).
    pub tokenizer: String,
    /// The tokenisation settings (columns, truncation, special tokens).
    pub settings: serde_json::Value,
}

impl CacheKey {
    /// A short hex digest of the key, used in the file name.
    pub fn digest(&self) -> String {
        crate::hex::short_digest(self)
    }
}

/// Token ids stored as `u16` when the vocabulary fits, else `u32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenArray {
    /// Ids of a vocabulary of at most 65536 entries.
    U16(Vec<u16>),
    /// Ids of a larger vocabulary.
    U32(Vec<u32>),
}

impl TokenArray {
    /// Packs `ids` as `u16` when every id of a `vocab_size` vocabulary fits.
    pub fn pack(ids: Vec<u32>, vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 && ids.iter().all(|&id| id <= u16::MAX as u32) {
            Self::U16(ids.into_iter().map(|id| id as u16).collect())
        } else {
            Self::U32(ids)
        }
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        match self {
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
        }
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id at `i`.
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Self::U16(v) => v[i] as u32,
            Self::U32(v) => v[i],
        }
    }

    /// Copies the ids of `range` out as `u32`.
    pub fn to_vec(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        match self {
            Self::U16(v) => v[range].iter().map(|&id| id as u32).collect(),
            Self::U32(v) => v[range].to_vec(),
        }
    }

    /// Bytes per id (2 or 4).
    pub fn width(&self) -> usize {
        match self {
            Self::U16(_) => 2,
            Self::U32(_) => 4,
        }
    }
}

/// Rows of token ids: row `i` is `tokens[offsets[i]..offsets[i + 1]]`. Rows are stored
/// back to back in reading order, so `tokens` is also the concatenation of all rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaggedTokens {
    /// `rows + 1` offsets into `tokens`, starting at 0.
    pub offsets: Vec<u64>,
    /// All ids, row after row.
    pub tokens: TokenArray,
}

impl RaggedTokens {
    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The ids of row `i`.
    pub fn row(&self, i: usize) -> Vec<u32> {
        self.tokens
            .to_vec(self.offsets[i] as usize..self.offsets[i + 1] as usize)
    }

    /// The number of ids in row `i`.
    pub fn row_len(&self, i: usize) -> usize {
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }
}

/// One tokenised column with its statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedColumn {
    /// The column name.
    pub name: String,
    /// Unicode characters in the column's text, before truncation.
    pub chars: u64,
    /// The ids, one row per input row.
    pub rows: RaggedTokens,
}

/// A tokenised split: the key it was made from and one entry per tokenised column.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenizedSplit {
    /// What the split was made from.
    pub key: CacheKey,
    /// The tokenizer's vocabulary size (with added tokens).
    pub vocab_size: usize,
    /// The columns, in the order of the settings.
    pub columns: Vec<TokenizedColumn>,
}

impl TokenizedSplit {
    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.rows.num_rows())
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&TokenizedColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    key: CacheKey,
    rows: u64,
    vocab_size: u64,
    width: u8,
    columns: Vec<ColumnHeader>,
}

#[derive(Serialize, Deserialize)]
struct ColumnHeader {
    name: String,
    tokens: u64,
    chars: u64,
}

/// A writer that keeps a running CRC-32 of what passes through.
struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a tokenised split to `path` atomically.
pub fn save(path: &Path, split: &TokenizedSplit) -> Result<()> {
    let rows = split.num_rows();
    let width = split.columns.first().map_or(2, |c| c.rows.tokens.width());
    if split
        .columns
        .iter()
        .any(|c| c.rows.num_rows() != rows || c.rows.tokens.width() != width)
    {
        return Err(Error::Config(
            "columns of a tokenised split must have the same rows and token width".into(),
        ));
    }
    let header = Header {
        key: split.key.clone(),
        rows: rows as u64,
        vocab_size: split.vocab_size as u64,
        width: width as u8,
        columns: split
            .columns
            .iter()
            .map(|c| ColumnHeader {
                name: c.name.clone(),
                tokens: c.rows.tokens.len() as u64,
                chars: c.chars,
            })
            .collect(),
    };
    let header = serde_json::to_vec(&header).expect("a header always serialises");
    let io = |e| Error::io(path, e);
    let file = scalegrad_fs::AtomicFile::create(path).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(MAGIC).map_err(io)?;
    let mut w = CrcWriter {
        inner: out,
        crc: crc32fast::Hasher::new(),
        written: MAGIC.len() as u64,
    };
    w.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(&header).map_err(io)?;
    let mut buf = Vec::with_capacity(1 << 16);
    for column in &split.columns {
        write_le(&mut w, &column.rows.offsets, u64::to_le_bytes, &mut buf).map_err(io)?;
        match &column.rows.tokens {
            TokenArray::U16(v) => write_le(&mut w, v, u16::to_le_bytes, &mut buf),
            TokenArray::U32(v) => write_le(&mut w, v, u32::to_le_bytes, &mut buf),
        }
        .map_err(io)?;
    }
    let crc = w.crc.clone().finalize();
    let total = w.written + TRAILER_LEN as u64;
    let mut out = w.inner;
    out.write_all(&crc.to_le_bytes()).map_err(io)?;
    out.write_all(&total.to_le_bytes()).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.commit().map_err(io)
}

/// Writes `values` little-endian (`to_le`) through `buf`, 64 KiB at a time.
fn write_le<T: Copy, const N: usize>(
    w: &mut impl Write,
    values: &[T],
    to_le: fn(T) -> [u8; N],
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    for chunk in values.chunks((1 << 16) / N) {
        buf.clear();
        chunk.iter().for_each(|&v| buf.extend_from_slice(&to_le(v)));
        w.write_all(buf)?;
    }
    Ok(())
}

/// Reads a tokenised split, checking its length, checksum, header and array sizes.
/// Any damage is reported as [`Error::CorruptCache`].
pub fn load(path: &Path) -> Result<TokenizedSplit> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let corrupt = |reason: String| Error::CorruptCache {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < MAGIC.len() + 8 + TRAILER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt(
            "not a scalegrad token cache (bad magic or too short)".into(),
        ));
    }
    let n = bytes.len();
    let total = u64::from_le_bytes(bytes[n - 8..].try_into().expect("8 bytes"));
    if total != n as u64 {
        return Err(corrupt(format!(
            "length {n} differs from the recorded {total} (truncated or appended to)"
        )));
    }
    let crc = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().expect("4 bytes"));
    let body = &bytes[8..n - TRAILER_LEN];
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch (the file was damaged)".into()));
    }
    let header_len = u64::from_le_bytes(body[..8].try_into().expect("8 bytes")) as usize;
    let header_bytes = body
        .get(8..8 + header_len)
        .ok_or_else(|| corrupt("header length past the end".into()))?;
    let header: Header = serde_json::from_slice(header_bytes)
        .map_err(|e| corrupt(format!("unreadable header: {e}")))?;
    let width = header.width as usize;
    if width != 2 && width != 4 {
        return Err(corrupt(format!("token width {width}")));
    }
    let mut data = &body[8 + header_len..];
    let mut take = |len: usize, what: &str| -> Result<&[u8]> {
        if data.len() < len {
            return Err(corrupt(format!("{what} past the end")));
        }
        let (head, rest) = data.split_at(len);
        data = rest;
        Ok(head)
    };
    let rows = header.rows as usize;
    let mut columns = Vec::with_capacity(header.columns.len());
    for column in header.columns {
        let offsets: Vec<u64> = take((rows + 1) * 8, "offsets")?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let n_tokens = column.tokens as usize;
        if offsets.first() != Some(&0)
            || offsets.last() != Some(&column.tokens)
            || offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(corrupt(format!("bad offsets in column `{}`", column.name)));
        }
        let raw = take(n_tokens * width, "tokens")?;
        let tokens = if width == 2 {
            TokenArray::U16(
                raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            )
        } else {
            TokenArray::U32(
                raw.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
            )
        };
        columns.push(TokenizedColumn {
            name: column.name,
            chars: column.chars,
            rows: RaggedTokens { offsets, tokens },
        });
    }
    if !data.is_empty() {
        return Err(corrupt(format!("{} unexpected trailing bytes", data.len())));
    }
    Ok(TokenizedSplit {
        key: header.key,
        vocab_size: header.vocab_size as usize,
        columns,
    })
}

/// The cache folder to use: `$SCALEGRAD_CACHE/tokens`, else the platform cache folder
/// (`$XDG_CACHE_HOME` or `~/.cache`) + `scalegrad/tokens`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCALEGRAD_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("tokens");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::cache_dir)
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("scalegrad")
        .join("tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(ids: Vec<Vec<u32>>, vocab: usize) -> TokenizedSplit {
        let mut offsets = vec![0u64];
        let mut flat = Vec::new();
        for row in &ids {
            flat.extend_from_slice(row);
            offsets.push(flat.len() as u64);
        }
        TokenizedSplit {
            key: CacheKey {
                format: FORMAT_VERSION,
                files: vec![],
                tokenizer: "t".into(),
                settings: serde_json::json!({"columns": ["text"]}),
            },
            vocab_size: vocab,
            columns: vec![TokenizedColumn {
                name: "text".into(),
                chars: 42,
                rows: RaggedTokens {
                    offsets,
                    tokens: TokenArray::pack(flat, vocab),
                },
            }],
        }
    }

    #[test]
    fn small_vocabularies_pack_into_u16_and_large_ones_into_u32() {
        assert_eq!(TokenArray::pack(vec![1, 65535], 65536).width(), 2);
        assert_eq!(TokenArray::pack(vec![1, 2], 70000).width(), 4);
    }

    #[test]
    fn save_then_load_round_trips_both_widths() {
        let dir = tempfile::tempdir().unwrap();
        for vocab in [50257, 100_000] {
            let path = dir.path().join(format!("v{vocab}.sgtok"));
            let original = split(vec![vec![1, 2, 3], vec![], vec![50000, 7]], vocab);
            save(&path, &original).unwrap();
            assert_eq!(load(&path).unwrap(), original);
        }
    }

    #[test]
    fn every_kind_of_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sgtok");
        save(&path, &split(vec![vec![1, 2, 3], vec![4]], 100)).unwrap();
        let good = std::fs::read(&path).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..good.len() - 5].to_vec()),
            ("empty", vec![]),
            ("flipped token bit", {
                let mut b = good.clone();
                let i = b.len() - 14;
                b[i] ^= 1;
                b
            }),
            ("appended", {
                let mut b = good.clone();
                b.push(0);
                b
            }),
            ("bad magic", {
                let mut b = good.clone();
                b[0] = b'X';
                b
            }),
        ];
        for (what, bytes) in cases {
            std::fs::write(&path, &bytes).unwrap();
            match load(&path) {
                Err(Error::CorruptCache { .. }) => {}
                other => panic!("{what}: expected CorruptCache, got {other:?}"),
            }
        }
    }
}
