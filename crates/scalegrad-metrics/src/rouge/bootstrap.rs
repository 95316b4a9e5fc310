//! Bootstrap confidence intervals as rouge_score's `scoring.BootstrapAggregator`.
//!
//! For each ROUGE type separately, rouge_score stacks the per-pair scores into an
//! `(N, 3)` matrix (precision, recall, F), draws `n_samples` resamples of `N` row
//! indices with replacement (`np.random.choice`), takes each resample's column means,
//! and reports `np.percentile` of those means at `100 * (1 - ci) / 2`, 50 and
//! `100 * (1 - (1 - ci) / 2)` as low, mid and high. "mid" is therefore the median of
//! the bootstrap means, close to but not exactly the plain mean, which we report beside
//! it. The percentile is numpy's default "linear" method, including its `_lerp`
//! rounding.
//!
//! Only the random numbers differ: ours come from a ChaCha8 generator seeded with
//! [`BootstrapConfig::seed`] (so reruns agree exactly), not from numpy's global Mersenne
//! Twister. With the numpy indices substituted the method reproduces rouge_score's
//! intervals; a unit test checks that against indices recorded from numpy.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{RougeScores, Score};
use crate::MetricsError;

/// Settings of the bootstrap (rouge_score's defaults: 1000 resamples, 95%).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Resamples drawn per ROUGE type.
    pub n_samples: usize,
    /// Width of the interval in `[0, 1]`; 0.95 reports the 2.5th and 97.5th percentiles.
    pub confidence_interval: f64,
    /// Seed of the resampling generator.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            n_samples: 1000,
            confidence_interval: 0.95,
            seed: 0,
        }
    }
}

impl BootstrapConfig {
    /// Checks the settings as rouge_score's constructor does.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if !(0.0..=1.0).contains(&self.confidence_interval) {
            return Err(MetricsError::ConfidenceInterval(self.confidence_interval));
        }
        if self.n_samples == 0 {
            return Err(MetricsError::NoBootstrapSamples);
        }
        Ok(())
    }
}

/// Low, mid and high bootstrap percentiles of one ROUGE type (rouge_score's
/// `AggregateScore`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateScore {
    /// Lower percentile, `100 * (1 - ci) / 2`.
    pub low: Score,
    /// Median of the bootstrap means (what HF `evaluate` reports).
    pub mid: Score,
    /// Upper percentile, `100 * (1 - (1 - ci) / 2)`.
    pub high: Score,
}

/// Bootstrap intervals of the four ROUGE types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RougeAggregate {
    /// ROUGE-1.
    pub rouge1: AggregateScore,
    /// ROUGE-2.
    pub rouge2: AggregateScore,
    /// ROUGE-L.
    #[serde(rename = "rougeL")]
    pub rouge_l: AggregateScore,
    /// ROUGE-Lsum.
    #[serde(rename = "rougeLsum")]
    pub rouge_lsum: AggregateScore,
}

