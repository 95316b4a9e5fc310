//! Next-token ("single-token") metrics on teacher-forced windows, after Welleck et al.
//! (ICLR 2020, `custom/metrics.py`'s `TrainingMetrics`) as the ScaleGrad authors used
//! them.
//!
//! For each scored position t of a window with targets `y_1..y_T`, the caller supplies
//! the target id, the argmax prediction, and the target's rank: the number of
//! vocabulary entries whose logit is strictly greater than the target's (on a device,
//! `(logits > logits.gather(target)).sum(-1)`). Then:
//!
//! - acc: share of positions with rank 0, i.e. no logit strictly greater than the
//!   target's (ties count as hits, as in the reference `hits_at_1`);
//! - rep/l: share of positions whose prediction occurs among the previous l targets of
//!   the same window, `y_{t-l}..y_{t-1}`;
//! - wrep/l: share of positions whose prediction occurs there *and* differs from the
//!   target (the denominator is still all positions, as in the reference);
//! - human rep/l: share of positions whose target occurs among its previous l targets;
//! - uniq: distinct predictions over everything added; human uniq: distinct targets.
//!
//! The context never crosses a window boundary. Windows and strides are the caller's
//! choice: state them with the numbers.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::MetricsError;

/// The context lengths l of rep/l in the paper; "rep" in its tables is l = 128.
pub const REP_CONTEXTS: [usize; 4] = [16, 32, 128, 512];

/// One teacher-forced window: per scored position, the target, the argmax prediction
/// and the target's rank (entries with a strictly greater logit).
#[derive(Clone, Copy, Debug)]
pub struct WindowPredictions<'a> {
    /// Target ids `y_1..y_T` of the window's scored positions.
    pub targets: &'a [u32],
    /// Argmax prediction at each position.
    pub predictions: &'a [u32],
    /// Number of vocabulary logits strictly greater than the target's at each
    /// position; 0 is a hit. A caller that only has hit flags may pass
    /// `u32::from(!hit)`: acc and the rep metrics stay exact, but hits@10 and the mean
    /// rank then mean nothing.
    pub target_ranks: &'a [u32],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RepCounts {
    rep: u64,
    wrep: u64,
    human: u64,
}

/// Streaming next-token metrics over windows; mergeable across threads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextTokenAccumulator {
    contexts: Vec<usize>,
    positions: u64,
    hits: u64,
    hits_at_10: u64,
    rank_sum: u64,
    reps: Vec<RepCounts>,
    predicted: HashSet<u32>,
    targets: HashSet<u32>,
}

/// rep/l, wrep/l and human rep/l for one context length.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepAtL {
    /// The context length l.
    pub l: usize,
    /// Share of predictions found among the previous l targets.
    pub rep: f64,
    /// Share of wrong predictions found among the previous l targets (over all
    /// positions).
    pub wrep: f64,
    /// Share of targets found among their previous l targets.
    pub human_rep: f64,
}

/// The next-token metrics of everything accumulated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextTokenReport {
    /// Scored positions.
    pub positions: u64,
    /// Share of positions where no logit is strictly greater than the target's.
    pub acc: f64,
    /// Share of positions with fewer than 10 logits strictly greater than the target's.
    pub hits_at_10: f64,
    /// Mean number of logits strictly greater than the target's.
    pub mean_target_rank: f64,
    /// rep/l, wrep/l and human rep/l for each context length.
    pub repetition: Vec<RepAtL>,
    /// Distinct argmax predictions.
    pub uniq: usize,
    /// Distinct targets.
    pub human_uniq: usize,
}

impl NextTokenReport {
    /// The entry for context length `l`, if it was computed.
    pub fn rep_at(&self, l: usize) -> Option<&RepAtL> {
        self.repetition.iter().find(|r| r.l == l)
    }
}

impl Default for NextTokenAccumulator {
    fn default() -> Self {
        Self::new(&REP_CONTEXTS).expect("the paper's context lengths are valid")
    }
}

