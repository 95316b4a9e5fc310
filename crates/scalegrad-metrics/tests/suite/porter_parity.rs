//! Our Porter stemmer against NLTK 3.10.4's `PorterStemmer()` on every word of
//! Debian's `wamerican-large` list, the `[a-z0-9]` pieces rouge_score would stem, and
//! synthetic tokens (see fixtures/make_fixtures.py).

use crate::common;

use scalegrad_metrics::PorterStemmer;

/// The fixture must cover at least this many words, so a truncated file fails loudly.
const MIN_WORDS: usize = 200_000;

#[test]
fn every_word_stems_as_nltk_does() {
    let text = common::read_fixture("porter_words.tsv.gz");
    let stemmer = PorterStemmer::new();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for line in text.lines() {
        let (word, expected) = line.split_once('\t').expect("word<TAB>stem");
        let ours = stemmer.stem(word);
        if ours != expected {
            mismatches.push(format!("{word:?}: rust={ours:?}, python={expected:?}"));
        }
        checked += 1;
    }
    assert!(checked >= MIN_WORDS, "only {checked} words in the fixture");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} words differ from NLTK, e.g.\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}
