//! Batch order: seeded, portable, resumable.
//!
//! The order of an epoch depends only on `(seed, epoch, number of items, settings)`:
//! the permutation is a Fisher-Yates shuffle driven by ChaCha8 (`rand_chacha`, seeded
//! with `seed_from_u64(seed)` and using stream number `epoch`), with bounded integers
//! drawn by Lemire's multiply-and-reject method written out here. Nothing depends on
//! `thread_rng`, `StdRng` or `SliceRandom`, whose algorithms may change between rand
//! releases, so the same seed gives the same batches on every machine and release
//! (a test pins the first permutation).
//!
//! A training run stores its [`Position`] (epoch, batch within the epoch) in each
//! checkpoint; [`BatchSampler::batches_from`] at that position replays exactly the
//! batches the uninterrupted run would have seen next.
//!
//! Length bucketing (for seq2seq): after shuffling, items are taken in chunks of
//! `bucket_batches * batch_size`, each chunk sorted by length (longest first) and cut
//! into batches, and the batches are then shuffled, so each batch holds items of similar
//! length (little padding) while the order stays random.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lm::LmWindows;

/// Where a run is in its data: the next batch to train on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// The epoch (from 0).
    pub epoch: u64,
    /// The batch within the epoch (from 0).
    pub batch: u64,
}

/// How batches are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// Items per batch.
    pub batch_size: usize,
    /// Shuffle each epoch (false: items in order, for evaluation).
    pub shuffle: bool,
    /// The shuffle seed.
    pub seed: u64,
    /// Drop the last batch of an epoch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Length bucketing: sort chunks of this many batches by length (needs lengths).
    pub bucket_batches: Option<usize>,
}

impl SamplerConfig {
    /// Shuffled batches of `batch_size` with `seed`, last batch kept, no bucketing.
    pub fn shuffled(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            shuffle: true,
            seed,
            drop_last: false,
            bucket_batches: None,
        }
    }

    /// Batches in order (evaluation).
    pub fn sequential(batch_size: usize) -> Self {
        Self {
            batch_size,
            shuffle: false,
            seed: 0,
            drop_last: false,
            bucket_batches: None,
        }
    }
}

/// A uniformly distributed integer in `0..n` (`n > 0`), by Lemire's method: the high
/// half of `x * n` for a 64-bit `x`, rejecting the few `x` that would bias it. Public
/// for the demo corpus generator (`scalegrad-demo`), whose files must stay byte-identical.
pub fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    debug_assert!(n > 0);
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

fn rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    rng
}

fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The permutation of `0..n` for `(seed, epoch)`.
pub fn permutation(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut rng(seed, epoch));
    order
}

/// Turns item counts (and optionally lengths) into the batches of each epoch.
#[derive(Clone, Debug)]
pub struct BatchSampler {
    config: SamplerConfig,
    n: usize,
    lengths: Option<Vec<usize>>,
}

impl BatchSampler {
    /// A sampler over `n` items.
    pub fn new(n: usize, config: SamplerConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if config.bucket_batches.is_some() {
            return Err(Error::Config(
                "length bucketing needs the items' lengths: use BatchSampler::with_lengths".into(),
            ));
        }
        Ok(Self {
            config,
            n,
            lengths: None,
        })
    }

    /// A sampler over items with these lengths (used by bucketing).
    pub fn with_lengths(lengths: Vec<usize>, config: SamplerConfig) -> Result<Self> {
        if config.batch_size == 0 || config.bucket_batches == Some(0) {
            return Err(Error::Config(
                "batch_size and bucket_batches must be at least 1".into(),
            ));
        }
        Ok(Self {
            config,
            n: lengths.len(),
            lengths: Some(lengths),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let b = self.config.batch_size;
        if self.config.drop_last {
            self.n / b
        } else {
            self.n.div_ceil(b)
        }
    }

    /// The batches (item indices) of `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let b = self.config.batch_size;
        let mut rng = rng(self.config.seed, epoch);
        let mut order: Vec<usize> = (0..self.n).collect();
        if self.config.shuffle {
            shuffle(&mut order, &mut rng);
        }
        let mut batches: Vec<Vec<usize>> = match (&self.lengths, self.config.bucket_batches) {
            (Some(lengths), Some(k)) => {
                let mut batches = Vec::with_capacity(self.n.div_ceil(b));
                for chunk in order.chunks_mut(k * b) {
                    // Stable sort, longest first: ties keep the shuffled order.
                    chunk.sort_by(|&x, &y| lengths[y].cmp(&lengths[x]));
                    batches.extend(chunk.chunks(b).map(<[usize]>::to_vec));
                }
                if self.config.drop_last {
                    batches.retain(|batch| batch.len() == b);
                }
                if self.config.shuffle {
                    shuffle(&mut batches, &mut rng);
                }
                batches
            }
            _ => order.chunks(b).map(<[usize]>::to_vec).collect(),
        };
        if self.config.drop_last {
            batches.retain(|batch| batch.len() == b);
        }
        batches
    }

    /// Batches from `start` on, across epochs, forever (stop with `take` or at an epoch
    /// boundary). Each item is the batch's position and its item indices; to resume
    /// after a batch, store [`Batches::position`].
    pub fn batches_from(&self, start: Position) -> Batches<'_> {
        Batches {
            sampler: self,
            position: start,
            plan: None,
        }
    }
}

/// The endless batch iterator of [`BatchSampler::batches_from`].
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    sampler: &'a BatchSampler,
    position: Position,
    plan: Option<(u64, Vec<Vec<usize>>)>,
}

