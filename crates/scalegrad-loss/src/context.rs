//! Context sets: which earlier targets each position may treat as "already used".
//!
//! Everything here works on `[B, T]` targets and `[B, T, T]` masks, never on the
//! vocabulary axis, so its memory cost is `O(B * T * T)` whatever the vocabulary size.

use burn::tensor::{Bool, Int, Tensor};

/// The context structure of a batch of target rows, shared by every loss of this crate.
///
/// For target position `t` of row `b`, the context set `C_t` holds the distinct,
/// non-ignored targets at positions `s < t` of the same row (REFERENCE.md §1).
#[derive(Clone, Debug)]
pub(crate) struct Context {
    /// `[B, T]` targets with ignored positions replaced by `0`, safe to use as indices.
    pub safe_targets: Tensor<2, Int>,
    /// `[B, T]` true where the target is scored (not the ignore index).
    pub scored: Tensor<2, Bool>,
    /// `[B, T]` true where the target token does not occur among the scored targets
    /// before it, i.e. `y_t ∉ C_t`.
    pub novel: Tensor<2, Bool>,
    /// `[B, T, T]` true at `(b, t, s)` when `s < t` is the first scored occurrence of its
    /// token in row `b`: summing over `s` visits every member of `C_t` exactly once.
    pub members: Tensor<3, Bool>,
    /// `[B, T, T]` true at `(b, t, s)` when `y_s == y_t` (ignoring the scored flags).
    pub same_token: Tensor<3, Bool>,
}

impl Context {
    /// Builds the context structure of `targets` (`[B, T]`), treating `ignore_index`
    /// (when given) as "not a target and not a context member".
    pub fn new(targets: Tensor<2, Int>, ignore_index: Option<i64>) -> Self {
        let device = targets.device();
        let [batch, len] = targets.dims();

        let (scored, safe_targets) = match ignore_index {
            Some(ignore) => {
                let ignored = targets.clone().equal_elem(ignore);
                (ignored.clone().bool_not(), targets.mask_fill(ignored, 0))
            }
            None => (
                Tensor::<2, Bool>::full([batch, len], true, &device),
                targets,
            ),
        };

        // earlier[t, s] = s < t.
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device);
        let rows = positions.clone().reshape([len, 1]).expand([len, len]);
        let cols = positions.reshape([1, len]).expand([len, len]);
        let earlier = cols
            .lower(rows)
            .reshape([1, len, len])
            .expand([batch, len, len]);

        let at_t = safe_targets
            .clone()
            .reshape([batch, len, 1])
            .expand([batch, len, len]);
        let at_s = safe_targets
            .clone()
            .reshape([batch, 1, len])
            .expand([batch, len, len]);
        let same_token = at_t.equal(at_s);
        let scored_s = scored
            .clone()
            .reshape([batch, 1, len])
            .expand([batch, len, len]);

        // A scored earlier position with the same token as position t.
        let repeats = same_token
            .clone()
            .bool_and(earlier.clone())
            .bool_and(scored_s);
        let novel = repeats.any_dim(2).reshape([batch, len]).bool_not();

        // The first scored occurrence of a token is exactly a scored position whose
        // target is novel there; the members of C_t are those first occurrences at s < t.
        let first = novel.clone().bool_and(scored.clone());
        let members = first
            .reshape([batch, 1, len])
            .expand([batch, len, len])
            .bool_and(earlier);

        Self {
            safe_targets,
            scored,
            novel,
            members,
            same_token,
        }
    }

    /// `[B, T, T]` indices into the vocabulary axis: entry `(b, t, s)` is `y_s`.
    pub fn gather_indices(&self) -> Tensor<3, Int> {
        let [batch, len] = self.safe_targets.dims();
        self.safe_targets
            .clone()
            .reshape([batch, 1, len])
            .expand([batch, len, len])
    }
}

/// Log-probabilities `log softmax(logits)[b, t, index[b, t, k]]` for a `[B, T, K]` index
/// tensor, without materialising the `[B, T, V]` log-softmax.
///
/// It shifts each row by its (detached) maximum, takes the log-sum-exp of the shifted
/// row, and gathers the shifted logits, so `log p = shifted[index] - logsumexp(shifted)`.
/// Both branches start from the same `shifted` node: burn's autodiff then accumulates
/// their gradients on that intermediate in place, and the backward pass peaks at the same
/// three `[B, T, V]` buffers as burn's own cross-entropy. (Gathering from the raw logits
/// instead makes the two gradients meet at the leaf and costs a fourth buffer, 33% more
/// memory on GPT-2's vocabulary; `cargo xtask bench loss` shows it.)
pub(crate) fn gathered_log_probs(logits: Tensor<3>, index: Tensor<3, Int>) -> Tensor<3> {
    let max = logits.clone().detach().max_dim(2);
    let shifted = logits - max;
    let log_norm = shifted.clone().exp().sum_dim(2).log();
    shifted.gather(2, index) - log_norm
}

/// Panics with both shapes when `logits` (`[B, T, V]`) and `targets` (`[B, T]`) disagree.
pub(crate) fn check_shapes(loss: &str, logits: &Tensor<3>, targets: &Tensor<2, Int>) {
    let [b, t, v] = logits.dims();
    let [tb, tt] = targets.dims();
    assert!(
        b == tb && t == tt && v > 0,
        "{loss}: logits of shape [{b}, {t}, {v}] (batch, positions, vocabulary) do not match \
         targets of shape [{tb}, {tt}] (batch, positions)"
    );
}
