//! A fast path for GPT-2 style byte-level BPE tokenizers.
//!
//! `tokenizers`' full pipeline tracks offsets and alignments through every step and
//! builds an `Encoding` (ids, tokens as strings, offsets, masks) per row, which is most
//! of its cost when only ids are needed. For the GPT-2 pipeline (no normaliser,
//! byte-level pre-tokenizer with GPT-2's regex, BPE model), the ids of a row are the
//! concatenation, over the regex's pieces, of the BPE of each piece's byte-level
//! spelling, so ids can be memoised per piece: natural text repeats its words, and most
//! pieces are cache hits. This module does exactly that, by hand, because the library
//! offers no ids-only entry point. It is used only when [`FastBpe::new`] recognises the
//! pipeline; rows containing an added token (such as `<|endoftext|>`) go through the
//! full pipeline. Tests compare it with `Tokenizer::encode` on the parity fixtures, the
//! demo corpus and random Unicode text.
//!
//! GPT-2's pattern is `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|
//! \s+(?!\S)|\s+`. The `regex` crate has no look-ahead, so the pattern is used without
//! `\s+(?!\S)`, and a whitespace run that is followed by a non-space character gives up
//! its last character (which then joins the next piece through ` ?`, or stands alone),
//! which is what the look-ahead alternative does.

use std::collections::HashMap;

use regex::Regex;
use tokenizers::models::ModelWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{Model, Tokenizer};

use crate::error::{Error, Result};

/// GPT-2's byte-to-character table (`bytes_to_unicode` in OpenAI's encoder.py).
fn bytes_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            b as char
        } else {
            let c = char::from_u32(256 + n).expect("256..512 are valid chars");
            n += 1;
            c
        };
    }
    table
}

/// Per-thread memo of piece -> ids.
pub(crate) type PieceCache = HashMap<String, Vec<u32>>;

/// Pieces cached per thread before the memo is cleared (bounds memory).
const MAX_CACHED_PIECES: usize = 1 << 20;

/// The ids-only GPT-2 tokenizer path.
pub(crate) struct FastBpe {
    regex: Regex,
    bytes_char: [char; 256],
    added: Vec<String>,
}

