//! Language-modelling windows over a token stream.
//!
//! The stream is the concatenation of a split's rows in order (see
//! [`crate::tokenize`]). Window `i` starts at token `i * stride` and holds
//! `block_size + 1` tokens: the first `block_size` are the inputs, the last
//! `block_size` the targets (inputs shifted by one). With `stride == block_size`
//! (the default) windows do not overlap in their targets: every token of the stream but
//! the first is a target exactly once, which is what perplexity over non-overlapping
//! windows needs (REFERENCE.md §2). With a smaller stride, `mask_overlap` turns the
//! targets already scored by the previous window into the ignore index, the usual
//! "sliding window" perplexity.
//!
//! The tail that does not fill a whole window is dropped ([`LastWindow::Drop`]) or
//! becomes one more window padded with `pad_id` inputs and ignore-index targets
//! ([`LastWindow::Pad`]).

use serde::{Deserialize, Serialize};

use crate::cache::TokenArray;
use crate::error::{Error, Result};

/// The target value that losses skip (HF's `-100`).
pub const IGNORE_INDEX: i64 = -100;

/// What happens to the tokens after the last full window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LastWindow {
    /// Dropped (the default, as HF `group_texts`).
    Drop,
    /// Kept as one more window, padded.
    Pad {
        /// The input id used for padding (GPT-2 has no pad token; `<|endoftext|>` is
        /// the usual choice, and the attention mask hides it anyway).
        pad_id: u32,
    },
}

/// How a token stream is cut into windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Inputs per window (the model's sequence length).
    pub block_size: usize,
    /// Tokens between the starts of consecutive windows (`block_size` for
    /// non-overlapping windows).
    pub stride: usize,
    /// The partial last window.
    pub last: LastWindow,
    /// With `stride < block_size`, set the targets that the previous window already
    /// scored to [`IGNORE_INDEX`].
    pub mask_overlap: bool,
}

impl WindowConfig {
    /// Non-overlapping windows of `block_size`, tail dropped.
    pub fn new(block_size: usize) -> Self {
        Self {
            block_size,
            stride: block_size,
            last: LastWindow::Drop,
            mask_overlap: false,
        }
    }

    /// Sets the stride.
    pub fn with_stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the policy for the last partial window.
    pub fn with_last(mut self, last: LastWindow) -> Self {
        self.last = last;
        self
    }

    /// Masks targets already scored by the previous window.
    pub fn with_mask_overlap(mut self, mask: bool) -> Self {
        self.mask_overlap = mask;
        self
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.block_size == 0 {
            return Err(Error::Config("block_size must be at least 1".into()));
        }
        if self.stride == 0 || self.stride > self.block_size {
            return Err(Error::Config(format!(
                "stride must be in 1..=block_size ({}), got {} (a larger stride would skip \
                 tokens)",
                self.block_size, self.stride
            )));
        }
        Ok(())
    }

    /// The number of windows over a stream of `n_tokens`.
    pub fn num_windows(&self, n_tokens: usize) -> usize {
        let span = self.block_size + 1;
        let full = if n_tokens >= span {
            (n_tokens - span) / self.stride + 1
        } else {
            0
        };
        match self.last {
            LastWindow::Drop => full,
            LastWindow::Pad { .. } => {
                // One more window when some target is not yet covered by a full window.
                let covered = if full == 0 {
                    1
                } else {
                    (full - 1) * self.stride + span
                };
                full + usize::from(n_tokens > covered)
            }
        }
    }
}

/// One window: `block_size` inputs, targets and mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmWindow {
    /// Input ids (padded with the pad id).
    pub input_ids: Vec<u32>,
    /// Target ids (the inputs shifted by one; [`IGNORE_INDEX`] where padded or masked).
    pub targets: Vec<i64>,
    /// 1 for real inputs, 0 for padding.
    pub attention_mask: Vec<u8>,
}

/// Windows over a token stream.
#[derive(Clone, Debug)]
pub struct LmWindows<'a> {
    tokens: &'a TokenArray,
    config: WindowConfig,
    len: usize,
}

