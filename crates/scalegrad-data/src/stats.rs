//! Statistics of a tokenised split (what `scalegrad data stats` prints).

use serde::Serialize;

use crate::cache::TokenizedColumn;

/// Counts for one tokenised column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnStats {
    /// The column name.
    pub name: String,
    /// Unicode characters of text (before truncation).
    pub chars: u64,
    /// Tokens kept (after truncation, if any).
    pub tokens: u64,
    /// Rows with no tokens (WikiText's blank rows).
    pub empty_rows: u64,
    /// Mean tokens per row.
    pub mean_tokens: f64,
    /// The longest row, in tokens.
    pub max_tokens: u64,
}

impl ColumnStats {
    /// The statistics of `column`.
    pub fn of(column: &TokenizedColumn) -> Self {
        let rows = column.rows.num_rows();
        let lens = (0..rows).map(|i| column.rows.row_len(i) as u64);
        let (mut empty, mut max) = (0, 0);
        for l in lens {
            empty += u64::from(l == 0);
            max = max.max(l);
        }
        let tokens = column.rows.tokens.len() as u64;
        Self {
            name: column.name.clone(),
            chars: column.chars,
            tokens,
            empty_rows: empty,
            mean_tokens: if rows == 0 {
                0.0
            } else {
                tokens as f64 / rows as f64
            },
            max_tokens: max,
        }
    }
}
