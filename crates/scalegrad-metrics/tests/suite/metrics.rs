//! Hand-computed examples, edge cases and properties of every metric.

use proptest::prelude::*;
use scalegrad_metrics::{
    ContinuationAccumulator, NextTokenAccumulator, Perplexity, RougeScorer, Score,
    SummaryAccumulator, WindowPredictions, WordContinuationAccumulator, WordTokenizer,
    distinct_ngrams, novel_ngram_share, seq_rep_n,
};

/// Tolerance for quotients computed in a different order than the hand formula.
const EPS: f64 = 1e-12;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= EPS
}

// ---------------------------------------------------------------------- seq-rep-n

#[test]
fn seq_rep_of_an_alternating_continuation() {
    let tokens = ["a", "b", "a", "b", "a", "b"];
    // 6 unigrams, 2 distinct; 5 bigrams, 2 distinct; 4 trigrams, 2 distinct; 3
    // four-grams, 2 distinct.
    assert_eq!(seq_rep_n(&tokens, 1), Some(1.0 - 2.0 / 6.0));
    assert_eq!(seq_rep_n(&tokens, 2), Some(1.0 - 2.0 / 5.0));
    assert_eq!(seq_rep_n(&tokens, 3), Some(1.0 - 2.0 / 4.0));
    assert_eq!(seq_rep_n(&tokens, 4), Some(1.0 - 2.0 / 3.0));
    assert_eq!(distinct_ngrams(&tokens, 2), 2);
}

#[test]
fn seq_rep_is_undefined_without_ngrams() {
    let empty: [u32; 0] = [];
    assert_eq!(seq_rep_n(&empty, 1), None);
    assert_eq!(seq_rep_n(&[1u32, 2, 3], 4), None);
    assert_eq!(seq_rep_n(&[1u32, 2, 3], 0), None);
    assert_eq!(seq_rep_n(&[7u32], 1), Some(0.0));
}

#[test]
fn continuation_means_skip_continuations_shorter_than_n() {
    let mut acc = ContinuationAccumulator::new();
    acc.add(&[1u32, 2, 1, 2, 1, 2]);
    acc.add(&[3, 4, 5]);
    acc.add(&[]);
    let r = acc.report();
    assert_eq!(r.continuations, 3);
    assert_eq!(r.tokens, 9);
    assert_eq!(r.seq_rep_counted, [2, 2, 2, 1]);
    // seq-rep-1: (1 - 2/6 + 0) / 2; seq-rep-4 only from the first continuation.
    assert!(close(r.seq_rep_1.unwrap(), (1.0 - 2.0 / 6.0) / 2.0));
    assert!(close(r.seq_rep_2.unwrap(), (1.0 - 2.0 / 5.0) / 2.0));
    assert!(close(r.seq_rep_4.unwrap(), 1.0 - 2.0 / 3.0));
    assert_eq!(r.uniq_seq, 5);
    assert_eq!(r.unit, "token ids");
}

#[test]
fn empty_accumulators_report_no_means() {
    let r = ContinuationAccumulator::<u32>::new().report();
    assert_eq!((r.continuations, r.uniq_seq), (0, 0));
    assert_eq!(r.seq_rep_4, None);
    assert!(NextTokenAccumulator::default().report().is_err());
    assert_eq!(Perplexity::new().perplexity(), None);
    assert_eq!(SummaryAccumulator::new().report().novel, [None; 4]);
}

#[test]
fn word_level_drops_continuations_of_three_words_or_fewer() {
    let mut acc = WordContinuationAccumulator::new(WordTokenizer::Regex);
    acc.add("the cat sat"); // 3 words: dropped
    acc.add(""); // 0 words: dropped
    acc.add("Hello, hello, hello."); // Hello , hello , hello . : 6 words, 4 distinct
    let r = acc.report();
    assert_eq!((r.continuations, r.dropped, r.tokens), (1, 2, 6));
    assert!(close(r.seq_rep_1.unwrap(), 1.0 - 4.0 / 6.0));
    assert_eq!(r.uniq_seq, 4);
    assert!(r.unit.contains(r"\w+|[^\w\s]|\n"), "{}", r.unit);

    let mut spaces = WordContinuationAccumulator::new(WordTokenizer::Whitespace);
    spaces.add("Hello, hello, hello. world");
    let r = spaces.report();
    // "Hello," "hello," "hello." "world": 4 distinct words.
    assert_eq!((r.tokens, r.uniq_seq), (4, 4));
}

