//! Host-side decoding rules shared by both models' generation (GPT-2's sampling and
//! greedy search, BERT2BERT's greedy and beam search): the same transformers
//! processors, written once.

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
