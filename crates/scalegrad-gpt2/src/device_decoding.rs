//! The decoding rules of [`crate::decoding`] as device operations, for
//! [`Execution::Device`](scalegrad_ops::Execution::Device) and
//! [`Execution::Fused`](scalegrad_ops::Execution::Fused).
//!
//! On a GPU, copying a step's `[rows, vocab]` logits to the host (a synchronisation and
//! 200 KB per GPT-2 row) costs more than the step's arithmetic. Here the processors run
//! on the device over the whole block, in the order of [`next_token`]: repetition
//! penalty, no-repeat n-gram ban, then greedy arg-max, or temperature, top-k, top-p and a
//! draw. What crosses to the device per step is small: each row's distinct context ids
//! (for the penalty), its banned ids (computed on the host from the histories the host
//! keeps anyway) and one uniform number per row for sampling. What comes back is the
//! `[rows]` chosen ids.
//!
//! Greedy decoding picks what [`next_token`] picks (ties go to the first index on
//! every backend we test). Sampling draws from the same distribution with the same
//! per-row random numbers; the cumulative sums are f32 here and f64 on the host, so a
//! draw that lands within rounding of a boundary between two tokens may pick the other.
//!
//! [`next_token`]: crate::decoding::next_token

use burn::tensor::activation::softmax;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use crate::Gpt2Error;
use scalegrad_ops::decoding::{ban_tokens_on_device, ragged_index};

use crate::decoding::{GenerationConfig, SplitMix64, Strategy, banned_ngram_tokens};

/// The next token of every row of `logits` (`[rows, vocab]`), chosen on the device.
/// `contexts[r]` is row `r`'s real tokens so far; `rngs[r]` its generator (one draw per
/// row when sampling). Returns one id per row.
pub(crate) fn next_tokens(
    logits: Tensor<2>,
    contexts: &[Vec<u32>],
    config: &GenerationConfig,
    rngs: &mut [SplitMix64],
) -> Result<Vec<u32>, Gpt2Error> {
    let [rows, vocab] = logits.dims();
    let device = logits.device();
    let mut scores = logits;
    let penalty = config.repetition_penalty as f32;
    let ngram = config.no_repeat_ngram_size;
    if penalty != 1.0 || ngram > 0 {
        // One spare column takes the padding of the ragged index lists below, so that
        // every real index is unique within its row.
        scores = Tensor::cat(vec![scores, Tensor::zeros([rows, 1], &device)], 1);
        if penalty != 1.0 {
            scores = repetition_penalty(scores, contexts, penalty, vocab);
        }
        if ngram > 0 {
            let banned: Vec<Vec<u32>> = contexts
                .iter()
                .map(|c| banned_ngram_tokens(c, ngram))
                .collect();
            scores = ban_tokens_on_device(scores, &banned);
        }
        scores = scores.narrow(1, 0, vocab);
    }
    let chosen = match &config.strategy {
        Strategy::Greedy => scores.argmax(1),
        Strategy::Sample {
            temperature,
            top_k,
            top_p,
        } => {
            if *temperature != 1.0 {
                scores = scores / *temperature;
            }
            if let Some(k) = top_k.filter(|&k| k < vocab) {
                scores = top_k_filter(scores, k);
            }
            if let Some(p) = top_p.filter(|&p| p < 1.0) {
                scores = top_p_filter(scores, p);
            }
            let draws: Vec<f32> = rngs.iter_mut().map(|r| r.next_f64() as f32).collect();
            let draws = Tensor::<2>::from_data(TensorData::new(draws, [rows, 1]), &device);
            sample(scores, draws)
        }
    };
    let ids = chosen
        .try_into_data()
        .map_err(Gpt2Error::decoding_read)?
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| Gpt2Error::Generation(format!("reading the chosen tokens: {e:?}")))?;
    Ok(ids.into_iter().map(|id| id as u32).collect())
}

