//! Causal self-attention with GPT-2's fused query/key/value projection.
//!
//! Mirrors `GPT2Attention` in transformers' `modeling_gpt2.py`: one `c_attn` projection to
//! `3 * n_embd` split into queries, keys and values, `n_head` heads, scores scaled by
//! `1 / sqrt(head_dim)` (and `1 / (layer + 1)` when `scale_attn_by_inverse_layer_idx`),
//! causal and padding masks, dropout on the attention probabilities, the `c_proj`
//! projection and the residual dropout.
//!
//! Three ways to compute the same thing, chosen per call:
//! - without dropout (inference, or training with `attn_pdrop = 0`), burn's fused
//!   `attention` op, which the flex backend runs as one kernel per head and autodiff
//!   backends decompose into differentiable operations;
//! - with attention dropout active, the same computation written out (scores, mask,
//!   softmax, dropout, weighted sum), because the fused op has no dropout;
//! - with a key/value cache, the new queries against strided views of the preallocated
//!   cache buffers, two batched matmuls that read the cache in place instead of copying
//!   the whole prefix at every step.

use burn::module::Module;
use burn::nn::{Dropout, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use scalegrad_ops::{Compute, KvBuffer, dropout, dropout_active, linear};

use crate::decode_weights::{BlockLinear, BlockWeights};

/// Value written over masked attention scores before the softmax in the explicit
/// paths. Finite, as in transformers (`torch.finfo(dtype).min`), so that a query whose
/// keys are all masked (a left-padding position) gets a harmless uniform distribution
/// instead of NaN, which would otherwise spread through the padded positions' values.
const MASKED_SCORE: f32 = f32::MIN;

/// Which keys each query may attend to.
#[derive(Clone, Debug)]
pub(crate) struct AttentionMask {
    /// `[batch, 1, queries, keys]` (or `[1, 1, queries, keys]`, the same for every row),
    /// true where the key is masked out (padding, or in the future of the query when
    /// `causal` is false because it is already included).
    pub mask: Option<Tensor<4, Bool>>,
    /// Mask keys after the query (queries and keys aligned at their ends).
    pub causal: bool,
}

/// One attention layer.
#[derive(Module, Debug)]
pub struct Attention {
    /// HF `attn.c_attn`: `[n_embd, 3 * n_embd]`, queries, keys and values side by side.
    pub qkv: Linear,
    /// HF `attn.c_proj`: `[n_embd, n_embd]`.
    pub proj: Linear,
    /// Dropout on the attention probabilities (`attn_pdrop`).
    pub attn_dropout: Dropout,
    /// Dropout on the projected output (`resid_pdrop`).
    pub resid_dropout: Dropout,
    /// Number of heads.
    pub n_head: usize,
    /// Factor applied to query-key dot products.
    pub scale: f64,
}

impl Attention {
    /// Attention over the sequence itself: `x` holds `[batch, len]` positions as
    /// `[batch * len, n_embd]` rows. `fast`: the pass's parameter rows with
    /// `Execution::Fused` (see `decode_weights`), else `None`.
    pub(crate) fn forward(
        &self,
        x: Tensor<2>,
        [batch, len]: [usize; 2],
        mask: &AttentionMask,
        fast: Option<&BlockWeights>,
        exec: Compute,
    ) -> Tensor<2> {
        let (q, k, v) = self.split_heads(x, [batch, len], fast, exec);
        let context = if dropout_active(&self.attn_dropout, &q.device()) {
            self.explicit_attention(q, k, v, mask, 0, exec)
        } else {
            let options = AttentionModuleOptions {
                scale: Some(self.scale),
                softcap: None,
                is_causal: mask.causal,
            };
            exec.attention([q, k, v], mask.mask.clone(), None, options)
        };
        self.merge_heads(context, batch, len, fast, exec)
    }

    /// Attention of new positions over the cache and themselves. The new keys and
    /// values are written into the cache at `start..start + len`; `mask` covers keys
    /// `0..start + len` and already includes causality. `fast` holds this block's
    /// prepared weights, if any (see `decode_weights`: transposed copies on a CPU, or the
    /// pass's parameter rows with `Execution::Fused`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_cached(
        &self,
        x: Tensor<2>,
        [batch, len]: [usize; 2],
        cache: &mut KvBuffer,
        (start, capacity): (usize, usize),
        mask: &AttentionMask,
        fast: Option<&BlockWeights>,
        exec: Compute,
    ) -> Tensor<2> {
        let (q, k, v) = self.split_heads(x, [batch, len], fast, exec);
        let (keys, values) = cache.append(k, v, start, capacity);
        let context = self.explicit_attention(q, keys, values, mask, start, exec);
        self.merge_heads(context, batch, len, fast, exec)
    }

    /// `[batch * len, n_embd]` rows to queries, keys and values of
    /// `[batch, heads, len, head_dim]`.
    fn split_heads(
        &self,
        x: Tensor<2>,
        [batch, len]: [usize; 2],
        fast: Option<&BlockWeights>,
        exec: Compute,
    ) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let width = x.dims()[1];
        let head_dim = width / self.n_head;
        let qkv = match fast {
            Some(weights) => weights.linear(BlockLinear::Qkv, &self.qkv, x, exec),
            None => linear(exec, &self.qkv, x),
        };
        let mut parts = qkv.chunk(3, 1).into_iter().map(|part| {
            part.reshape([batch, len, self.n_head, head_dim])
                .swap_dims(1, 2)
        });
        let (q, k, v) = (parts.next(), parts.next(), parts.next());
        (
            q.expect("three chunks"),
            k.expect("three chunks"),
            v.expect("three chunks"),
        )
    }

    /// `[batch, heads, len, head_dim]` back to `[batch * len, n_embd]` rows, then the
    /// output projection and its dropout.
    fn merge_heads(
        &self,
        context: Tensor<4>,
        batch: usize,
        len: usize,
        fast: Option<&BlockWeights>,
        exec: Compute,
    ) -> Tensor<2> {
        let [_, heads, _, head_dim] = context.dims();
        let merged = context
            .swap_dims(1, 2)
            .reshape([batch * len, heads * head_dim]);
        let projected = match fast {
            Some(weights) => weights.linear(BlockLinear::AttnProj, &self.proj, merged, exec),
            None => linear(exec, &self.proj, merged),
        };
        dropout(exec, &self.resid_dropout, projected)
    }

    /// Scores, mask, softmax, dropout, weighted sum. `offset` is the number of keys
    /// before the first query (cached prefix) for the causal mask.
    fn explicit_attention(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: &AttentionMask,
        offset: usize,
        exec: Compute,
    ) -> Tensor<4> {
        let [batch, heads, queries, _] = q.dims();
        let keys = k.dims()[2];
        // Products in the model's precision; the scores come back in f32 for the mask
        // and the softmax.
        let scores = exec.matmul(q, k.swap_dims(2, 3)) * self.scale;
        let device = scores.device();
        let mut masked: Option<Tensor<4, Bool>> = mask
            .mask
            .clone()
            .map(|m| m.expand([batch, heads, queries, keys]));
        if mask.causal {
            // Query i sits at key position offset + i and sees keys up to it.
            let causal = Tensor::<2, Bool>::tril_mask([queries, keys], offset as i64, &device)
                .reshape([1, 1, queries, keys])
                .expand([batch, heads, queries, keys]);
            masked = Some(match masked {
                Some(m) => m.bool_or(causal),
                None => causal,
            });
        }
        let scores = match masked {
            Some(m) => scores.mask_fill(m, MASKED_SCORE),
            None => scores,
        };
        let probs = dropout(exec, &self.attn_dropout, softmax(scores, 3));
        exec.matmul(probs, v)
    }
}
