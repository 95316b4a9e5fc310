//! rouge_score's tokeniser (`rouge_score/tokenize.py`, version 0.1.2).
//!
//! Python does: `text.lower()`; replace every run of characters outside `[a-z0-9]`
//! with a space; split on whitespace; with the stemmer, Porter-stem tokens longer than
//! three characters; keep the tokens that match `^[a-z0-9]+$`.
//!
//! The only subtle part is the lower-casing. Python's `str.lower` uses Unicode's full
//! case mapping, and exactly two non-ASCII characters lower-case to something that
//! contains `[a-z0-9]` (checked over every code point with Python 3.11, Unicode 14):
//! U+0130 `İ` becomes `i` followed by U+0307 (a combining dot, which then separates),
//! and U+212A `K` (Kelvin sign) becomes `k`. Every other non-ASCII character ends up
//! as a separator. We apply that mapping character by character, which equals Python's
//! whole-string lower-casing here because the one context-dependent mapping (Greek
//! final sigma) never produces ASCII.

use super::porter::PorterStemmer;

/// Appends the tokens of `text` to `out`, as rouge_score's `tokenize(text, stemmer)`
/// returns them. `buf` is scratch space for the stemmer.
pub(crate) fn tokenize_into(
    text: &str,
    stemmer: Option<&PorterStemmer>,
    out: &mut Vec<String>,
    buf: &mut Vec<char>,
) {
    let mut token = String::new();
    let mut flush = |token: &mut String, out: &mut Vec<String>| {
        if token.is_empty() {
            return;
        }
        let done = match stemmer {
            Some(stemmer) if token.len() > 3 => stemmer.stem_lowercase(token, buf),
            _ => token.clone(),
        };
        token.clear();
        // Python's final `^[a-z0-9]+$` check: stems of `[a-z0-9]+` tokens stay in
        // that alphabet, so this only drops (hypothetical) empty stems.
        if !done.is_empty() {
            out.push(done);
        }
    };
    for c in text.chars() {
        match c {
            'a'..='z' | '0'..='9' => token.push(c),
            'A'..='Z' => token.push(c.to_ascii_lowercase()),
            // `İ`.lower() == "i\u{307}": the `i` continues the token, the dot ends it.
            '\u{130}' => {
                token.push('i');
                flush(&mut token, out);
            }
            // The Kelvin sign lower-cases to ASCII `k`.
            '\u{212A}' => token.push('k'),
            _ => flush(&mut token, out),
        }
    }
    flush(&mut token, out);
}

/// Tokenises `text` exactly as rouge_score 0.1.2 does (see the module docs), with NLTK's
/// Porter stemmer applied to tokens longer than three characters when `stemmer` is
/// given.
///
/// ```
/// use scalegrad_metrics::{PorterStemmer, rouge_tokenize};
///
/// assert_eq!(rouge_tokenize("The cat's 2 hats!", None), ["the", "cat", "s", "2", "hats"]);
/// let stemmer = PorterStemmer::new();
/// assert_eq!(rouge_tokenize("Running dogs", Some(&stemmer)), ["run", "dog"]);
/// ```
pub fn rouge_tokenize(text: &str, stemmer: Option<&PorterStemmer>) -> Vec<String> {
    let mut out = Vec::new();
    tokenize_into(text, stemmer, &mut out, &mut Vec::new());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_alphanumerics_separate_and_case_folds() {
        assert_eq!(
            rouge_tokenize("Hello,WORLD--it's 3.14", None),
            ["hello", "world", "it", "s", "3", "14"]
        );
        assert!(rouge_tokenize("", None).is_empty());
        assert!(rouge_tokenize(" \n!!! — ", None).is_empty());
    }

    #[test]
    fn dotted_capital_i_and_kelvin_lowercase_to_ascii_like_python() {
        // Python: "aİb".lower() == "ai\u0307b" -> ["ai", "b"]; "\u212aelvin" -> ["kelvin"].
        assert_eq!(rouge_tokenize("aİb", None), ["ai", "b"]);
        assert_eq!(rouge_tokenize("\u{212A}elvin", None), ["kelvin"]);
        assert_eq!(rouge_tokenize("café naïve", None), ["caf", "na", "ve"]);
    }

    #[test]
    fn only_tokens_longer_than_three_chars_are_stemmed() {
        let s = PorterStemmer::new();
        // "was" would stem to "wa"; it has three characters, so it is kept.
        assert_eq!(
            rouge_tokenize("was runs ties", Some(&s)),
            ["was", "run", "tie"]
        );
    }

    #[test]
    fn only_two_non_ascii_chars_map_into_the_ascii_alphabet() {
        // Rust's full lower-case mapping agrees with the table above: no other scalar
        // value lower-cases to anything containing [a-z0-9].
        for c in (0x80u32..0x11_0000).filter_map(char::from_u32) {
            let ascii = c.to_lowercase().any(|l| l.is_ascii_alphanumeric());
            assert_eq!(
                ascii,
                c == '\u{130}' || c == '\u{212A}',
                "U+{:04X}",
                c as u32
            );
        }
    }
}
