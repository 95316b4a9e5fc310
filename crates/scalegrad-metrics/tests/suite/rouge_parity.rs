//! Our ROUGE against rouge_score 0.1.2 on the stress corpus of
//! fixtures/make_fixtures.py: every precision, recall and F of rouge1, rouge2, rougeL
//! and rougeLsum, with and without the stemmer, for every pair.

use crate::common;

use scalegrad_metrics::{RougeScorer, RougeScores};
use serde_json::Value;

/// Largest allowed |ours - rouge_score| for any score.
const TOLERANCE: f64 = 1e-9;
/// The issue asks for at least this many pairs.
const MIN_PAIRS: usize = 2_000;

#[test]
fn every_score_of_every_pair_matches_rouge_score() {
    let fixture: Value = serde_json::from_str(&common::read_fixture("rouge_pairs.json.gz"))
        .expect("parse rouge_pairs.json.gz");
    let pairs = fixture["pairs"].as_array().expect("pairs");
    assert!(pairs.len() >= MIN_PAIRS, "only {} pairs", pairs.len());
    let scorers = [RougeScorer::new(false), RougeScorer::new(true)];
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, pair) in pairs.iter().enumerate() {
        let target = pair[0].as_str().expect("target");
        let prediction = pair[1].as_str().expect("prediction");
        let expected: Vec<f64> = pair[2]
            .as_array()
            .expect("scores")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        assert_eq!(expected.len(), 24, "pair {i}");
        for (s, scorer) in scorers.iter().enumerate() {
            let ours = scorer.score(target, prediction);
            for (k, name) in RougeScores::TYPES.iter().enumerate() {
                let score = ours.get(k).to_array();
                for (m, measure) in ["precision", "recall", "fmeasure"].iter().enumerate() {
                    let python = expected[s * 12 + k * 3 + m];
                    checked += 1;
                    if (score[m] - python).abs() > TOLERANCE {
                        failures.push(format!(
                            "pair {i} stemmer={} {name} {measure}: rust={}, python={python}\n  \
                             target={target:?}\n  prediction={prediction:?}",
                            scorer.use_stemmer(),
                            score[m]
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(checked, pairs.len() * 24);
    assert!(
        failures.is_empty(),
        "{} of {checked} scores differ, e.g.\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}

#[test]
fn parallel_scoring_equals_pairwise_scoring() {
    let fixture: Value = serde_json::from_str(&common::read_fixture("rouge_pairs.json.gz"))
        .expect("parse rouge_pairs.json.gz");
    let pairs = fixture["pairs"].as_array().expect("pairs");
    let targets: Vec<&str> = pairs.iter().map(|p| p[0].as_str().unwrap()).collect();
    let predictions: Vec<&str> = pairs.iter().map(|p| p[1].as_str().unwrap()).collect();
    let scorer = RougeScorer::new(true);
    let all = scorer.score_all(&targets, &predictions).unwrap();
    for (i, s) in all.iter().enumerate() {
        assert_eq!(*s, scorer.score(targets[i], predictions[i]), "pair {i}");
    }
}