// ---------------------------------------------------------------------- next-token

#[test]
fn next_token_metrics_of_a_hand_worked_window() {
    let mut acc = NextTokenAccumulator::new(&[1, 2]).unwrap();
    acc.add_window(&WindowPredictions {
        targets: &[5, 6, 5, 7],
        predictions: &[6, 5, 6, 5],
        target_ranks: &[1, 0, 0, 3],
    })
    .unwrap();
    let r = acc.report().unwrap();
    // t=0 has no context. t=1 predicts 5 = y_0 (gap 1), t=2 predicts 6 = y_1 (gap 1),
    // t=3 predicts 5 = y_2 (gap 1): three repeats, all wrong. Human: y_2 = 5 = y_0 at
    // gap 2, so only l = 2 counts it.
    assert_eq!(r.positions, 4);
    assert_eq!(r.acc, 0.5);
    assert_eq!(r.hits_at_10, 1.0);
    assert_eq!(r.mean_target_rank, 1.0);
    let l1 = r.rep_at(1).unwrap();
    assert_eq!((l1.rep, l1.wrep, l1.human_rep), (0.75, 0.75, 0.0));
    let l2 = r.rep_at(2).unwrap();
    assert_eq!((l2.rep, l2.wrep, l2.human_rep), (0.75, 0.75, 0.25));
    assert_eq!((r.uniq, r.human_uniq), (2, 3));
}

#[test]
fn correct_repeats_count_for_rep_but_not_wrep_and_ties_are_hits() {
    let mut acc = NextTokenAccumulator::default();
    acc.add_window(&WindowPredictions {
        targets: &[1, 1],
        predictions: &[1, 1],
        target_ranks: &[0, 0],
    })
    .unwrap();
    let r = acc.report().unwrap();
    assert_eq!(r.acc, 1.0);
    let rep = r.rep_at(128).unwrap();
    assert_eq!((rep.rep, rep.wrep, rep.human_rep), (0.5, 0.0, 0.5));
}

#[test]
fn context_does_not_cross_windows() {
    let mut acc = NextTokenAccumulator::new(&[16]).unwrap();
    for _ in 0..2 {
        acc.add_window(&WindowPredictions {
            targets: &[9],
            predictions: &[9],
            target_ranks: &[0],
        })
        .unwrap();
    }
    let r = acc.report().unwrap();
    assert_eq!(r.rep_at(16).unwrap().rep, 0.0);
    assert_eq!(r.rep_at(16).unwrap().human_rep, 0.0);
}

