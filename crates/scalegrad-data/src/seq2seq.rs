//! Summarisation examples for BERT2BERT.
//!
//! The convention (REFERENCE.md §2; the same as HF `EncoderDecoderModel` fine-tuning in
//! transformers >= 4.12, where the model no longer shifts labels itself):
//!
//! ```text
//! input_ids          = [CLS] article[:max_source_len - 2] [SEP]
//! labels             = highlights[:max_target_len - 1] [SEP]
//! decoder_input_ids  = [decoder_start] labels[:-1]        (labels shifted right)
//! ```
//!
//! with `decoder_start` = `decoder_start_token_id` from the checkpoint's config.json
//! ([CLS] = 101 for the bert-small2bert-small checkpoint). Labels carry no leading
//! `[CLS]`: generation starts from `decoder_start` and must predict the first highlight
//! token, then stop by predicting `[SEP]` (the `eos_token_id`). Putting `[CLS]` at the
//! front of the labels would teach the decoder to answer `[CLS]` with `[CLS]`, one cause
//! of "bert2bert emits only [CLS]/[SEP]" (REFERENCE.md §5). In a batch, `input_ids` and
//! `decoder_input_ids` are padded with `[PAD]` (mask 0) and `labels` with the ignore
//! index -100, so padding never reaches the loss.
//!
//! The highlights' sentences are joined with `\n` in CNN/DailyMail; BERT's normaliser
//! turns the newlines into spaces.

use serde::{Deserialize, Serialize};

use crate::cache::TokenizedSplit;
use crate::error::{Error, Result};
use crate::lm::IGNORE_INDEX;
use crate::tokenize::TokenizeSpec;
use crate::tokenizer::BertSpecialIds;

/// Lengths and special ids of summarisation examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummarizationConfig {
    /// Encoder length including `[CLS]` and `[SEP]` (512 for BERT).
    pub max_source_len: usize,
    /// Label length including the final `[SEP]` (128 in the earlier attempt).
    pub max_target_len: usize,
    /// `[CLS]`: first encoder token.
    pub cls_id: u32,
    /// `[SEP]`: last encoder token and end of the labels.
    pub sep_id: u32,
    /// `[PAD]`: padding of inputs and decoder inputs.
    pub pad_id: u32,
    /// The decoder's first input (`decoder_start_token_id`, [CLS] = 101 here).
    pub decoder_start_id: u32,
}

impl SummarizationConfig {
    /// The usual settings for a BERT vocabulary: 512 / 128, decoder start = `[CLS]`.
    pub fn bert(ids: &BertSpecialIds) -> Self {
        Self {
            max_source_len: 512,
            max_target_len: 128,
            cls_id: ids.cls,
            sep_id: ids.sep,
            pad_id: ids.pad,
            decoder_start_id: ids.cls,
        }
    }

    /// Checks the lengths.
    pub fn validate(&self) -> Result<()> {
        if self.max_source_len < 3 || self.max_target_len < 2 {
            return Err(Error::Config(format!(
                "max_source_len must be >= 3 and max_target_len >= 2 (room for the special \
                 tokens), got {} and {}",
                self.max_source_len, self.max_target_len
            )));
        }
        Ok(())
    }

    /// The tokenisation that feeds [`Self::example`]: article and highlights without
    /// special tokens, cut to the room left by them.
    pub fn tokenize_spec(&self) -> TokenizeSpec {
        TokenizeSpec::summarization(self.max_source_len - 2, self.max_target_len - 1)
    }

    /// One example from the article's and the highlights' ids (no special tokens).
    pub fn example(&self, article: &[u32], highlights: &[u32]) -> SummarizationExample {
        let article = &article[..article.len().min(self.max_source_len - 2)];
        let highlights = &highlights[..highlights.len().min(self.max_target_len - 1)];
        let mut input_ids = Vec::with_capacity(article.len() + 2);
        input_ids.push(self.cls_id);
        input_ids.extend_from_slice(article);
        input_ids.push(self.sep_id);
        let mut labels = highlights.to_vec();
        labels.push(self.sep_id);
        let mut decoder_input_ids = Vec::with_capacity(labels.len());
        decoder_input_ids.push(self.decoder_start_id);
        decoder_input_ids.extend_from_slice(&labels[..labels.len() - 1]);
        SummarizationExample {
            input_ids,
            decoder_input_ids,
            labels,
        }
    }
}

/// One unpadded summarisation example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummarizationExample {
    /// `[CLS] article [SEP]`.
    pub input_ids: Vec<u32>,
    /// `[decoder_start] highlights` (the labels shifted right).
    pub decoder_input_ids: Vec<u32>,
    /// `highlights [SEP]`.
    pub labels: Vec<u32>,
}

/// Summarisation examples over a tokenised split with `article` and `highlights`.
#[derive(Clone, Debug)]
pub struct SummarizationSet<'a> {
    split: &'a TokenizedSplit,
    article: usize,
    highlights: usize,
    config: SummarizationConfig,
}