impl RougeAggregate {
    /// Bootstraps every type of `scores` (one entry per pair). The types are resampled
    /// in the order rouge1, rouge2, rougeL, rougeLsum from one seeded generator.
    pub fn bootstrap(
        scores: &[RougeScores],
        config: &BootstrapConfig,
    ) -> Result<Self, MetricsError> {
        config.validate()?;
        if scores.is_empty() {
            return Err(MetricsError::Empty("ROUGE scores"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let n = scores.len();
        let mut per_type = [AggregateScore::default(); 4];
        for (k, out) in per_type.iter_mut().enumerate() {
            let matrix: Vec<[f64; 3]> = scores.iter().map(|s| s.get(k).to_array()).collect();
            *out = bootstrap_matrix(&matrix, config, |idx| {
                for i in idx.iter_mut() {
                    *i = rng.random_range(0..n);
                }
            });
        }
        let [rouge1, rouge2, rouge_l, rouge_lsum] = per_type;
        Ok(Self {
            rouge1,
            rouge2,
            rouge_l,
            rouge_lsum,
        })
    }
}

/// rouge_score's `_bootstrap_resample` on an `(N, 3)` matrix, with `draw` filling each
/// resample's `N` row indices.
pub(crate) fn bootstrap_matrix(
    matrix: &[[f64; 3]],
    config: &BootstrapConfig,
    mut draw: impl FnMut(&mut [usize]),
) -> AggregateScore {
    let n = matrix.len();
    let mut idx = vec![0usize; n];
    let mut means: [Vec<f64>; 3] = std::array::from_fn(|_| Vec::with_capacity(config.n_samples));
    for _ in 0..config.n_samples {
        draw(&mut idx);
        let mut sum = [0.0f64; 3];
        for &i in &idx {
            for (s, v) in sum.iter_mut().zip(matrix[i]) {
                *s += v;
            }
        }
        for (column, s) in means.iter_mut().zip(sum) {
            column.push(s / n as f64);
        }
    }
    for column in &mut means {
        column.sort_by(f64::total_cmp);
    }
    // The same arithmetic as `100 * np.array([delta, 0.5, 1 - delta])` followed by
    // np.percentile's division by 100.
    let delta = (1.0 - config.confidence_interval) / 2.0;
    let [low, mid, high] = [delta, 0.5, 1.0 - delta].map(|q| {
        let q = 100.0 * q;
        Score::from_array(std::array::from_fn(|c| percentile_sorted(&means[c], q)))
    });
    AggregateScore { low, mid, high }
}

/// `np.percentile(values, q)` with the default "linear" method, on sorted values.
///
/// # Panics
/// If `sorted` is empty (a programmer error).
pub(crate) fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * (q / 100.0);
    if virtual_index >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    if virtual_index < 0.0 {
        return sorted[0];
    }
    let previous = virtual_index.floor();
    let gamma = virtual_index - previous;
    let (a, b) = (sorted[previous as usize], sorted[previous as usize + 1]);
    // numpy's `_lerp`: interpolate from the nearer end for accuracy.
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Mean and bootstrap interval of one ROUGE type. Serialises as
/// `{"precision", "recall", "fmeasure", "low": {...}, "mid": {...}, "high": {...}}`,
/// where the top-level three are plain means over pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeReport {
    /// Mean precision over pairs.
    pub precision: f64,
    /// Mean recall over pairs.
    pub recall: f64,
    /// Mean F-measure over pairs.
    pub fmeasure: f64,
    /// Lower bootstrap percentile.
    pub low: Score,
    /// Median bootstrap mean (HF `evaluate`'s number).
    pub mid: Score,
    /// Upper bootstrap percentile.
    pub high: Score,
}

/// Everything a ROUGE evaluation reports: per-type means and bootstrap intervals, the
/// number of pairs, and the settings that change the numbers (stemmer, sentence split,
/// bootstrap).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RougeReport {
    /// ROUGE-1.
    pub rouge1: TypeReport,
    /// ROUGE-2.
    pub rouge2: TypeReport,
    /// ROUGE-L.
    #[serde(rename = "rougeL")]
    pub rouge_l: TypeReport,
    /// ROUGE-Lsum.
    #[serde(rename = "rougeLsum")]
    pub rouge_lsum: TypeReport,
    /// Number of prediction/target pairs.
    pub count: usize,
    /// Whether NLTK's Porter stemmer was applied (tokens longer than three characters).
    pub use_stemmer: bool,
    /// How ROUGE-Lsum split texts into sentences: always `"newline"` (rouge_score's
    /// default; put one sentence per line beforehand).
    pub lsum_sentence_split: String,
    /// Bootstrap settings of the intervals.
    pub bootstrap: BootstrapConfig,
}

impl RougeReport {
    /// The report of already computed per-pair scores.
    pub fn from_scores(
        scores: &[RougeScores],
        use_stemmer: bool,
        config: &BootstrapConfig,
    ) -> Result<Self, MetricsError> {
        let aggregate = RougeAggregate::bootstrap(scores, config)?;
        let n = scores.len() as f64;
        let mean = |k: usize| {
            let mut sum = [0.0; 3];
            for s in scores {
                for (acc, v) in sum.iter_mut().zip(s.get(k).to_array()) {
                    *acc += v;
                }
            }
            sum.map(|v| v / n)
        };
        let report = |k: usize, agg: AggregateScore| {
            let [precision, recall, fmeasure] = mean(k);
            TypeReport {
                precision,
                recall,
                fmeasure,
                low: agg.low,
                mid: agg.mid,
                high: agg.high,
            }
        };
        Ok(Self {
            rouge1: report(0, aggregate.rouge1),
            rouge2: report(1, aggregate.rouge2),
            rouge_l: report(2, aggregate.rouge_l),
            rouge_lsum: report(3, aggregate.rouge_lsum),
            count: scores.len(),
            use_stemmer,
            lsum_sentence_split: "newline".to_string(),
            bootstrap: *config,
        })
    }