impl<'a> LmWindows<'a> {
    /// Windows of `tokens` cut as `config` says.
    pub fn new(tokens: &'a TokenArray, config: WindowConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            tokens,
            config,
            len: config.num_windows(tokens.len()),
        })
    }

    /// The number of windows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// Window `i` (panics when `i >= len()`: a programmer error).
    pub fn get(&self, i: usize) -> LmWindow {
        assert!(i < self.len, "window {i} of {}", self.len);
        let b = self.config.block_size;
        let start = i * self.config.stride;
        let end = (start + b + 1).min(self.tokens.len());
        let span = self.tokens.to_vec(start..end);
        let real_inputs = span.len().saturating_sub(1).min(b);
        let pad = match self.config.last {
            LastWindow::Pad { pad_id } => pad_id,
            LastWindow::Drop => 0,
        };
        let mut input_ids = span[..real_inputs].to_vec();
        input_ids.resize(b, pad);
        let mut targets: Vec<i64> = span[1..].iter().map(|&t| t as i64).collect();
        targets.resize(b, IGNORE_INDEX);
        if self.config.mask_overlap && i > 0 {
            // Targets at positions < block_size - stride were scored by window i - 1.
            let overlap = b - self.config.stride;
            targets[..overlap].fill(IGNORE_INDEX);
        }
        let mut attention_mask = vec![1u8; real_inputs];
        attention_mask.resize(b, 0);
        LmWindow {
            input_ids,
            targets,
            attention_mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: u32) -> TokenArray {
        TokenArray::U32((0..n).collect())
    }

    #[test]
    fn non_overlapping_windows_cover_each_target_once() {
        // 10 tokens, block 3: windows [0..4), [3..7), [6..10); tail none.
        let tokens = stream(10);
        let w = LmWindows::new(&tokens, WindowConfig::new(3)).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(0).input_ids, vec![0, 1, 2]);
        assert_eq!(w.get(0).targets, vec![1, 2, 3]);
        assert_eq!(w.get(2).input_ids, vec![6, 7, 8]);
        assert_eq!(w.get(2).targets, vec![7, 8, 9]);
        let all: Vec<i64> = (0..w.len()).flat_map(|i| w.get(i).targets).collect();
        assert_eq!(all, (1..10).collect::<Vec<i64>>());
    }

    #[test]
    fn partial_tail_is_dropped_or_padded() {
        // 12 tokens, block 3: full windows cover targets 1..=9; 10 and 11 remain.
        let tokens = stream(12);
        let dropped = LmWindows::new(&tokens, WindowConfig::new(3)).unwrap();
        assert_eq!(dropped.len(), 3);
        let padded = LmWindows::new(
            &tokens,
            WindowConfig::new(3).with_last(LastWindow::Pad { pad_id: 99 }),
        )
        .unwrap();
        assert_eq!(padded.len(), 4);
        let last = padded.get(3);
        assert_eq!(last.input_ids, vec![9, 10, 99]);
        assert_eq!(last.targets, vec![10, 11, IGNORE_INDEX]);
        assert_eq!(last.attention_mask, vec![1, 1, 0]);
    }

    #[test]
    fn short_streams_give_one_padded_window_or_none() {
        let tokens = stream(2);
        let cfg = WindowConfig::new(4);
        assert_eq!(LmWindows::new(&tokens, cfg).unwrap().len(), 0);
        let padded = cfg.with_last(LastWindow::Pad { pad_id: 0 });
        let w = LmWindows::new(&tokens, padded).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w.get(0).targets,
            vec![1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
        );
        // A single token has no target at all: no window.
        assert_eq!(LmWindows::new(&stream(1), padded).unwrap().len(), 0);
    }

    #[test]
    fn strided_windows_mask_already_scored_targets() {
        let tokens = stream(9);
        let cfg = WindowConfig::new(4).with_stride(2).with_mask_overlap(true);
        let w = LmWindows::new(&tokens, cfg).unwrap();
        // Starts 0, 2, 4 (4 + 5 = 9 tokens).
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(0).targets, vec![1, 2, 3, 4]);
        assert_eq!(w.get(1).targets, vec![IGNORE_INDEX, IGNORE_INDEX, 5, 6]);
        assert_eq!(w.get(2).targets, vec![IGNORE_INDEX, IGNORE_INDEX, 7, 8]);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(WindowConfig::new(0).validate().is_err());
        assert!(WindowConfig::new(4).with_stride(5).validate().is_err());
        assert!(WindowConfig::new(4).with_stride(0).validate().is_err());
    }
}