impl NextTokenAccumulator {
    /// An accumulator for the given rep/l context lengths (each at least 1).
    pub fn new(contexts: &[usize]) -> Result<Self, MetricsError> {
        if contexts.contains(&0) {
            return Err(MetricsError::ContextLength(contexts.to_vec()));
        }
        Ok(Self {
            contexts: contexts.to_vec(),
            positions: 0,
            hits: 0,
            hits_at_10: 0,
            rank_sum: 0,
            reps: vec![RepCounts::default(); contexts.len()],
            predicted: HashSet::new(),
            targets: HashSet::new(),
        })
    }

    /// Adds one window.
    pub fn add_window(&mut self, window: &WindowPredictions<'_>) -> Result<(), MetricsError> {
        let n = window.targets.len();
        for (name, len) in [
            ("predictions", window.predictions.len()),
            ("target ranks", window.target_ranks.len()),
        ] {
            if len != n {
                return Err(MetricsError::LengthMismatch {
                    what: "next-token window",
                    left: "targets",
                    left_len: n,
                    right: name,
                    right_len: len,
                });
            }
        }
        // Latest position of each target id seen so far in this window: a token occurs
        // among the previous l targets iff its latest earlier occurrence is within l.
        let mut last_seen: HashMap<u32, usize> = HashMap::with_capacity(n);
        for t in 0..n {
            let (target, prediction, rank) = (
                window.targets[t],
                window.predictions[t],
                window.target_ranks[t],
            );
            self.positions += 1;
            self.hits += u64::from(rank == 0);
            self.hits_at_10 += u64::from(rank < 10);
            self.rank_sum += u64::from(rank);
            let pred_gap = last_seen.get(&prediction).map(|&s| t - s);
            let target_gap = last_seen.get(&target).map(|&s| t - s);
            for (counts, &l) in self.reps.iter_mut().zip(&self.contexts) {
                let rep = pred_gap.is_some_and(|gap| gap <= l);
                counts.rep += u64::from(rep);
                counts.wrep += u64::from(rep && prediction != target);
                counts.human += u64::from(target_gap.is_some_and(|gap| gap <= l));
            }
            last_seen.insert(target, t);
        }
        self.predicted.extend(window.predictions);
        self.targets.extend(window.targets);
        Ok(())
    }

    /// Adds everything `other` accumulated.
    ///
    /// # Panics
    /// If the two were made with different context lengths (a programmer error).
    pub fn merge(&mut self, other: Self) {
        assert_eq!(
            self.contexts, other.contexts,
            "merging next-token metrics with different context lengths"
        );
        self.positions += other.positions;
        self.hits += other.hits;
        self.hits_at_10 += other.hits_at_10;
        self.rank_sum += other.rank_sum;
        for (a, b) in self.reps.iter_mut().zip(other.reps) {
            a.rep += b.rep;
            a.wrep += b.wrep;
            a.human += b.human;
        }
        self.predicted.extend(other.predicted);
        self.targets.extend(other.targets);
    }

    /// The metrics so far; an error before any position was added.
    pub fn report(&self) -> Result<NextTokenReport, MetricsError> {
        if self.positions == 0 {
            return Err(MetricsError::Empty("next-token positions"));
        }
        let n = self.positions as f64;
        Ok(NextTokenReport {
            positions: self.positions,
            acc: self.hits as f64 / n,
            hits_at_10: self.hits_at_10 as f64 / n,
            mean_target_rank: self.rank_sum as f64 / n,
            repetition: self
                .contexts
                .iter()
                .zip(&self.reps)
                .map(|(&l, c)| RepAtL {
                    l,
                    rep: c.rep as f64 / n,
                    wrep: c.wrep as f64 / n,
                    human_rep: c.human as f64 / n,
                })
                .collect(),
            uniq: self.predicted.len(),
            human_uniq: self.targets.len(),
        })
    }
}