    /// Scores all pairs with `scorer` and reports them.
    pub fn compute<T, P>(
        scorer: &super::RougeScorer,
        targets: &[T],
        predictions: &[P],
        config: &BootstrapConfig,
    ) -> Result<Self, MetricsError>
    where
        T: AsRef<str> + Sync,
        P: AsRef<str> + Sync,
    {
        let scores = scorer.score_all(targets, predictions)?;
        Self::from_scores(&scores, scorer.use_stemmer(), config)
    }

    /// The four type reports in rouge_score's order, with their names.
    pub fn types(&self) -> [(&'static str, &TypeReport); 4] {
        [
            ("rouge1", &self.rouge1),
            ("rouge2", &self.rouge2),
            ("rougeL", &self.rouge_l),
            ("rougeLsum", &self.rouge_lsum),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/bootstrap.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("read bootstrap.json"))
            .expect("parse bootstrap.json")
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    #[test]
    fn percentile_matches_numpy() {
        for case in fixture()["percentiles"].as_array().unwrap() {
            let mut values = floats(&case["values"]);
            values.sort_by(f64::total_cmp);
            for (q, expected) in floats(&case["q"]).into_iter().zip(floats(&case["result"])) {
                let ours = percentile_sorted(&values, q);
                assert!(
                    (ours - expected).abs() <= 1e-15,
                    "n={} q={q}: rust={ours}, numpy={expected}",
                    values.len()
                );
            }
        }
    }

    #[test]
    fn bootstrap_with_numpys_indices_matches_rouge_score() {
        for case in fixture()["cases"].as_array().unwrap() {
            let config = BootstrapConfig {
                n_samples: case["n_samples"].as_u64().unwrap() as usize,
                confidence_interval: case["confidence_interval"].as_f64().unwrap(),
                seed: 0,
            };
            for name in RougeScores::TYPES {
                let matrix: Vec<[f64; 3]> = case["scores"][name]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| floats(row).try_into().unwrap())
                    .collect();
                let mut resamples = case["indices"][name].as_array().unwrap().iter();
                let ours = bootstrap_matrix(&matrix, &config, |idx| {
                    let recorded = resamples.next().expect("one recorded resample per draw");
                    for (i, r) in idx.iter_mut().zip(recorded.as_array().unwrap()) {
                        *i = r.as_u64().unwrap() as usize;
                    }
                });
                for (bound, ours) in [("low", ours.low), ("mid", ours.mid), ("high", ours.high)] {
                    let expected = floats(&case["result"][name][bound]);
                    for (o, e) in ours.to_array().iter().zip(&expected) {
                        assert!(
                            (o - e).abs() <= 1e-12,
                            "{name} {bound} (n={}, ci={}): rust={o}, python={e}",
                            matrix.len(),
                            config.confidence_interval
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_mean() {
        let scores: Vec<RougeScores> = (0..50)
            .map(|i| {
                let s = Score::new((i % 7) as f64 / 7.0, (i % 5) as f64 / 5.0);
                RougeScores {
                    rouge1: s,
                    rouge2: s,
                    rouge_l: s,
                    rouge_lsum: s,
                }
            })
            .collect();
        let config = BootstrapConfig::default();
        let a = RougeReport::from_scores(&scores, true, &config).unwrap();
        let b = RougeReport::from_scores(&scores, true, &config).unwrap();
        assert_eq!(a, b);
        let other_seed = BootstrapConfig { seed: 1, ..config };
        let c = RougeReport::from_scores(&scores, true, &other_seed).unwrap();
        assert_ne!(a.rouge1.low, c.rouge1.low);
        for (_, t) in a.types() {
            assert!(t.low.fmeasure <= t.mid.fmeasure && t.mid.fmeasure <= t.high.fmeasure);
            assert!(t.low.fmeasure < t.fmeasure && t.fmeasure < t.high.fmeasure);
            assert!((t.mid.fmeasure - t.fmeasure).abs() < 0.02);
        }
    }

    #[test]
    fn invalid_settings_and_empty_input_are_errors() {
        let s = [RougeScores::default()];
        let bad_ci = BootstrapConfig {
            confidence_interval: 1.5,
            ..Default::default()
        };
        assert!(matches!(
            RougeAggregate::bootstrap(&s, &bad_ci),
            Err(MetricsError::ConfidenceInterval(_))
        ));
        let no_samples = BootstrapConfig {
            n_samples: 0,
            ..Default::default()
        };
        assert!(matches!(
            RougeAggregate::bootstrap(&s, &no_samples),
            Err(MetricsError::NoBootstrapSamples)
        ));
        assert!(matches!(
            RougeAggregate::bootstrap(&[], &BootstrapConfig::default()),
            Err(MetricsError::Empty(_))
        ));
    }
}
