//! The `\w+|[^\w\s]|\n` word tokeniser against Python's `re` (fixtures/word_tokenizer.json).

use crate::common;

use scalegrad_metrics::{WordTokenizer, is_python_space_char, is_python_word_char};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(&common::read_fixture("word_tokenizer.json")).expect("parse fixture")
}

#[test]
fn every_assigned_code_point_is_classified_as_python_re_does() {
    let fixture = fixture();
    let mut mismatches = Vec::new();
    let mut checked = 0u32;
    for run in fixture["runs"].as_array().unwrap() {
        let (start, end) = (
            run[0].as_u64().unwrap() as u32,
            run[1].as_u64().unwrap() as u32,
        );
        let class = run[2].as_str().unwrap();
        if class == "u" {
            // Unassigned in Python's Unicode 14 (or a surrogate): newer Unicode versions
            // may assign them, so they are not compared.
            continue;
        }
        for c in (start..=end).filter_map(char::from_u32) {
            let ours = if is_python_word_char(c) {
                "w"
            } else if is_python_space_char(c) {
                "s"
            } else {
                "o"
            };
            checked += 1;
            if ours != class {
                mismatches.push(format!("U+{:04X}: rust={ours}, python={class}", c as u32));
            }
        }
    }
    assert!(checked > 200_000, "only {checked} code points checked");
    assert!(
        mismatches.is_empty(),
        "{} code points differ, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(20)]
    );
}

#[test]
fn tokens_equal_python_findall() {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 300);
    for case in cases {
        let text = case[0].as_str().unwrap();
        let expected: Vec<&str> = case[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(
            WordTokenizer::Regex.tokenize(text),
            expected,
            "text={text:?}"
        );
    }
}
