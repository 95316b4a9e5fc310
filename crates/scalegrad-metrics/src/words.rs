//! Word tokenisers for word-level continuation metrics.
//!
//! [`WordTokenizer::Regex`] is `re.findall(r"\w+|[^\w\s]|\n", text)` with Python's `re`
//! semantics, the tokeniser of Welleck et al.'s and the ScaleGrad authors' evaluation
//! code: runs of word characters, each other non-space character alone, and each
//! newline. In Python 3 (Unicode 14) `\w` is exactly the characters of general category
//! L* or N* plus `_`, and `\s` is Unicode's White_Space plus the four separators
//! U+001C..U+001F; we spell those classes out for the `regex` crate, whose own `\w`
//! also includes combining marks and connector punctuation. `tests/suite/word_tokenizer.rs`
//! checks the classification of every code point assigned in Unicode 14 and
//! `re.findall` outputs on stress strings.
//!
//! [`WordTokenizer::Whitespace`] is Python's `text.split()`, which the authors' code
//! used for the completion "uniq" count; reports name the tokeniser they used.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

static WORD_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s\x{1C}-\x{1F}]|\n").expect("valid word regex")
});

/// How decoded text is split into words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordTokenizer {
    /// Python's `re.findall(r"\w+|[^\w\s]|\n", text)`.
    #[default]
    Regex,
    /// Python's `text.split()`: runs of non-whitespace.
    Whitespace,
}

impl WordTokenizer {
    /// The words of `text`, as slices of it.
    ///
    /// ```
    /// use scalegrad_metrics::WordTokenizer;
    ///
    /// let text = "Hello, world!\nIt's  fine";
    /// assert_eq!(
    ///     WordTokenizer::Regex.tokenize(text),
    ///     ["Hello", ",", "world", "!", "\n", "It", "'", "s", "fine"]
    /// );
    /// assert_eq!(WordTokenizer::Whitespace.tokenize(text), ["Hello,", "world!", "It's", "fine"]);
    /// ```
    pub fn tokenize<'a>(&self, text: &'a str) -> Vec<&'a str> {
        match self {
            Self::Regex => WORD_RE.find_iter(text).map(|m| m.as_str()).collect(),
            Self::Whitespace => text
                .split(is_python_space)
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    /// A description for reports, naming the exact rule.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Regex => r"words: Python re.findall(r'\w+|[^\w\s]|\n')",
            Self::Whitespace => "words: Python str.split() on whitespace",
        }
    }
}

/// Python's `str.isspace`: Unicode White_Space plus U+001C..U+001F.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// Whether Python's `re` matches `c` with `\w` (general category L* or N*, or `_`).
pub fn is_python_word_char(c: char) -> bool {
    static CLASS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_]$").expect("valid class"));
    let mut buf = [0u8; 4];
    CLASS.is_match(c.encode_utf8(&mut buf))
}

/// Whether Python's `re` matches `c` with `\s`.
pub fn is_python_space_char(c: char) -> bool {
    is_python_space(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_tokeniser_keeps_newlines_and_splits_punctuation() {
        assert_eq!(
            WordTokenizer::Regex.tokenize(" = = History = = \n"),
            ["=", "=", "History", "=", "=", "\n"]
        );
        assert_eq!(WordTokenizer::Regex.tokenize("snake_case"), ["snake_case"]);
        assert!(WordTokenizer::Regex.tokenize(" \t\r").is_empty());
    }

    #[test]
    fn python_word_class_excludes_marks_and_includes_other_numbers() {
        // U+0301 (combining acute, Mn) is not \w in Python; U+00B2 (superscript two,
        // No) is.
        assert!(!is_python_word_char('\u{301}'));
        assert!(is_python_word_char('\u{B2}'));
        assert!(is_python_word_char('_'));
        assert!(!is_python_word_char('\u{203F}'));
        assert!(is_python_space_char('\u{1C}'));
    }
}