/// transformers' `RepetitionPenaltyLogitsProcessor` on `[rows, vocab + 1]` scores: each
/// distinct context token's score divided by `penalty` when positive, multiplied when
/// negative.
fn repetition_penalty(
    scores: Tensor<2>,
    contexts: &[Vec<u32>],
    penalty: f32,
    vocab: usize,
) -> Tensor<2> {
    let distinct: Vec<Vec<u32>> = contexts
        .iter()
        .map(|c| {
            let mut d: Vec<u32> = c
                .iter()
                .copied()
                .filter(|&t| (t as usize) < vocab)
                .collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    let index = ragged_index(&distinct, vocab, &scores.device());
    let seen = scores.clone().gather(1, index.clone());
    let positive = seen.clone().greater_equal_elem(0.0);
    let penalised = (seen.clone() * penalty).mask_where(positive, seen / penalty);
    scores.scatter(1, index, penalised, IndexingUpdateOp::Assign)
}

/// Scores below the `k`-th largest of their row become minus infinity (ties kept).
fn top_k_filter(scores: Tensor<2>, k: usize) -> Tensor<2> {
    let [rows, vocab] = scores.dims();
    let kth = scores.clone().topk(k, 1).narrow(1, k - 1, 1);
    let below = scores.clone().lower(kth.expand([rows, vocab]));
    scores.mask_fill(below, f32::NEG_INFINITY)
}

/// transformers' `TopPLogitsWarper`: in ascending order, tokens whose cumulative
/// probability stays at or below `1 - top_p` are removed (never the most likely one).
fn top_p_filter(scores: Tensor<2>, top_p: f64) -> Tensor<2> {
    let [rows, vocab] = scores.dims();
    let device = scores.device();
    let (sorted, order) = scores.sort_with_indices(1);
    let cumulative = softmax(sorted.clone(), 1).cumsum(1);
    let remove = cumulative.lower_equal_elem((1.0 - top_p) as f32);
    let not_last = Tensor::<1, Int>::arange(0..vocab as i64, &device)
        .lower_elem(vocab as i64 - 1)
        .reshape([1, vocab])
        .expand([rows, vocab]);
    let kept = sorted.mask_fill(remove.bool_and(not_last), f32::NEG_INFINITY);
    // `order` is a permutation of each row: every slot is written once.
    Tensor::zeros([rows, vocab], &device).scatter(1, order, kept, IndexingUpdateOp::Assign)
}

/// One draw per row from `softmax(scores)` by inverting the cumulative distribution at
/// `draws` (`[rows, 1]`, uniform in `[0, 1)`): the first token whose cumulative
/// probability exceeds the draw times the row's total, as [`crate::decoding::sample`].
fn sample(scores: Tensor<2>, draws: Tensor<2>) -> Tensor<2, Int> {
    let [rows, vocab] = scores.dims();
    let cumulative = softmax(scores, 1).cumsum(1);
    let total = cumulative.clone().narrow(1, vocab - 1, 1);
    let target = (draws * total).expand([rows, vocab]);
    cumulative
        .lower_equal(target)
        .int()
        .sum_dim(1)
        .clamp_max(vocab as i64 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    use crate::decoding::next_token;

    fn host_choices(
        logits: &[Vec<f32>],
        contexts: &[Vec<u32>],
        config: &GenerationConfig,
    ) -> Vec<u32> {
        logits
            .iter()
            .enumerate()
            .map(|(r, row)| {
                let mut row = row.clone();
                let mut rng = SplitMix64::for_row(config.seed, r);
                next_token(&mut row, &contexts[r], config, &mut rng)
            })
            .collect()
    }

    fn device_choices(
        logits: &[Vec<f32>],
        contexts: &[Vec<u32>],
        config: &GenerationConfig,
    ) -> Vec<u32> {
        let device = Device::flex();
        let vocab = logits[0].len();
        let flat: Vec<f32> = logits.iter().flatten().copied().collect();
        let t = Tensor::<2>::from_data(TensorData::new(flat, [logits.len(), vocab]), &device);
        let mut rngs: Vec<SplitMix64> = (0..logits.len())
            .map(|r| SplitMix64::for_row(config.seed, r))
            .collect();
        next_tokens(t, contexts, config, &mut rngs).unwrap()
    }

    /// Rows of a toy vocabulary of 6 where each processor changes the outcome.
    fn toy() -> (Vec<Vec<f32>>, Vec<Vec<u32>>) {
        let logits = vec![
            vec![2.0, 1.9, -0.5, 0.3, -3.0, 1.0],
            vec![-1.0, -0.2, -0.1, -2.0, -0.15, -5.0],
            vec![0.5, 0.5, 0.4, 3.0, 0.1, 0.2],
        ];
        let contexts = vec![vec![1, 0, 1], vec![2, 4, 2], vec![3, 5, 3]];
        (logits, contexts)
    }

    #[test]
    fn greedy_with_penalty_and_ngram_ban_matches_the_host_rules() {
        let (logits, contexts) = toy();
        for config in [
            GenerationConfig::greedy(1),
            GenerationConfig::greedy(1).with_repetition_penalty(1.5),
            // Bigram ban: row 0 ends in 1 and holds "1 0", so its arg-max 0 is banned.
            GenerationConfig::greedy(1).with_no_repeat_ngram_size(2),
            GenerationConfig::greedy(1)
                .with_repetition_penalty(3.0)
                .with_no_repeat_ngram_size(2),
        ] {
            let host = host_choices(&logits, &contexts, &config);
            assert_eq!(
                device_choices(&logits, &contexts, &config),
                host,
                "{config:?}"
            );
        }
        // The processors matter on these rows (else the test would prove nothing).
        let plain = host_choices(&logits, &contexts, &GenerationConfig::greedy(1));
        let banned = host_choices(
            &logits,
            &contexts,
            &GenerationConfig::greedy(1).with_no_repeat_ngram_size(2),
        );
        let penalised = host_choices(
            &logits,
            &contexts,
            &GenerationConfig::greedy(1).with_repetition_penalty(3.0),
        );
        assert_ne!(plain, banned);
        assert_ne!(plain, penalised);
    }

    #[test]
    fn sampling_with_filters_matches_the_host_rules() {
        let (logits, contexts) = toy();
        for seed in 0..40 {
            for strategy in [
                Strategy::top_k(2),
                Strategy::top_p(0.6),
                Strategy::top_k(3).with_temperature(0.7),
                Strategy::Sample {
                    temperature: 1.3,
                    top_k: None,
                    top_p: None,
                },
            ] {
                let config = GenerationConfig::greedy(1)
                    .with_strategy(strategy)
                    .with_seed(seed)
                    .with_repetition_penalty(1.2);
                let host = host_choices(&logits, &contexts, &config);
                let device = device_choices(&logits, &contexts, &config);
                assert_eq!(device, host, "seed {seed}, {config:?}");
            }
        }
    }
}
