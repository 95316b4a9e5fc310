//! The GPT-2 language model: embeddings, pre-LayerNorm transformer blocks, final
//! LayerNorm and the LM head tied to the token embedding.
//!
//! Mirrors `GPT2LMHeadModel` in transformers' `modeling_gpt2.py`. The LM head has no
//! parameter of its own: logits are the final hidden states times the transposed token
//! embedding `wte`, so the one parameter gets gradients from both uses and training
//! updates input and output embeddings together, as tying does in transformers.
//!
//! Dropout follows burn's rule: a [`Dropout`] acts only when the input lives on an
//! autodiff device *and* the module's training flag is on (the default; `valid()` or
//! `freeze()` turn it off). So a model on `Device::flex()` never drops anything, and a
//! model on `Device::flex().autodiff()` drops (`resid_pdrop`, `embd_pdrop`,
//! `attn_pdrop`) until `model.valid()` gives its inference copy.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, Initializer, LayerNorm, LayerNormConfig, Linear,
};
use burn::tensor::activation::{gelu, relu, sigmoid};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use scalegrad_ops::{
    Compute, Execution, Precision, dropout, dropout_active, layer_norm, linear, matmul_transposed,
};

use crate::Gpt2Error;
use crate::attention::{Attention, AttentionMask};
use crate::cache::KvCache;
use crate::config::{Activation, Gpt2Config};
use crate::decode_weights::{BlockLinear, BlockNorm, BlockWeights, DecodeWeights};

/// Below this many positions the LM head multiplies in the `wte @ hidden^T` orientation.
const LM_HEAD_FEW_ROWS: usize = 32;

/// The MLP of a block: `c_fc`, activation, `c_proj`, dropout.
#[derive(Module, Debug)]
pub struct Mlp {
    /// HF `mlp.c_fc`: `[n_embd, inner]`.
    pub fc: Linear,
    /// HF `mlp.c_proj`: `[inner, n_embd]`.
    pub proj: Linear,
    /// Dropout on the output (`resid_pdrop`).
    pub dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>, fast: Option<&BlockWeights>, exec: Compute) -> Tensor<2> {
        let x = match fast {
            Some(weights) => weights.linear(BlockLinear::Fc, &self.fc, x, exec),
            None => linear(exec, &self.fc, x),
        };
        let x = match self.activation {
            Activation::GeluNew | Activation::GeluPytorchTanh => gelu_new(x),
            Activation::Gelu => gelu(x),
            Activation::Relu => relu(x),
        };
        let x = match fast {
            Some(weights) => weights.linear(BlockLinear::MlpProj, &self.proj, x, exec),
            None => linear(exec, &self.proj, x),
        };
        dropout(exec, &self.dropout, x)
    }
}

/// GPT-2's `gelu_new`, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, computed as
/// `x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))` (the same function, as
/// `(1 + tanh(z)) / 2 = sigmoid(2z)`). burn's `gelu_approximate` spends eight tensor
/// operations (a `powf` and a `tanh` among them) on it; this form needs six, and the
/// sigmoid is one fused kernel with a fused backward on the CPU backends, which
/// matters in training, where the MLP activations are the largest tensors.
fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    const C1: f64 = 2.0 * SQRT_2_OVER_PI;
    const C3: f64 = 2.0 * SQRT_2_OVER_PI * 0.044715;
    let inner = (x.clone() * x.clone() * C3 + C1) * x.clone();
    x * sigmoid(inner)
}

/// One transformer block (pre-LayerNorm): `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Module, Debug)]
pub struct Block {
    /// HF `ln_1`.
    pub ln_1: LayerNorm,
    /// HF `attn`.
    pub attn: Attention,
    /// HF `ln_2`.
    pub ln_2: LayerNorm,
    /// HF `mlp`.
    pub mlp: Mlp,
}

