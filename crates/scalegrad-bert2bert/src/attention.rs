//! BERT multi-head attention (self and cross) and the decoder's key/value cache.
//!
//! Mirrors `BertSelfAttention` / `BertCrossAttention` + `BertSelfOutput`'s dense layer of
//! transformers' `models/bert/modeling_bert.py`. Masks are additive biases of shape
//! `[B, 1, 1 | T, S]` holding 0 for visible keys and `f32::MIN` for hidden ones (what
//! transformers' eager attention adds; its SDPA path uses a boolean mask, which gives the
//! same probabilities whenever a row has a visible key).
//!
//! Without autodiff the fused `burn::tensor::module::attention` kernel runs (on `flex` a
//! flash-style kernel that never materialises `[S, S]` scores for long sources); with
//! autodiff the scores are written out so that attention-probability dropout can apply,
//! as in transformers' training mode.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::config::BertConfig;
use scalegrad_ops::{Compute, KvBuffer, dropout};

/// The value added to the score of a hidden key (transformers' `torch.finfo(float32).min`).
pub(crate) const MASKED: f32 = f32::MIN;

/// Query, key, value and output projections of one attention block.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection (HF `self.query`).
    pub query: Linear,
    /// Key projection (HF `self.key`).
    pub key: Linear,
    /// Value projection (HF `self.value`).
    pub value: Linear,
    /// Output projection (HF `output.dense`).
    pub output: Linear,
    /// Dropout on the attention probabilities (training only).
    pub dropout: Dropout,
    /// Number of heads.
    pub heads: usize,
}

impl Attention {
    /// A randomly initialised block (normal weights with the config's std, zero biases).
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        let linear = || {
            LinearConfig::new(h, h)
                .with_initializer(config.initializer())
                .init(device)
        };
        let mut out = Self {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            heads: config.num_attention_heads,
        };
        for l in [
            &mut out.query,
            &mut out.key,
            &mut out.value,
            &mut out.output,
        ] {
            zero_bias(l);
        }
        out
    }

    /// Splits the rows `[B * T, H]` of `batch` sequences into heads:
    /// `[B, heads, T, H / heads]`.
    pub(crate) fn split(&self, x: Tensor<2>, batch: usize) -> Tensor<4> {
        let [rows, h] = x.dims();
        x.reshape([batch, rows / batch, self.heads, h / self.heads])
            .swap_dims(1, 2)
    }

    /// Merges heads back into rows: `[B, heads, T, d]` to `[B * T, heads * d]`.
    pub(crate) fn merge(x: Tensor<4>) -> Tensor<2> {
        let [b, heads, t, d] = x.dims();
        x.swap_dims(1, 2).reshape([b * t, heads * d])
    }

    /// Keys and values of `states` (the rows `[B * S, H]` of `batch` sequences), split
    /// into heads.
    pub fn key_value(
        &self,
        exec: Compute,
        states: Tensor<2>,
        batch: usize,
    ) -> (Tensor<4>, Tensor<4>) {
        (
            self.split(
                scalegrad_ops::linear(exec, &self.key, states.clone()),
                batch,
            ),
            self.split(scalegrad_ops::linear(exec, &self.value, states), batch),
        )
    }

    /// Full self-attention of `x` (the rows `[B * T, H]` of `batch` sequences) with an
    /// optional additive mask and causal masking; returns the output projection's rows
    /// (before dropout, residual and LayerNorm).
    pub fn self_attention(
        &self,
        exec: Compute,
        x: Tensor<2>,
        batch: usize,
        bias: Option<Tensor<4>>,
        causal: bool,
    ) -> Tensor<2> {
        let q = self.split(scalegrad_ops::linear(exec, &self.query, x.clone()), batch);
        let (k, v) = self.key_value(exec, x, batch);
        let context = self.attend(exec, q, k, v, bias, causal);
        scalegrad_ops::linear(exec, &self.output, Self::merge(context))
    }

    /// Scaled dot-product attention of `q` on `k`/`v` (all `[B, heads, *, d]`).
    pub(crate) fn attend(
        &self,
        exec: Compute,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        bias: Option<Tensor<4>>,
        causal: bool,
    ) -> Tensor<4> {
        if !q.device().is_autodiff() {
            let options = AttentionModuleOptions {
                is_causal: causal,
                ..Default::default()
            };
            return exec.attention([q, k, v], None, bias, options);
        }
        // Training path: explicit scores so that dropout applies to the probabilities.
        let [_, _, tq, d] = q.dims();
        let tk = k.dims()[2];
        // Products in the model's precision; scores in f32 for the mask and the softmax.
        let mut scores = exec.matmul(q, k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt());
        if causal {
            scores = scores + causal_bias(tq, tk, &v.device());
        }
        if let Some(bias) = bias {
            scores = scores + bias;
        }
        let probs = dropout(exec, &self.dropout, softmax(scores, 3));
        exec.matmul(probs, v)
    }
}