#[test]
fn bad_windows_and_context_lengths_are_errors() {
    let mut acc = NextTokenAccumulator::default();
    let err = acc
        .add_window(&WindowPredictions {
            targets: &[1, 2],
            predictions: &[1],
            target_ranks: &[0, 0],
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("2 targets but 1 predictions"),
        "{err}"
    );
    assert!(NextTokenAccumulator::new(&[0, 16]).is_err());
}

/// The definition, computed naively: scan the previous l targets of the window.
fn naive_rep(targets: &[u32], predictions: &[u32], l: usize) -> (u64, u64, u64) {
    let (mut rep, mut wrep, mut human) = (0, 0, 0);
    for t in 0..targets.len() {
        let context = &targets[t.saturating_sub(l)..t];
        let r = context.contains(&predictions[t]);
        rep += u64::from(r);
        wrep += u64::from(r && predictions[t] != targets[t]);
        human += u64::from(context.contains(&targets[t]));
    }
    (rep, wrep, human)
}

fn window_strategy() -> impl Strategy<Value = Vec<(u32, u32, u32)>> {
    prop::collection::vec((0u32..6, 0u32..6, 0u32..12), 0..40)
}

proptest! {
    #[test]
    fn rep_counts_match_the_naive_definition(window in window_strategy(), l in 1usize..8) {
        let targets: Vec<u32> = window.iter().map(|w| w.0).collect();
        let predictions: Vec<u32> = window.iter().map(|w| w.1).collect();
        let ranks: Vec<u32> = window.iter().map(|w| w.2).collect();
        let mut acc = NextTokenAccumulator::new(&[l]).unwrap();
        acc.add_window(&WindowPredictions { targets: &targets, predictions: &predictions, target_ranks: &ranks }).unwrap();
        if targets.is_empty() {
            prop_assert!(acc.report().is_err());
        } else {
            let r = acc.report().unwrap();
            let n = targets.len() as f64;
            let (rep, wrep, human) = naive_rep(&targets, &predictions, l);
            let got = r.rep_at(l).unwrap();
            prop_assert_eq!(got.rep, rep as f64 / n);
            prop_assert_eq!(got.wrep, wrep as f64 / n);
            prop_assert_eq!(got.human_rep, human as f64 / n);
            prop_assert_eq!(r.acc, ranks.iter().filter(|&&x| x == 0).count() as f64 / n);
        }
    }

    #[test]
    fn merged_shards_equal_one_accumulator(windows in prop::collection::vec(window_strategy(), 1..6), split in 0usize..6) {
        let mut whole = NextTokenAccumulator::default();
        let mut left = NextTokenAccumulator::default();
        let mut right = NextTokenAccumulator::default();
        for (i, w) in windows.iter().enumerate() {
            let targets: Vec<u32> = w.iter().map(|x| x.0).collect();
            let predictions: Vec<u32> = w.iter().map(|x| x.1).collect();
            let ranks: Vec<u32> = w.iter().map(|x| x.2).collect();
            let window = WindowPredictions { targets: &targets, predictions: &predictions, target_ranks: &ranks };
            whole.add_window(&window).unwrap();
            if i < split { left.add_window(&window).unwrap() } else { right.add_window(&window).unwrap() }
        }
        left.merge(right);
        prop_assert_eq!(left.report().ok(), whole.report().ok());
    }

    #[test]
    fn seq_rep_lies_in_unit_interval_and_distinct_sequences_score_zero(tokens in prop::collection::vec(0u32..5, 0..30), n in 1usize..5) {
        match seq_rep_n(&tokens, n) {
            None => prop_assert!(tokens.len() < n),
            Some(v) => {
                prop_assert!((0.0..1.0).contains(&v));
                let distinct: Vec<usize> = (0..tokens.len()).collect();
                prop_assert_eq!(seq_rep_n(&distinct, n), Some(0.0));
            }
        }
    }

    #[test]
    fn continuation_shards_merge(conts in prop::collection::vec(prop::collection::vec(0u32..8, 0..12), 0..8), split in 0usize..8) {
        let mut whole = ContinuationAccumulator::new();
        let mut left = ContinuationAccumulator::new();
        let mut right = ContinuationAccumulator::new();
        for (i, c) in conts.iter().enumerate() {
            whole.add(c);
            if i < split { left.add(c) } else { right.add(c) }
        }
        left.merge(right);
        let (a, b) = (left.report(), whole.report());
        prop_assert_eq!(a.seq_rep_counted, b.seq_rep_counted);
        prop_assert_eq!((a.uniq_seq, a.tokens, a.continuations), (b.uniq_seq, b.tokens, b.continuations));
        for n in 1..=4 {
            match (a.seq_rep(n), b.seq_rep(n)) {
                (Some(x), Some(y)) => prop_assert!(close(x, y)),
                (x, y) => prop_assert_eq!(x, y),
            }
        }
    }

    #[test]
    fn perplexity_does_not_depend_on_how_batches_are_split(nlls in prop::collection::vec(0.0f32..10.0, 1..50), split in 0usize..50) {
        let split = split.min(nlls.len());
        let mut whole = Perplexity::new();
        whole.add_nlls(&nlls);
        let mut a = Perplexity::new();
        a.add_nlls(&nlls[..split]);
        let mut b = Perplexity::new();
        b.add_nlls(&nlls[split..]);
        let merged: Perplexity = [a, b].into_iter().sum();
        prop_assert_eq!(merged.tokens(), whole.tokens());
        prop_assert!((merged.perplexity().unwrap() / whole.perplexity().unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rouge_is_bounded_and_swapping_texts_swaps_precision_and_recall(
        a in prop::collection::vec(prop::sample::select(vec!["cat", "cats", "the", "ran", "running", "A", "!", "\n"]), 0..15),
        b in prop::collection::vec(prop::sample::select(vec!["cat", "cats", "the", "ran", "running", "A", "!", "\n"]), 0..15),
        stem in any::<bool>(),
    ) {
        let (a, b) = (a.join(" "), b.join(" "));
        let scorer = RougeScorer::new(stem);
        let ab = scorer.score(&a, &b);
        let ba = scorer.score(&b, &a);
        for k in 0..4 {
            for v in ab.get(k).to_array() {
                prop_assert!((0.0..=1.0).contains(&v));
            }
        }
        for (x, y) in [(ab.rouge1, ba.rouge1), (ab.rouge2, ba.rouge2), (ab.rouge_l, ba.rouge_l)] {
            prop_assert_eq!(x.precision, y.recall);
            prop_assert_eq!(x.recall, y.precision);
        }
        let aa = scorer.score(&a, &a);
        if !scorer.tokenize(&a).is_empty() {
            prop_assert_eq!(aa.rouge1, Score::new(1.0, 1.0));
            prop_assert_eq!(aa.rouge_l, Score::new(1.0, 1.0));
            prop_assert_eq!(aa.rouge_lsum, Score::new(1.0, 1.0));
        }
    }
}

// ---------------------------------------------------------------------- perplexity

#[test]
fn perplexity_of_a_uniform_model_is_the_vocabulary_size() {
    let mut p = Perplexity::new();
    p.add_sum(100.0 * 50257f64.ln(), 100);
    assert!((p.perplexity().unwrap() - 50257.0).abs() < 1e-6);
}

// ---------------------------------------------------------------------- summaries

#[test]
fn summary_repetition_and_novelty_by_hand() {
    let mut acc = SummaryAccumulator::new();
    acc.add("The cat sat on the mat.", "The cat ran. The cat ran!");
    let r = acc.report();
    // Summary tokens: the cat ran the cat ran. seq-rep-1 = 1 - 3/6. Unigrams absent
    // from the article: ran, ran (2 of 6). Bigrams: the-cat, cat-ran, ran-the, the-cat,
    // cat-ran; novel: cat-ran, ran-the, cat-ran (3 of 5).
    assert_eq!(r.summaries, 1);
    assert!(close(r.seq_rep[0].unwrap(), 0.5));
    assert!(close(r.novel[0].unwrap(), 2.0 / 6.0));
    assert!(close(r.novel[1].unwrap(), 3.0 / 5.0));
    // 4 trigrams, 3 distinct; 3 four-grams, all distinct and none in the article.
    assert!(close(r.seq_rep[2].unwrap(), 1.0 - 3.0 / 4.0));
    assert_eq!(r.seq_rep[3], Some(0.0));
    assert!(close(r.novel[3].unwrap(), 1.0));
}

#[test]
fn summary_without_article_is_entirely_novel_and_short_summaries_are_skipped() {
    assert_eq!(novel_ngram_share(&["a", "b"], &[], 1), Some(1.0));
    let mut acc = SummaryAccumulator::new();
    acc.add("", "one two");
    acc.add("anything", "");
    let r = acc.report();
    assert_eq!(r.summaries, 2);
    assert_eq!(r.novel[0], Some(1.0));
    assert_eq!(r.novel[2], None);
    assert_eq!(r.seq_rep[1], Some(0.0));
}