impl<'a> SummarizationSet<'a> {
    /// Examples over `split`, which must have `article` and `highlights` columns.
    pub fn new(split: &'a TokenizedSplit, config: SummarizationConfig) -> Result<Self> {
        config.validate()?;
        let find = |name: &str| {
            split
                .columns
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "the tokenised split has no `{name}` column (it has: {})",
                        split
                            .columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        };
        Ok(Self {
            split,
            article: find("article")?,
            highlights: find("highlights")?,
            config,
        })
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.split.num_rows()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `i`.
    pub fn get(&self, i: usize) -> SummarizationExample {
        let article = self.split.columns[self.article].rows.row(i);
        let highlights = self.split.columns[self.highlights].rows.row(i);
        self.config.example(&article, &highlights)
    }

    /// The encoder length of example `i` (for length bucketing).
    pub fn source_len(&self, i: usize) -> usize {
        self.split.columns[self.article]
            .rows
            .row_len(i)
            .min(self.config.max_source_len - 2)
            + 2
    }

    /// The configuration.
    pub fn config(&self) -> &SummarizationConfig {
        &self.config
    }
}

/// A padded batch of summarisation examples, row-major `[batch, len]` arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seq2SeqBatch {
    /// Rows in the batch.
    pub batch_size: usize,
    /// Encoder length (the longest `input_ids` in the batch).
    pub source_len: usize,
    /// Decoder length (the longest labels in the batch).
    pub target_len: usize,
    /// `[batch, source_len]`, padded with `[PAD]`.
    pub input_ids: Vec<i64>,
    /// `[batch, source_len]`, 1 for tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
    /// `[batch, target_len]`, padded with `[PAD]`.
    pub decoder_input_ids: Vec<i64>,
    /// `[batch, target_len]`, 1 for tokens, 0 for padding.
    pub decoder_attention_mask: Vec<i64>,
    /// `[batch, target_len]`, padded with -100.
    pub labels: Vec<i64>,
    /// The examples' indices in the split.
    pub indices: Vec<usize>,
}

/// Pads examples to the longest in the batch.
pub fn collate_seq2seq(
    examples: &[SummarizationExample],
    pad_id: u32,
    indices: Vec<usize>,
) -> Seq2SeqBatch {
    let source_len = examples
        .iter()
        .map(|e| e.input_ids.len())
        .max()
        .unwrap_or(0);
    let target_len = examples.iter().map(|e| e.labels.len()).max().unwrap_or(0);
    let b = examples.len();
    let mut batch = Seq2SeqBatch {
        batch_size: b,
        source_len,
        target_len,
        input_ids: vec![pad_id as i64; b * source_len],
        attention_mask: vec![0; b * source_len],
        decoder_input_ids: vec![pad_id as i64; b * target_len],
        decoder_attention_mask: vec![0; b * target_len],
        labels: vec![IGNORE_INDEX; b * target_len],
        indices,
    };
    for (r, e) in examples.iter().enumerate() {
        for (j, &t) in e.input_ids.iter().enumerate() {
            batch.input_ids[r * source_len + j] = t as i64;
            batch.attention_mask[r * source_len + j] = 1;
        }
        for (j, (&d, &l)) in e.decoder_input_ids.iter().zip(&e.labels).enumerate() {
            batch.decoder_input_ids[r * target_len + j] = d as i64;
            batch.decoder_attention_mask[r * target_len + j] = 1;
            batch.labels[r * target_len + j] = l as i64;
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SummarizationConfig {
        SummarizationConfig {
            max_source_len: 6,
            max_target_len: 4,
            cls_id: 101,
            sep_id: 102,
            pad_id: 0,
            decoder_start_id: 101,
        }
    }

    #[test]
    fn labels_end_with_sep_and_decoder_inputs_are_them_shifted_right() {
        let e = config().example(&[1, 2, 3], &[7, 8]);
        assert_eq!(e.input_ids, vec![101, 1, 2, 3, 102]);
        assert_eq!(e.labels, vec![7, 8, 102]);
        assert_eq!(e.decoder_input_ids, vec![101, 7, 8]);
    }

    #[test]
    fn truncation_leaves_room_for_the_special_tokens() {
        let e = config().example(&[1, 2, 3, 4, 5, 6, 7], &[7, 8, 9, 10, 11]);
        assert_eq!(e.input_ids, vec![101, 1, 2, 3, 4, 102]);
        assert_eq!(e.labels, vec![7, 8, 9, 102]);
        assert_eq!(e.decoder_input_ids, vec![101, 7, 8, 9]);
    }

    #[test]
    fn padding_is_masked_and_ignored_by_the_loss() {
        let c = config();
        let batch = collate_seq2seq(
            &[c.example(&[1], &[7]), c.example(&[1, 2, 3], &[7, 8])],
            0,
            vec![4, 9],
        );
        assert_eq!((batch.source_len, batch.target_len), (5, 3));
        assert_eq!(batch.input_ids, vec![101, 1, 102, 0, 0, 101, 1, 2, 3, 102]);
        assert_eq!(batch.attention_mask, vec![1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
        assert_eq!(batch.labels, vec![7, 102, -100, 7, 8, 102]);
        assert_eq!(batch.decoder_input_ids, vec![101, 7, 0, 101, 7, 8]);
        assert_eq!(batch.decoder_attention_mask, vec![1, 1, 0, 1, 1, 1]);
        assert_eq!(batch.indices, vec![4, 9]);
    }
}