/// Zeroes a linear layer's bias, as transformers' `_init_weights` does.
pub(crate) fn zero_bias(linear: &mut Linear) {
    if let Some(bias) = linear.bias.take() {
        linear.bias = Some(bias.map(|b| b.zeros_like()));
    }
}

/// `[1, 1, tq, tk]` additive causal mask aligned at the bottom-right corner (query `i`
/// sees keys `..= i + tk - tq`).
fn causal_bias(tq: usize, tk: usize, device: &Device) -> Tensor<4> {
    let offset = tk as i64 - tq as i64;
    let rows = Tensor::<1, Int>::arange(0..tq as i64, device).reshape([tq, 1]) + offset;
    let cols = Tensor::<1, Int>::arange(0..tk as i64, device).reshape([1, tk]);
    let hidden: Tensor<2, Bool> = cols.greater(rows);
    Tensor::<2>::zeros([tq, tk], device)
        .mask_fill(hidden, MASKED)
        .reshape([1, 1, tq, tk])
}

/// Turns an HF attention mask (`[B, S]`, 1 = token, 0 = padding) into the additive
/// `[B, 1, 1, S]` bias the attention blocks take.
pub fn mask_bias(mask: Tensor<2, Int>) -> Tensor<4> {
    let [b, s] = mask.dims();
    let hidden = mask.equal_elem(0);
    Tensor::<2>::zeros([b, s], &hidden.device())
        .mask_fill(hidden, MASKED)
        .reshape([b, 1, 1, s])
}

/// Per-layer keys and values of the decoder during generation.
///
/// Self-attention keys/values grow by one position per step (in preallocated buffers,
/// see [`KvBuffer`]) and are reordered when beams are reselected; cross-attention keys/values are computed once per source (not
/// per beam) from the encoder's states and never change. During a step the queries of
/// all beams of one source attend to that source's keys together (the beams become the
/// query rows), so neither the encoder states nor the cross-attention keys are ever
/// copied per beam.
#[derive(Clone, Debug)]
pub struct DecoderCache {
    /// Each layer's self-attention keys and values, `[B * beams, heads, capacity, d]`.
    pub(crate) self_kv: Vec<KvBuffer>,
    /// Decoder positions the self-attention buffers hold.
    pub(crate) capacity: usize,
    /// `(keys, values)` of each layer's cross-attention, `[B, heads, S, d]`.
    pub(crate) cross_kv: Vec<(Tensor<4>, Tensor<4>)>,
    /// Additive source mask `[B, 1, 1, S]`.
    pub(crate) cross_bias: Option<Tensor<4>>,
    /// Decoder rows per source.
    pub(crate) beams: usize,
    /// Number of sources.
    pub(crate) sources: usize,
    /// Number of positions already in the self-attention cache.
    pub(crate) len: usize,
}

impl DecoderCache {
    /// Number of decoder positions processed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position has been processed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of decoder rows (`sources * beams`).
    pub fn rows(&self) -> usize {
        self.sources * self.beams
    }

    /// Keeps, for each new row `r`, the cached keys/values of old row `rows[r]`
    /// (`rows.len() == self.rows()`). Beam search calls this after each selection; rows
    /// of one source must stay within that source's block of `beams` rows.
    pub fn reorder(&mut self, rows: &[usize]) {
        assert_eq!(rows.len(), self.rows(), "one index per decoder row");
        if rows.iter().enumerate().all(|(i, &r)| i == r) {
            return;
        }
        let Some(device) = self.cross_kv.first().map(|(k, _)| k.device()) else {
            return;
        };
        let index = Tensor::<1, Int>::from_data(
            burn::tensor::TensorData::new(
                rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [rows.len()],
            ),
            &device,
        );
        for kv in &mut self.self_kv {
            kv.reorder(&index, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_bias_hides_future_keys_bottom_right_aligned() {
        let device = Device::flex();
        let bias = causal_bias(2, 3, &device).try_into_vec_as::<f32>().unwrap();
        // Query 0 sees keys 0..=1, query 1 sees keys 0..=2.
        assert_eq!(bias, vec![0.0, 0.0, MASKED, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn mask_bias_hides_padding() {
        let device = Device::flex();
        let mask = Tensor::<2, Int>::from_data([[1, 1, 0]], &device);
        let bias = mask_bias(mask).try_into_vec_as::<f32>().unwrap();
        assert_eq!(bias, vec![0.0, 0.0, MASKED]);
    }
}