impl Batches<'_> {
    /// The position of the next batch: what a checkpoint stores. After an epoch's last
    /// batch it is the next epoch's start.
    pub fn position(&self) -> Position {
        if self.position.batch as usize >= self.sampler.batches_per_epoch() {
            return Position {
                epoch: self.position.epoch + 1,
                batch: 0,
            };
        }
        self.position
    }
}

impl Iterator for Batches<'_> {
    type Item = (Position, Vec<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.sampler.batches_per_epoch() == 0 {
            return None;
        }
        loop {
            let epoch = self.position.epoch;
            if self.plan.as_ref().is_none_or(|(e, _)| *e != epoch) {
                self.plan = Some((epoch, self.sampler.epoch(epoch)));
            }
            let (_, batches) = self.plan.as_ref().expect("just set");
            match batches.get(self.position.batch as usize) {
                Some(batch) => {
                    let here = self.position;
                    self.position.batch += 1;
                    return Some((here, batch.clone()));
                }
                None => {
                    self.position = Position {
                        epoch: epoch + 1,
                        batch: 0,
                    };
                }
            }
        }
    }
}

/// A batch of language-modelling windows, row-major `[batch, seq_len]` arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmBatch {
    /// Rows.
    pub batch_size: usize,
    /// Columns (the block size).
    pub seq_len: usize,
    /// Input ids.
    pub input_ids: Vec<i64>,
    /// Targets (-100 where nothing is scored).
    pub targets: Vec<i64>,
    /// 1 for real inputs, 0 for padding.
    pub attention_mask: Vec<i64>,
    /// The windows' indices.
    pub indices: Vec<usize>,
}

/// Stacks windows `indices` into a batch (windows all have `block_size` positions).
pub fn collate_lm(windows: &LmWindows<'_>, indices: Vec<usize>) -> LmBatch {
    let seq_len = windows.config().block_size;
    let mut batch = LmBatch {
        batch_size: indices.len(),
        seq_len,
        input_ids: Vec::with_capacity(indices.len() * seq_len),
        targets: Vec::with_capacity(indices.len() * seq_len),
        attention_mask: Vec::with_capacity(indices.len() * seq_len),
        indices: Vec::new(),
    };
    for &i in &indices {
        let w = windows.get(i);
        batch
            .input_ids
            .extend(w.input_ids.iter().map(|&t| t as i64));
        batch.targets.extend_from_slice(&w.targets);
        batch
            .attention_mask
            .extend(w.attention_mask.iter().map(|&m| m as i64));
    }
    batch.indices = indices;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_pinned_for_a_seed() {
        // Pinned output: a change here means runs are no longer reproducible across
        // releases. Update only with a deliberate format/version change.
        let p = permutation(42, 0, 10);
        assert_eq!(p, PINNED_42_0_10.to_vec(), "permutation(42, 0, 10) = {p:?}");
        assert_ne!(permutation(42, 1, 10), p, "epochs differ");
        assert_ne!(permutation(43, 0, 10), p, "seeds differ");
    }

    const PINNED_42_0_10: [usize; 10] = [9, 7, 2, 5, 0, 1, 4, 3, 8, 6];

    #[test]
    fn lemire_bound_is_uniform_enough() {
        let mut r = rng(7, 0);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[below(&mut r, 3) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn resuming_replays_the_same_batches() {
        let s = BatchSampler::new(23, SamplerConfig::shuffled(4, 9)).unwrap();
        let straight: Vec<_> = s.batches_from(Position::default()).take(20).collect();
        let mut it = s.batches_from(Position::default());
        let first: Vec<_> = it.by_ref().take(8).collect();
        let saved = it.position();
        assert_eq!(
            saved,
            Position { epoch: 1, batch: 2 },
            "6 batches per epoch"
        );
        let resumed: Vec<_> = s.batches_from(saved).take(12).collect();
        let joined: Vec<_> = first.into_iter().chain(resumed).collect();
        assert_eq!(joined, straight);
    }

    #[test]
    fn after_an_epochs_last_batch_the_position_is_the_next_epochs_start() {
        let s = BatchSampler::new(23, SamplerConfig::shuffled(4, 9)).unwrap();
        let mut it = s.batches_from(Position::default());
        it.by_ref().take(6).for_each(drop);
        assert_eq!(it.position(), Position { epoch: 1, batch: 0 });
        let next = it.next().unwrap();
        assert_eq!(
            next,
            (Position { epoch: 1, batch: 0 }, s.epoch(1)[0].clone())
        );
    }

    #[test]
    fn every_item_appears_once_per_epoch() {
        let s = BatchSampler::new(23, SamplerConfig::shuffled(4, 1)).unwrap();
        let mut seen: Vec<usize> = s.epoch(3).concat();
        seen.sort();
        assert_eq!(seen, (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn buckets_group_similar_lengths() {
        let lengths: Vec<usize> = (0..64).map(|i| (i * 37) % 64).collect();
        let mut config = SamplerConfig::shuffled(4, 3);
        config.bucket_batches = Some(16);
        let s = BatchSampler::with_lengths(lengths.clone(), config).unwrap();
        for batch in s.epoch(0) {
            let l: Vec<usize> = batch.iter().map(|&i| lengths[i]).collect();
            let spread = l.iter().max().unwrap() - l.iter().min().unwrap();
            assert!(spread <= 3, "batch lengths {l:?}");
        }
    }
}
