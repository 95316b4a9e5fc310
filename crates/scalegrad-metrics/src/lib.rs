//! Every number the scalegrad project reports: perplexity, the repetition metrics of
//! Welleck et al. (ICLR 2020) that the ScaleGrad paper (Lin, Han and Joty, ICML 2021)
//! evaluates with, and ROUGE identical to Google's `rouge_score` 0.1.2.
//!
//! The crate is pure Rust with no tensor library: plain slices of token ids or strings
//! go in, plain serde-serialisable structs come out. Streaming accumulators merge, so
//! evaluation can be split over batches and threads.
//!
//! - Open-ended generation, next-token metrics on teacher-forced windows:
//!   [`Perplexity`], and [`NextTokenAccumulator`] for acc, rep/l, wrep/l, human rep/l
//!   (l in [`REP_CONTEXTS`]) and uniq.
//! - Open-ended generation, continuation metrics: [`ContinuationAccumulator`] on token
//!   ids and [`WordContinuationAccumulator`] on decoded text (seq-rep-1..4, uniq-seq),
//!   with the [`WordTokenizer`] `\w+|[^\w\s]|\n` of the reference code.
//! - Summarisation: [`RougeScorer`] (ROUGE-1/2/L/Lsum, with or without NLTK's
//!   [`PorterStemmer`]), [`RougeReport`] (means and rouge_score-style seeded bootstrap
//!   intervals) and [`SummaryAccumulator`] (repetition inside summaries and the share
//!   of novel n-grams).
//!
//! The Python code each part mirrors: `rouge_score/{tokenize,rouge_scorer,scoring}.py`,
//! `nltk/stem/porter.py`, and `custom/metrics.py` of facebookresearch/unlikelihood_training.
//!
//! ```
//! use scalegrad_metrics::{BootstrapConfig, RougeReport, RougeScorer};
//!
//! let scorer = RougeScorer::new(true);
//! let report = RougeReport::compute(
//!     &scorer,
//!     &["the cat sat on the mat", "a dog barked"],
//!     &["the cat is on the mat", "the dog barked loudly"],
//!     &BootstrapConfig::default(),
//! )?;
//! assert_eq!(report.count, 2);
//! assert!(report.rouge1.low.fmeasure <= report.rouge1.high.fmeasure);
//! # Ok::<(), scalegrad_metrics::MetricsError>(())
//! ```
//!
//! Public items: [`MetricsError`]; [`Perplexity`]; [`NextTokenAccumulator`],
//! [`WindowPredictions`], [`NextTokenReport`], [`RepAtL`], [`REP_CONTEXTS`];
//! [`ContinuationAccumulator`], [`WordContinuationAccumulator`],
//! [`ContinuationReport`], [`SEQ_REP_ORDERS`]; [`WordTokenizer`],
//! [`is_python_word_char`], [`is_python_space_char`]; [`seq_rep_n`],
//! [`distinct_ngrams`], [`novel_ngram_share`]; [`RougeScorer`], [`RougeScores`],
//! [`Score`], [`fmeasure`], [`rouge_tokenize`], [`PorterStemmer`],
//! [`BootstrapConfig`], [`AggregateScore`], [`RougeAggregate`], [`RougeReport`],
//! [`TypeReport`]; [`SummaryAccumulator`], [`SummaryReport`].

mod continuation;
mod error;
mod next_token;
mod ngram;
mod perplexity;
mod rouge;
mod summary;
mod words;

pub use continuation::{
    ContinuationAccumulator, ContinuationReport, SEQ_REP_ORDERS, WordContinuationAccumulator,
};
pub use error::MetricsError;
pub use next_token::{
    NextTokenAccumulator, NextTokenReport, REP_CONTEXTS, RepAtL, WindowPredictions,
};
pub use ngram::{distinct_ngrams, novel_ngram_share, seq_rep_n};
pub use perplexity::Perplexity;
pub use rouge::porter::PorterStemmer;
pub use rouge::tokenize::rouge_tokenize;
pub use rouge::{
    AggregateScore, BootstrapConfig, RougeAggregate, RougeReport, RougeScorer, RougeScores, Score,
    TypeReport, fmeasure,
};
pub use summary::{SummaryAccumulator, SummaryReport};
pub use words::{WordTokenizer, is_python_space_char, is_python_word_char};