impl FastBpe {
    /// The fast path for `tokenizer`, if its pipeline is GPT-2's: no normaliser,
    /// byte-level pre-tokenizer (regex on, no prefix space), BPE without dropout or
    /// byte fallback, no truncation or padding, and no special tokens to add (or a
    /// byte-level post-processor, which adds none).
    pub(crate) fn new(tokenizer: &Tokenizer, add_special_tokens: bool) -> Option<Self> {
        if tokenizer.get_normalizer().is_some()
            || tokenizer.get_truncation().is_some()
            || tokenizer.get_padding().is_some()
        {
            return None;
        }
        match tokenizer.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::ByteLevel(b)) if b.use_regex && !b.add_prefix_space => {}
            _ => return None,
        }
        match tokenizer.get_model() {
            ModelWrapper::BPE(bpe)
                if bpe.dropout.is_none_or(|d| d == 0.0) && !bpe.byte_fallback => {}
            _ => return None,
        }
        if add_special_tokens
            && !matches!(
                tokenizer.get_post_processor(),
                None | Some(PostProcessorWrapper::ByteLevel(_))
            )
        {
            return None;
        }
        let added = tokenizer
            .get_added_tokens_decoder()
            .into_values()
            .map(|t| t.content)
            .filter(|c| !c.is_empty())
            .collect();
        Some(Self {
            regex: Regex::new(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+")
                .expect("valid pattern"),
            bytes_char: bytes_char(),
            added,
        })
    }

    /// GPT-2's pre-tokenization of `text` into pieces (substrings, in order).
    pub(crate) fn pieces<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.regex.find_at(text, pos) else {
                break;
            };
            let (start, mut end) = (m.start(), m.end());
            debug_assert_eq!(start, pos, "the pattern matches every character");
            let piece = &text[start..end];
            if end < text.len() && piece.chars().all(char::is_whitespace) {
                // `\s+(?!\S)`: leave the last whitespace character for the next piece.
                let last = piece.chars().next_back().expect("non-empty").len_utf8();
                if piece.len() > last {
                    end -= last;
                }
            }
            out.push(&text[start..end]);
            pos = end;
        }
        out
    }

    /// Appends the ids of `text` to `out`, through `cache`.
    pub(crate) fn encode(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        cache: &mut PieceCache,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        if self.added.iter().any(|a| text.contains(a.as_str())) {
            let enc = tokenizer
                .encode_fast(text, false)
                .map_err(|e| Error::tokenizer("encoding a row with an added token", e))?;
            out.extend_from_slice(enc.get_ids());
            return Ok(());
        }
        if cache.len() > MAX_CACHED_PIECES {
            cache.clear();
        }
        let model = tokenizer.get_model();
        let mut word = String::new();
        for piece in self.pieces(text) {
            if let Some(ids) = cache.get(piece) {
                out.extend_from_slice(ids);
                continue;
            }
            word.clear();
            word.extend(piece.bytes().map(|b| self.bytes_char[b as usize]));
            let ids: Vec<u32> = model
                .tokenize(&word)
                .map_err(|e| Error::tokenizer("BPE of a piece", e))?
                .into_iter()
                .map(|t| t.id)
                .collect();
            out.extend_from_slice(&ids);
            cache.insert(piece.to_string(), ids);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tiny_gpt2() -> Tokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny-gpt2");
        crate::tokenizer::load_tokenizer(&dir).unwrap()
    }

    fn check(tok: &Tokenizer, fast: &FastBpe, text: &str) -> std::result::Result<(), String> {
        let full = tok.encode(text, false).unwrap().get_ids().to_vec();
        let mut cache = PieceCache::new();
        let mut got = Vec::new();
        // Twice through the same memo: a cached piece gives the same ids.
        for _ in 0..2 {
            got.clear();
            fast.encode(tok, text, &mut cache, &mut got).unwrap();
            if got != full {
                return Err(format!("{text:?}: fast={got:?}, tokenizers={full:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn fast_path_matches_the_full_pipeline_on_the_parity_texts() {
        let tok = tiny_gpt2();
        let fast = FastBpe::new(&tok, false).expect("GPT-2 pipeline recognised");
        let parity: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gpt2_parity.json"),
            )
            .unwrap(),
        )
        .unwrap();
        for case in parity["cases"].as_array().unwrap() {
            check(&tok, &fast, case["text"].as_str().unwrap()).unwrap();
        }
        for text in [
            "a  b   c\n\n\nd \t e\u{a0}\u{a0}f\u{3000}g   ",
            "it's they'll I'M we'd 'S 'sam ''s",
            "x\u{85}y\u{2028}z \u{200b} \r\n \u{1680}",
            "   leading and trailing   ",
        ] {
            check(&tok, &fast, text).unwrap();
        }
        for row in scalegrad_demo::wikitext_rows(9, 5) {
            check(&tok, &fast, &row).unwrap();
        }
    }

    #[test]
    fn other_pipelines_are_not_taken_over() {
        let bert = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bert-uncased");
        let tok = crate::tokenizer::load_tokenizer(&bert).unwrap();
        assert!(FastBpe::new(&tok, false).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn fast_path_matches_on_random_text(
            text in proptest::collection::vec(
                prop_oneof![
                    Just(' '), Just('\n'), Just('\t'), Just('\''), Just('s'), Just('t'),
                    Just('\u{a0}'), Just('\u{3000}'), Just('\u{85}'), Just('\u{2029}'),
                    proptest::char::range('a', 'z'),
                    proptest::char::range('A', 'Z'),
                    proptest::char::range('0', '9'),
                    proptest::char::range('!', '/'),
                    proptest::char::range('\u{c0}', '\u{24f}'),
                    proptest::char::range('\u{300}', '\u{36f}'),
                    proptest::char::range('\u{660}', '\u{669}'),
                    proptest::char::range('\u{2160}', '\u{2188}'),
                    proptest::char::range('\u{4e00}', '\u{4e40}'),
                    proptest::char::range('\u{1f600}', '\u{1f610}'),
                    proptest::char::any(),
                ],
                0..40,
            )
        ) {
            let tok = tiny_gpt2();
            let fast = FastBpe::new(&tok, false).unwrap();
            let text: String = text.into_iter().collect();
            if let Err(msg) = check(&tok, &fast, &text) {
                prop_assert!(false, "{}", msg);
            }
        }
    }

    #[test]
    fn byte_table_matches_gpt2() {
        let t = bytes_char();
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[0xAD], 'Ń');
    }
}