impl Block {
    /// `x` holds the hidden states of `[batch, len]` positions as `[batch * len, n_embd]`
    /// rows, as between all blocks: a product's input and output then need no reshape,
    /// which under kernel fusion would end the kernel before the bias, activation or
    /// LayerNorm work that follows it.
    fn forward(
        &self,
        x: Tensor<2>,
        shape: [usize; 2],
        mask: &AttentionMask,
        fast: Option<&BlockWeights>,
        exec: Compute,
    ) -> Tensor<2> {
        self.around_attention(x, fast, exec, |h| {
            self.attn.forward(h, shape, mask, fast, exec)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_cached(
        &self,
        x: Tensor<2>,
        shape: [usize; 2],
        cache: &mut scalegrad_ops::KvBuffer,
        slots: (usize, usize),
        mask: &AttentionMask,
        fast: Option<&BlockWeights>,
        exec: Compute,
    ) -> Tensor<2> {
        self.around_attention(x, fast, exec, |h| {
            self.attn
                .forward_cached(h, shape, cache, slots, mask, fast, exec)
        })
    }

    /// `x + attend(ln_1(x))`, then `x + mlp(ln_2(x))`, with the prepared LayerNorm rows
    /// where `fast` has them.
    fn around_attention(
        &self,
        x: Tensor<2>,
        fast: Option<&BlockWeights>,
        exec: Compute,
        attend: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) -> Tensor<2> {
        let norm =
            |which, norm: &LayerNorm, x| layer_norm(norm, fast.and_then(|w| w.norm_rows(which)), x);
        let x = x.clone() + attend(norm(BlockNorm::Ln1, &self.ln_1, x));
        x.clone()
            + self
                .mlp
                .forward(norm(BlockNorm::Ln2, &self.ln_2, x), fast, exec)
    }
}

/// GPT-2 with its language-modelling head (HF `GPT2LMHeadModel`).
#[derive(Module, Debug)]
pub struct Gpt2 {
    /// HF `wte`: `[vocab_size, n_embd]`; also the LM head (tied).
    pub token_embedding: Embedding,
    /// HF `wpe`: `[n_positions, n_embd]`.
    pub position_embedding: Embedding,
    /// Dropout on the embeddings (`embd_pdrop`).
    pub embedding_dropout: Dropout,
    /// HF `h`.
    pub blocks: Vec<Block>,
    /// HF `ln_f`.
    pub ln_f: LayerNorm,
    #[module(skip)]
    config: Gpt2Config,
    /// How forward passes compute: CPU fast paths or device operations, and the type of
    /// the products (f32 unless mixed precision is asked for).
    #[module(skip)]
    compute: Compute,
}

impl Gpt2Config {
    /// Builds a model with random weights (normal with `initializer_range`, LayerNorms at
    /// one and zero, biases at zero, as transformers initialises GPT-2).
    ///
    /// # Panics
    ///
    /// When the configuration is invalid; configurations read from files are validated
    /// on reading.
    pub fn init(&self, device: &Device) -> Gpt2 {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        Gpt2::new(self.clone(), device)
    }
}

impl Gpt2 {
    pub(crate) fn new(config: Gpt2Config, device: &Device) -> Self {
        let (e, inner) = (config.n_embd, config.inner_dim());
        let std = config.initializer_range;
        // transformers scales the residual projections by 1 / sqrt(2 * n_layer).
        let proj_std = std / (2.0 * config.n_layer as f64).sqrt();
        let linear = |d_in: usize, d_out: usize, std: f64| Linear {
            weight: Initializer::Normal { mean: 0.0, std }.init([d_in, d_out], device),
            bias: Some(Initializer::Zeros.init([d_out], device)),
        };
        let layer_norm = || {
            LayerNormConfig::new(e)
                .with_epsilon(config.layer_norm_epsilon)
                .init(device)
        };
        let embedding = |rows: usize| Embedding {
            weight: Initializer::Normal { mean: 0.0, std }.init([rows, e], device),
        };
        let head_scale = if config.scale_attn_weights {
            1.0 / (config.head_dim() as f64).sqrt()
        } else {
            1.0
        };
        let blocks = (0..config.n_layer)
            .map(|layer| {
                let layer_scale = if config.scale_attn_by_inverse_layer_idx {
                    1.0 / (layer + 1) as f64
                } else {
                    1.0
                };
                Block {
                    ln_1: layer_norm(),
                    attn: Attention {
                        qkv: linear(e, 3 * e, std),
                        proj: linear(e, e, proj_std),
                        attn_dropout: DropoutConfig::new(config.attn_pdrop).init(),
                        resid_dropout: DropoutConfig::new(config.resid_pdrop).init(),
                        n_head: config.n_head,
                        scale: head_scale * layer_scale,
                    },
                    ln_2: layer_norm(),
                    mlp: Mlp {
                        fc: linear(e, inner, std),
                        proj: linear(inner, e, proj_std),
                        dropout: DropoutConfig::new(config.resid_pdrop).init(),
                        activation: config.activation_function,
                    },
                }
            })
            .collect();
        Self {
            token_embedding: embedding(config.vocab_size),
            position_embedding: embedding(config.n_positions),
            embedding_dropout: DropoutConfig::new(config.embd_pdrop).init(),
            blocks,
            ln_f: layer_norm(),
            config,
            compute: Compute::default(),
        }
    }

    /// The model computing with `execution` (the CPU fast paths of `scalegrad-ops` for
    /// [`Execution::Host`]; the default, [`Execution::Device`], uses burn's operations
    /// only and suits every backend; [`Execution::Fused`], for wgpu and CUDA devices,
    /// also arranges them for burn's kernel fusion where that saves launches).
    pub fn with_execution(mut self, execution: Execution) -> Self {
        self.compute.execution = execution;
        self
    }

    /// How the model's forward passes and decoding compute.
    pub fn execution(&self) -> Execution {
        self.compute.execution
    }

    /// The model computing its products (linear layers, attention, LM head) in
    /// `precision`, parameters and everything else staying f32
    /// ([`Precision`](scalegrad_ops::Precision)).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.compute.precision = precision;
        self
    }

    /// The type of the model's products.
    pub fn precision(&self) -> Precision {
        self.compute.precision
    }

    /// Transposed weight copies for decoding steps of `rows` rows on a CPU, where they
    /// pay off (see `decode_weights`).
    pub(crate) fn decode_weights(&self, rows: usize) -> Option<DecodeWeights> {
        DecodeWeights::transposed(&self.blocks, self.compute, rows)
    }

    /// Where and in which type the model computes.
    pub fn compute(&self) -> Compute {
        self.compute
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// The device holding the parameters.
    pub fn device(&self) -> Device {
        self.token_embedding.weight.val().device()
    }

    /// Logits `[batch, len, vocab_size]` for every position of `input_ids`
    /// (`[batch, len]`), as `GPT2LMHeadModel(input_ids, attention_mask).logits`.
    ///
    /// `attention_mask` is Hugging Face's: `[batch, len]`, 1 for real tokens, 0 for
    /// padding (left or right). Padding is masked out as a key, and position ids count
    /// real tokens only (`cumsum(mask) - 1`, 0 at padding), so every real token gets the
    /// logits it would get without padding. Logits at padding positions are meaningless.
    ///
    /// # Panics
    ///
    /// When `len` exceeds `n_positions` (callers cut their windows to the model's
    /// length), or the shapes of `input_ids` and `attention_mask` differ.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        self.lm_head(self.forward_hidden(input_ids, attention_mask))
    }

    /// The final hidden states `[batch, len, n_embd]` (after `ln_f`) of
    /// [`forward`](Self::forward), before the LM head.
    pub fn forward_hidden(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, len] = input_ids.dims();
        assert!(
            len <= self.config.n_positions,
            "sequence of {len} tokens is longer than the model's n_positions = {}",
            self.config.n_positions
        );
        let device = input_ids.device();
        let (positions, mask) = match attention_mask {
            None => (
                Tensor::<1, Int>::arange(0..len as i64, &device).reshape([1, len]),
                self.causal_mask(len, &device),
            ),
            Some(attention_mask) => {
                assert_eq!(
                    attention_mask.dims(),
                    [batch, len],
                    "attention_mask must have the shape of input_ids"
                );
                let padding = attention_mask.clone().equal_elem(0);
                let positions = (attention_mask.cumsum(1) - 1).mask_fill(padding.clone(), 0);
                let keys = padding
                    .reshape([batch, 1, 1, len])
                    .expand([batch, 1, len, len]);
                let future = Tensor::<2, Bool>::tril_mask([len, len], 0, &device)
                    .reshape([1, 1, len, len])
                    .expand([batch, 1, len, len]);
                (
                    positions,
                    AttentionMask {
                        mask: Some(keys.bool_or(future)),
                        causal: false,
                    },
                )
            }
        };
        let mut x = self.embed_rows(input_ids, positions.expand([batch, len]));
        let prepared = self.fused_rows();
        for (i, block) in self.blocks.iter().enumerate() {
            let fast = prepared.as_ref().map(|weights| &weights.blocks[i]);
            x = block.forward(x, [batch, len], &mask, fast, self.compute());
        }
        self.final_norm(x, prepared.as_ref(), [batch, len])
    }

    /// The parameter rows a forward pass makes at its start under [`Execution::Fused`]
    /// (see `decode_weights`); `None` under the other policies.
    fn fused_rows(&self) -> Option<DecodeWeights> {
        self.compute
            .execution
            .is_fused()
            .then(|| DecodeWeights::rows(&self.blocks, &self.ln_f, self.config.layer_norm_epsilon))
    }

    /// `ln_f` of the blocks' rows (with prepared rows where there are some), as
    /// `[batch, len, n_embd]`.
    fn final_norm(
        &self,
        x: Tensor<2>,
        prepared: Option<&DecodeWeights>,
        [batch, len]: [usize; 2],
    ) -> Tensor<3> {
        let rows = prepared.and_then(|weights| weights.ln_f.as_ref());
        layer_norm(&self.ln_f, rows, x).reshape([batch, len, self.config.n_embd])
    }

    /// The mask of a causal forward pass without padding. burn's fused attention op takes
    /// causality as a flag; with attention dropout active (training), every layer writes
    /// its attention out and needs the mask as a tensor, which is built here once for all
    /// layers rather than by each (on a GPU it is several kernel launches per layer).
    fn causal_mask(&self, len: usize, device: &Device) -> AttentionMask {
        let explicit = self
            .blocks
            .iter()
            .any(|block| dropout_active(&block.attn.attn_dropout, device));
        if explicit {
            AttentionMask {
                mask: Some(
                    Tensor::<2, Bool>::tril_mask([len, len], 0, device).reshape([1, 1, len, len]),
                ),
                causal: false,
            }
        } else {
            AttentionMask {
                mask: None,
                causal: true,
            }
        }
    }

    /// Logits from final hidden states: `hidden @ wte^T`, `[batch, len, vocab_size]`.
    pub fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, len, width] = hidden.dims();
        let weight = self.token_embedding.weight.val();
        let vocab = weight.dims()[0];
        let rows = batch * len;
        let hidden = hidden.reshape([rows, width]);
        // One matrix product with the transposed embedding, read in place (a view). For a
        // few rows (decoding) `(wte @ hidden^T)^T` is the faster orientation on CPU: the
        // kernels stream the large [vocab, n_embd] operand once instead of packing it for
        // a short left-hand side (3x faster at 8 rows on flex, equal from about 32);
        // `matmul_transposed` splits the vocabulary over the threads where that is faster.
        let logits = if rows < LM_HEAD_FEW_ROWS {
            matmul_transposed(self.compute(), hidden, &weight)
        } else {
            self.compute().matmul(hidden, weight.transpose())
        };
        logits.reshape([batch, len, vocab])
    }

    /// Token plus position embeddings (and their dropout) of `[batch, len]` ids as
    /// `[batch * len, n_embd]` rows, the blocks' shape, taken with `select` rather than by
    /// `Embedding` and a reshape: under kernel fusion the reshape would end the kernel
    /// before the addition (one launch more per pass).
    fn embed_rows(&self, input_ids: Tensor<2, Int>, positions: Tensor<2, Int>) -> Tensor<2> {
        let [batch, len] = input_ids.dims();
        let rows = batch * len;
        let tokens = self
            .token_embedding
            .weight
            .val()
            .select(0, input_ids.reshape([rows]));
        let positions = self
            .position_embedding
            .weight
            .val()
            .select(0, positions.reshape([rows]));
        dropout(self.compute(), &self.embedding_dropout, tokens + positions)
    }

    /// An empty key/value cache for `batch` rows and up to `capacity` positions
    /// (prompt, padding included, plus new tokens).
    pub fn new_cache(&self, batch: usize, capacity: usize) -> KvCache {
        KvCache::new(self.blocks.len(), batch, capacity)
    }

    /// Feeds `len` new positions per row (`input_ids`: `[batch, len]`) through the model
    /// with the cache, appending their keys and values, and returns their final hidden
    /// states `[batch, len, n_embd]` (apply [`lm_head`](Self::lm_head) to the positions
    /// whose logits are needed). `real` (`[batch * len]`, row-major) flags real tokens;
    /// the others are padding, invisible to every later position.
    ///
    /// A prompt is fed whole (prefill), then one token per step; each step costs one
    /// position per row.
    ///
    /// # Errors
    ///
    /// When the cache lacks room for `len` slots or a row would exceed `n_positions`.
    ///
    /// # Panics
    ///
    /// When `real` does not hold one flag per token or the batch size differs from the
    /// cache's.
    pub fn forward_cached(
        &self,
        input_ids: Tensor<2, Int>,
        real: &[bool],
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, Gpt2Error> {
        self.forward_cached_with(input_ids, real, cache, None)
    }

    /// [`forward_cached`](Self::forward_cached), with transposed weight copies for
    /// steps of a few rows on a CPU (built by `generate` for one call). With
    /// [`Execution::Fused`] the pass makes its own parameter rows (see `decode_weights`).
    pub(crate) fn forward_cached_with(
        &self,
        input_ids: Tensor<2, Int>,
        real: &[bool],
        cache: &mut KvCache,
        fast: Option<&DecodeWeights>,
    ) -> Result<Tensor<3>, Gpt2Error> {
        let [batch, len] = input_ids.dims();
        assert_eq!(
            batch,
            cache.batch_size(),
            "batch size differs from the cache's"
        );
        if len > cache.remaining() {
            return Err(Gpt2Error::Generation(format!(
                "{len} more positions do not fit in a KV cache of {} with {} used",
                cache.capacity(),
                cache.len()
            )));
        }
        let longest = (0..batch)
            .map(|b| {
                cache.real_lengths()[b]
                    + real[b * len..(b + 1) * len].iter().filter(|r| **r).count()
            })
            .max()
            .unwrap_or(0);
        if longest > self.config.n_positions {
            return Err(Gpt2Error::Generation(format!(
                "a row would reach {longest} tokens, more than the model's n_positions = {}",
                self.config.n_positions
            )));
        }
        let device = input_ids.device();
        let start = cache.len();
        let (positions, masked) = cache.advance(real, len);
        let positions =
            Tensor::<2, Int>::from_data(TensorData::new(positions, [batch, len]), &device);
        let mask = cache.mask_tensor(masked, len, &device);
        let capacity = cache.capacity_for_layers();
        let mut x = self.embed_rows(input_ids, positions);
        // `generate`'s CPU copies, or the pass's own rows under kernel fusion.
        let prepared = if fast.is_none() {
            self.fused_rows()
        } else {
            None
        };
        let fast = fast.or(prepared.as_ref());
        for (i, (block, layer)) in self.blocks.iter().zip(cache.layers.iter_mut()).enumerate() {
            let fast = fast.map(|weights| &weights.blocks[i]);
            x = block.forward_cached(
                x,
                [batch, len],
                layer,
                (start, capacity),
                &mask,
                fast,
                self.compute(),
            );
        }
        Ok(self.final_norm(x, fast, [batch, len]))
    }
}

/// Shifts logits and labels for next-token prediction, as `GPT2LMHeadModel(labels=...)`
/// does: position `t` predicts token `t + 1`. Returns `logits[:, :-1]` and
/// `labels[:, 1:]`, ready for a loss over `[batch, len - 1]` targets.
///
/// # Panics
///
/// When the sequences are shorter than two tokens.
pub fn shift_for_next_token(
    logits: Tensor<3>,
    labels: Tensor<2, Int>,
) -> (Tensor<3>, Tensor<2, Int>) {
    let [batch, len, vocab] = logits.dims();
    assert!(
        len >= 2,
        "next-token prediction needs at least two positions"
    );
    (
        logits.slice([0..batch, 0..len - 1, 0..vocab]),
        labels.slice([0..batch, 1..len]),
    )
}
