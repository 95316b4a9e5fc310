//! Decoding rules shared by both models' generation (GPT-2's sampling and greedy
//! search, BERT2BERT's greedy and beam search): the same transformers processors,
//! written once, on host rows and (the token ban) as a device operation.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// transformers' `NoRepeatNGramLogitsProcessor`: the tokens that would complete an
/// n-gram already present in `context` (sorted, without duplicates). With `n = 0` or a
/// context shorter than `n`, nothing is banned.
pub fn banned_ngram_tokens(context: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || context.len() < n {
        return Vec::new();
    }
    let prefix = &context[context.len() + 1 - n..];
    let mut banned: Vec<u32> = context
        .windows(n)
        .filter(|window| &window[..n - 1] == prefix)
        .map(|window| window[n - 1])
        .collect();
    banned.sort_unstable();
    banned.dedup();
    banned
}

/// Sets the listed tokens' scores to minus infinity (ids outside the row are ignored,
/// as transformers does for ids beyond the LM head).
pub fn ban_tokens(scores: &mut [f32], tokens: &[u32]) {
    for &t in tokens {
        if let Some(s) = scores.get_mut(t as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// The index of the largest score; ties go to the lowest index (`torch.argmax`).
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

/// `[rows, width]` ids on `device` from one list per row, padded with `pad`: the index
/// of a spare column appended to `[rows, pad]` scores, so that every real index is unique
/// within its row, as `scatter` needs.
pub fn ragged_index(lists: &[Vec<u32>], pad: usize, device: &Device) -> Tensor<2, Int> {
    let width = lists.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(lists.len() * width);
    for list in lists {
        ids.extend(list.iter().map(|&t| t as i64));
        ids.extend(std::iter::repeat_n(pad as i64, width - list.len()));
    }
    Tensor::from_data(TensorData::new(ids, [lists.len(), width]), device)
}

/// [`ban_tokens`] on the device: on `[rows, vocab + 1]` scores (the last column a
/// spare, see [`ragged_index`]), each row's `banned` tokens (all below `vocab`) become
/// minus infinity.
pub fn ban_tokens_on_device(scores: Tensor<2>, banned: &[Vec<u32>]) -> Tensor<2> {
    if banned.iter().all(Vec::is_empty) {
        return scores;
    }
    let vocab = scores.dims()[1] - 1;
    let device = scores.device();
    let index = ragged_index(banned, vocab, &device);
    let fill = Tensor::full(index.dims(), f32::NEG_INFINITY, &device);
    scores.scatter(1, index, fill, IndexingUpdateOp::Assign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_ban_blocks_tokens_that_would_repeat_an_ngram() {
        // History 0 1 2 1 2: the suffix (1, 2) occurred before followed by 1, so a
        // trigram ban forbids 1; the window starting at the suffix itself bans nothing.
        assert_eq!(banned_ngram_tokens(&[0, 1, 2, 1, 2], 3), vec![1]);
        // Bigram ban after 0 1 0: the suffix (0) was followed by 1.
        assert_eq!(banned_ngram_tokens(&[0, 1, 0], 2), vec![1]);
        // Too short for a complete n-gram, or no ban: nothing banned.
        assert_eq!(banned_ngram_tokens(&[5, 6], 3), Vec::<u32>::new());
        assert_eq!(banned_ngram_tokens(&[1, 2, 3], 0), Vec::<u32>::new());
        // Unigram ban forbids every token seen so far.
        assert_eq!(banned_ngram_tokens(&[4, 2, 4], 1), vec![2, 4]);
        // Several earlier windows with the same prefix ban each continuation once.
        assert_eq!(banned_ngram_tokens(&[7, 1, 7, 2, 7], 2), vec![1, 2]);
    }

    #[test]
    fn bans_and_argmax() {
        let mut row = [0.5, 2.0, 2.0, -1.0];
        assert_eq!(argmax(&row), 1, "ties go to the lower index");
        ban_tokens(&mut row, &[1, 9]);
        assert_eq!(row[1], f32::NEG_INFINITY);
        assert_eq!(argmax(&row), 2);
    }
}
