//! The BERT encoder, the BERT decoder with cross-attention and its LM head, and the
//! encoder-decoder that joins them.
//!
//! Mirrors transformers' `BertModel` (encoder), `BertLMHeadModel` (decoder) and
//! `EncoderDecoderModel` (`models/bert/modeling_bert.py`,
//! `models/encoder_decoder/modeling_encoder_decoder.py`): word + position + token-type
//! embeddings with LayerNorm, post-LN layers (attention → dropout → residual →
//! LayerNorm, then the feed-forward block the same way), and on the decoder a
//! prediction head `LayerNorm(act(dense(h))) · Eᵀ + b` whose matrix `E` *is* the
//! decoder's word-embedding matrix (transformers ties `cls.predictions.decoder.weight`
//! to `bert.embeddings.word_embeddings.weight` and `cls.predictions.decoder.bias` to
//! `cls.predictions.bias`).

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::activation::{gelu, gelu_approximate, relu};
use burn::tensor::module::linear;
use burn::tensor::{Device, Int, Tensor};

use crate::attention::{Attention, DecoderCache, mask_bias, zero_bias};
use crate::config::{Bert2BertConfig, BertConfig, HiddenAct};
use scalegrad_ops::{
    Compute, Execution, KvBuffer, NormRows, Precision, dropout, end_fused_kernel, layer_norm,
};

fn activate<const D: usize>(act: HiddenAct, x: Tensor<D>) -> Tensor<D> {
    match act {
        HiddenAct::Gelu => gelu(x),
        HiddenAct::GeluTanh => gelu_approximate(x),
        HiddenAct::Relu => relu(x),
    }
}

fn new_layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}

fn dense(config: &BertConfig, d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out)
        .with_initializer(config.initializer())
        .init(device);
    zero_bias(&mut l);
    l
}

/// Word, position and token-type embeddings followed by LayerNorm (HF `BertEmbeddings`).
#[derive(Module, Debug)]
pub struct Embeddings {
    /// Token embeddings `[vocab, H]`; on the decoder also the LM head's matrix.
    pub word_embeddings: Embedding,
    /// Absolute position embeddings `[max_positions, H]`.
    pub position_embeddings: Embedding,
    /// Token-type embeddings `[type_vocab, H]`; only type 0 is used.
    pub token_type_embeddings: Embedding,
    /// LayerNorm over the sum.
    pub layer_norm: LayerNorm,
    /// Dropout after the LayerNorm (training only).
    pub dropout: Dropout,
}

impl Embeddings {
    fn new(config: &BertConfig, device: &Device) -> Self {
        let embedding = |n| {
            EmbeddingConfig::new(n, config.hidden_size)
                .with_initializer(config.initializer())
                .init(device)
        };
        Self {
            word_embeddings: embedding(config.vocab_size),
            position_embeddings: embedding(config.max_position_embeddings),
            token_type_embeddings: embedding(config.type_vocab_size),
            layer_norm: new_layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// Embeds `ids` (`[B, T]`) placed at positions `start..start + T`, as the rows
    /// `[B * T, H]` the layers pass on.
    ///
    /// # Panics
    /// If `start + T` exceeds the number of position embeddings (callers truncate).
    /// With `norm`, the LayerNorm's prepared rows ([`Execution::Fused`]).
    pub fn forward(
        &self,
        exec: Compute,
        ids: Tensor<2, Int>,
        start: usize,
        norm: Option<&NormRows>,
    ) -> Tensor<2> {
        let [_, t] = ids.dims();
        let positions = self.position_embeddings.weight.val();
        let max = positions.dims()[0];
        assert!(
            start + t <= max,
            "positions {start}..{} exceed the {max} position embeddings",
            start + t
        );
        let h = positions.dims()[1];
        let positions = positions.narrow(0, start, t).reshape([1, t, h]);
        let token_type = self
            .token_type_embeddings
            .weight
            .val()
            .narrow(0, 0, 1)
            .reshape([1, 1, h]);
        let [b, _] = ids.dims();
        let x = (self.word_embeddings.forward(ids) + token_type + positions).reshape([b * t, h]);
        dropout(exec, &self.dropout, layer_norm(&self.layer_norm, norm, x))
    }

    /// Number of position embeddings.
    pub fn max_positions(&self) -> usize {
        self.position_embeddings.weight.dims()[0]
    }
}

/// The feed-forward block: `LayerNorm(x + dropout(W2 act(W1 x)))` (HF `BertIntermediate` +
/// `BertOutput`).
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `intermediate.dense`.
    pub intermediate: Linear,
    /// `output.dense`.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub norm: LayerNorm,
    /// Dropout before the residual (training only).
    pub dropout: Dropout,
    /// The activation, parsed once from the config's `hidden_act` (an unknown name is
    /// a load error, see [`BertConfig::activation`]).
    #[module(skip)]
    pub activation: HiddenAct,
}

impl FeedForward {
    fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            intermediate: dense(config, config.hidden_size, config.intermediate_size, device),
            output: dense(config, config.intermediate_size, config.hidden_size, device),
            norm: new_layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.activation(),
        }
    }

    fn forward(&self, exec: Compute, x: Tensor<2>, norm: Option<&NormRows>) -> Tensor<2> {
        let act = self.activation;
        let h = activate(
            act,
            scalegrad_ops::linear(exec, &self.intermediate, x.clone()),
        );
        let h = dropout(
            exec,
            &self.dropout,
            end_kernel(exec, scalegrad_ops::linear(exec, &self.output, h)),
        );
        layer_norm(&self.norm, norm, x + h)
    }
}

/// An attention block with its residual LayerNorm (HF `BertAttention`).
#[derive(Module, Debug)]
pub struct AttentionBlock {
    /// Projections (`self.query/key/value`, `output.dense`).
    pub attention: Attention,
    /// `output.LayerNorm`.
    pub norm: LayerNorm,
    /// Dropout before the residual (training only).
    pub dropout: Dropout,
}

impl AttentionBlock {
    fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            attention: Attention::new(config, device),
            norm: new_layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    fn residual(
        &self,
        exec: Compute,
        x: Tensor<2>,
        attended: Tensor<2>,
        norm: Option<&NormRows>,
    ) -> Tensor<2> {
        let attended = dropout(exec, &self.dropout, end_kernel(exec, attended));
        layer_norm(&self.norm, norm, x + attended)
    }
}

/// One encoder layer (HF `BertLayer` without cross-attention).
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Bidirectional self-attention.
    pub self_attn: AttentionBlock,
    /// Feed-forward block.
    pub ffn: FeedForward,
}

impl EncoderLayer {
    /// The layer on the rows `[B * S, H]` of `batch` sequences; `norms`: its two
    /// LayerNorms' prepared rows ([`Execution::Fused`]).
    fn forward(
        &self,
        exec: Compute,
        x: Tensor<2>,
        batch: usize,
        bias: Option<Tensor<4>>,
        norms: Option<&[NormRows]>,
    ) -> Tensor<2> {
        let a = self
            .self_attn
            .attention
            .self_attention(exec, x.clone(), batch, bias, false);
        let x = self.self_attn.residual(exec, x, a, norm(norms, 0));
        self.ffn.forward(exec, x, norm(norms, 1))
    }

    /// Its LayerNorms' rows, in the order `forward` takes them.
    fn norm_rows(&self, epsilon: f64) -> Vec<NormRows> {
        [&self.self_attn.norm, &self.ffn.norm]
            .map(|n| NormRows::new(n, epsilon))
            .into()
    }
}

/// The encoder: `BertModel` (its pooler is kept only so that checkpoints round-trip;
/// encoder-decoder models never use it).
#[derive(Module, Debug)]
pub struct BertEncoder {
    /// Embeddings.
    pub embeddings: Embeddings,
    /// Layers.
    pub layers: Vec<EncoderLayer>,
    /// `pooler.dense`, when the checkpoint has one (HF's `BertModel` default).
    pub pooler: Option<Linear>,
    /// How forward passes compute (set through [`Bert2Bert::with_execution`]).
    #[module(skip)]
    compute: Compute,
    /// The LayerNorms' epsilon (the config's `layer_norm_eps`), for their rows.
    #[module(skip)]
    layer_norm_eps: f64,
}

impl BertEncoder {
    fn new(config: &BertConfig, with_pooler: bool, device: &Device) -> Self {
        Self {
            embeddings: Embeddings::new(config, device),
            layers: (0..config.num_hidden_layers)
                .map(|_| EncoderLayer {
                    self_attn: AttentionBlock::new(config, device),
                    ffn: FeedForward::new(config, device),
                })
                .collect(),
            pooler: with_pooler
                .then(|| dense(config, config.hidden_size, config.hidden_size, device)),
            compute: Compute::default(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// The last hidden states `[B, S, H]` of `ids` (`[B, S]`) with the HF attention mask
    /// (`[B, S]`, 1 = token, 0 = padding).
    ///
    /// # Panics
    /// If `S` exceeds the position embeddings or the shapes disagree (callers truncate and
    /// pad; [`crate::generate`] checks this and returns an error instead).
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        let exec = self.compute;
        let [batch, len] = ids.dims();
        let bias = mask.map(mask_bias);
        let epsilon = self.layer_norm_eps;
        let norms = PassNorms::new(exec, &self.embeddings, epsilon, || {
            self.layers.iter().map(|l| l.norm_rows(epsilon)).collect()
        });
        // The layers pass rows `[B * S, H]`: no reshape between a product and the
        // element-wise work after it, which on GPU backends would end its fused kernel.
        let mut x = self
            .embeddings
            .forward(exec, ids, 0, PassNorms::embeddings(&norms));
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(exec, x, batch, bias.clone(), PassNorms::layer(&norms, i));
        }
        let hidden = x.dims()[1];
        x.reshape([batch, len, hidden])
    }
}

/// One decoder layer: causal self-attention, cross-attention, feed-forward (HF `BertLayer`
/// with `is_decoder` and `add_cross_attention`).
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Causal self-attention (`attention`).
    pub self_attn: AttentionBlock,
    /// Cross-attention on the encoder's states (`crossattention`).
    pub cross_attn: AttentionBlock,
    /// Feed-forward block.
    pub ffn: FeedForward,
}

impl DecoderLayer {
    /// Cross-attention of `x` (the rows `[N * T, H]` of `N = sources * beams`
    /// sequences, each source's beams together) on one source's keys and values
    /// (`[sources, heads, S, d]`): the rows of all beams of a source are stacked as query
    /// positions of that source, so keys and values are shared, not copied.
    fn cross(
        &self,
        exec: Compute,
        x: Tensor<2>,
        kv: &(Tensor<4>, Tensor<4>),
        bias: Option<Tensor<4>>,
    ) -> Tensor<2> {
        let sources = kv.0.dims()[0];
        let attention = &self.cross_attn.attention;
        let q = attention.split(scalegrad_ops::linear(exec, &attention.query, x), sources);
        let context = attention.attend(exec, q, kv.0.clone(), kv.1.clone(), bias, false);
        scalegrad_ops::linear(exec, &attention.output, Attention::merge(context))
    }

    /// The layer on the rows `[B * T, H]` of `batch` sequences; `norms`: its three
    /// LayerNorms' prepared rows ([`Execution::Fused`]).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        exec: Compute,
        x: Tensor<2>,
        batch: usize,
        self_bias: Option<Tensor<4>>,
        cached: Option<(&mut KvBuffer, usize, usize)>,
        cross_kv: &(Tensor<4>, Tensor<4>),
        cross_bias: Option<Tensor<4>>,
        norms: Option<&[NormRows]>,
    ) -> Tensor<2> {
        let attention = &self.self_attn.attention;
        let a = match cached {
            None => attention.self_attention(exec, x.clone(), batch, self_bias, true),
            Some((slot, start, capacity)) => {
                let project =
                    |layer| attention.split(scalegrad_ops::linear(exec, layer, x.clone()), batch);
                let (q, k, v) = (
                    project(&attention.query),
                    project(&attention.key),
                    project(&attention.value),
                );
                let (k, v) = slot.append(k, v, start, capacity);
                let context = attention.attend(exec, q, k, v, self_bias, true);
                scalegrad_ops::linear(exec, &attention.output, Attention::merge(context))
            }
        };
        let x = self.self_attn.residual(exec, x, a, norm(norms, 0));
        let c = self.cross(exec, x.clone(), cross_kv, cross_bias);
        let x = self.cross_attn.residual(exec, x, c, norm(norms, 1));
        self.ffn.forward(exec, x, norm(norms, 2))
    }

    /// Its LayerNorms' rows, in the order `forward` takes them.
    fn norm_rows(&self, epsilon: f64) -> Vec<NormRows> {
        [&self.self_attn.norm, &self.cross_attn.norm, &self.ffn.norm]
            .map(|n| NormRows::new(n, epsilon))
            .into()
    }
}

/// The LayerNorm rows of one forward pass under [`Execution::Fused`], made at its start
/// so that no parameter reshape ends a fused kernel inside it (see
/// `scalegrad_ops::NormRows`; GPT-2 does the same).
struct PassNorms {
    embeddings: NormRows,
    /// Each layer's, in the order its `forward` takes them.
    layers: Vec<Vec<NormRows>>,
    /// The decoder's LM head's, in a decoding step.
    head: Option<NormRows>,
}

impl PassNorms {
    /// The rows under `Fused`, else none.
    fn new(
        exec: Compute,
        embeddings: &Embeddings,
        epsilon: f64,
        layers: impl FnOnce() -> Vec<Vec<NormRows>>,
    ) -> Option<Self> {
        exec.execution.is_fused().then(|| Self {
            embeddings: NormRows::new(&embeddings.layer_norm, epsilon),
            layers: layers(),
            head: None,
        })
    }

    fn embeddings(norms: &Option<Self>) -> Option<&NormRows> {
        norms.as_ref().map(|n| &n.embeddings)
    }

    fn layer(norms: &Option<Self>, i: usize) -> Option<&[NormRows]> {
        norms.as_ref().map(|n| n.layers[i].as_slice())
    }
}

/// The `i`-th of a layer's prepared LayerNorm rows, when it has them.
fn norm(norms: Option<&[NormRows]>, i: usize) -> Option<&NormRows> {
    norms.map(|n| &n[i])
}

/// `x`, under [`Execution::Fused`] with its fused kernel ended (see
/// `scalegrad_ops::end_fused_kernel`): an output projection's, before the residual
/// addition and LayerNorm.
fn end_kernel(exec: Compute, x: Tensor<2>) -> Tensor<2> {
    if exec.execution.is_fused() {
        end_fused_kernel(x)
    } else {
        x
    }
}

/// The LM head of `BertLMHeadModel` (`cls.predictions`): transform, then the tied
/// vocabulary projection with its own bias.
#[derive(Module, Debug)]
pub struct LmHead {
    /// `transform.dense`.
    pub transform: Linear,
    /// `transform.LayerNorm`.
    pub norm: LayerNorm,
    /// `predictions.bias` (`[vocab]`), tied in HF to `predictions.decoder.bias`.
    pub bias: Param<Tensor<1>>,
    /// The transform's activation, parsed once from the config's `hidden_act`.
    #[module(skip)]
    pub activation: HiddenAct,
}

/// The decoder: `BertLMHeadModel` with cross-attention.
#[derive(Module, Debug)]
pub struct BertDecoder {
    /// Embeddings; `word_embeddings` doubles as the LM head's matrix.
    pub embeddings: Embeddings,
    /// Layers.
    pub layers: Vec<DecoderLayer>,
    /// Prediction head.
    pub head: LmHead,
    /// How forward passes and decoding steps compute (set through
    /// [`Bert2Bert::with_execution`]).
    #[module(skip)]
    compute: Compute,
    /// The LayerNorms' epsilon (the config's `layer_norm_eps`), for their rows.
    #[module(skip)]
    layer_norm_eps: f64,
}

impl BertDecoder {
    fn new(config: &BertConfig, device: &Device) -> Self {
        Self {
            embeddings: Embeddings::new(config, device),
            layers: (0..config.num_hidden_layers)
                .map(|_| DecoderLayer {
                    self_attn: AttentionBlock::new(config, device),
                    cross_attn: AttentionBlock::new(config, device),
                    ffn: FeedForward::new(config, device),
                })
                .collect(),
            head: LmHead {
                transform: dense(config, config.hidden_size, config.hidden_size, device),
                norm: new_layer_norm(config, device),
                bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
                activation: config.activation(),
            },
            compute: Compute::default(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// Under `Fused`, the rows of a pass's LayerNorms (see [`PassNorms`]).
    fn pass_norms(&self) -> Option<PassNorms> {
        let epsilon = self.layer_norm_eps;
        PassNorms::new(self.compute, &self.embeddings, epsilon, || {
            self.layers.iter().map(|l| l.norm_rows(epsilon)).collect()
        })
    }

    /// Under `Fused`, the head LayerNorm's rows.
    fn head_norm(&self) -> Option<NormRows> {
        self.compute
            .execution
            .is_fused()
            .then(|| NormRows::new(&self.head.norm, self.layer_norm_eps))
    }

    /// The head's transform, activation and LayerNorm on `[rows, H]`, with the
    /// LayerNorm's prepared `norm` rows where there are some.
    fn head_transform(&self, h: Tensor<2>, norm: Option<&NormRows>) -> Tensor<2> {
        let h = activate(self.head.activation, self.transform(h));
        layer_norm(&self.head.norm, norm, h)
    }

    /// How forward passes and decoding steps compute.
    pub fn execution(&self) -> Execution {
        self.compute.execution
    }

    /// The head's dense layer on `[rows, H]`, in the model's precision.
    fn transform(&self, h: Tensor<2>) -> Tensor<2> {
        match self.compute.precision {
            Precision::F32 => self.head.transform.forward(h),
            _ => scalegrad_ops::linear(self.compute, &self.head.transform, h.unsqueeze::<3>())
                .squeeze_dim::<2>(0),
        }
    }

    /// Vocabulary logits of hidden states `h` (`[..., H]` → `[..., V]`).
    pub fn logits<const D: usize>(&self, h: Tensor<D>) -> Tensor<D> {
        let norm = self.head_norm();
        // On `[rows, H]`: single matrix products, not batched ones (see `scalegrad_ops::linear`).
        let mut dims = h.dims();
        let hidden = dims[D - 1];
        let h = h.reshape([dims[..D - 1].iter().product::<usize>(), hidden]);
        let h = self.head_transform(h, norm.as_ref());
        let embeddings = self.embeddings.word_embeddings.weight.val();
        dims[D - 1] = embeddings.dims()[0];
        match self.compute.precision {
            Precision::F32 => linear(h, embeddings.transpose(), Some(self.head.bias.val())),
            _ => {
                self.compute.matmul(h, embeddings.transpose())
                    + self.head.bias.val().unsqueeze::<2>()
            }
        }
        .reshape(dims)
    }

    /// Teacher-forced logits `[B, T, V]` of decoder inputs `ids` (`[B, T]`, starting with the
    /// decoder start token) given the encoder's states (`[B, S, H]`) and masks (1 = token,
    /// 0 = padding).
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        mask: Option<Tensor<2, Int>>,
        encoder_states: Tensor<3>,
        source_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        self.logits(self.forward_hidden(ids, mask, encoder_states, source_mask))
    }

    /// The last hidden states `[B, T, H]` of [`forward`](Self::forward), before the LM
    /// head ([`logits`](Self::logits)).
    pub fn forward_hidden(
        &self,
        ids: Tensor<2, Int>,
        mask: Option<Tensor<2, Int>>,
        encoder_states: Tensor<3>,
        source_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let exec = self.compute;
        let [batch, len] = ids.dims();
        let self_bias = mask.map(mask_bias);
        let cross_bias = source_mask.map(mask_bias);
        let (states, sources) = rows(encoder_states);
        let norms = self.pass_norms();
        let mut x = self
            .embeddings
            .forward(exec, ids, 0, PassNorms::embeddings(&norms));
        for (i, layer) in self.layers.iter().enumerate() {
            let kv = layer
                .cross_attn
                .attention
                .key_value(exec, states.clone(), sources);
            x = layer.forward(
                exec,
                x,
                batch,
                self_bias.clone(),
                None,
                &kv,
                cross_bias.clone(),
                PassNorms::layer(&norms, i),
            );
        }
        let hidden = x.dims()[1];
        x.reshape([batch, len, hidden])
    }

    /// A generation cache for `beams` decoder rows per source and up to `capacity`
    /// decoder positions (at most the decoder's position embeddings): computes every
    /// layer's cross-attention keys and values once from the encoder's states.
    pub fn init_cache(
        &self,
        encoder_states: Tensor<3>,
        source_mask: Option<Tensor<2, Int>>,
        beams: usize,
        capacity: usize,
    ) -> DecoderCache {
        let (states, sources) = rows(encoder_states);
        let capacity = capacity.min(self.embeddings.max_positions());
        DecoderCache {
            self_kv: vec![KvBuffer::default(); self.layers.len()],
            capacity,
            cross_kv: self
                .layers
                .iter()
                .map(|l| {
                    let (k, v) =
                        l.cross_attn
                            .attention
                            .key_value(self.compute, states.clone(), sources);
                    (materialize(k), materialize(v))
                })
                .collect(),
            cross_bias: source_mask.map(mask_bias),
            beams,
            sources,
            len: 0,
        }
    }

    /// Runs the new decoder tokens `ids` (`[rows, T]`, usually `T = 1`) on top of the cache
    /// and returns the logits of the last position, `[rows, V]`.
    ///
    /// # Panics
    /// If `rows` differs from the cache's or the positions exceed the embeddings.
    pub fn step(&self, ids: Tensor<2, Int>, cache: &mut DecoderCache) -> Tensor<2> {
        let [rows, t] = ids.dims();
        assert_eq!(rows, cache.rows(), "one decoder row per cached row");
        let exec = self.compute;
        // Every LayerNorm's rows at the step's start, the head's included.
        let mut norms = self.pass_norms();
        if let Some(norms) = &mut norms {
            norms.head = self.head_norm();
        }
        let mut x = self
            .embeddings
            .forward(exec, ids, cache.len, PassNorms::embeddings(&norms));
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(
                exec,
                x,
                rows,
                None,
                Some((&mut cache.self_kv[i], cache.len, cache.capacity)),
                &cache.cross_kv[i],
                cache.cross_bias.clone(),
                PassNorms::layer(&norms, i),
            );
        }
        cache.len += t;
        let h = x.dims()[1];
        let last = match t {
            1 => x,
            _ => x
                .reshape([rows, t, h])
                .slice([0..rows, t - 1..t])
                .reshape([rows, h]),
        };
        let head_norm = norms.as_ref().and_then(|n| n.head.as_ref());
        let last = self.head_transform(last, head_norm);
        // `E · hᵀ` rather than `h · Eᵀ`: with a few rows the product is bound by reading
        // the [vocab, H] matrix, and gemm streams it fastest as the row-major left operand
        // (split over the threads where that is faster, see `scalegrad_ops::split_parts`).
        let embeddings = self.embeddings.word_embeddings.weight.val();
        let vocab = embeddings.dims()[0];
        scalegrad_ops::matmul_transposed(exec, last, &embeddings)
            + self.head.bias.val().reshape([1, vocab])
    }
}

/// The rows `[B * S, H]` of `states` (`[B, S, H]`), and `B`.
fn rows(states: Tensor<3>) -> (Tensor<2>, usize) {
    let [batch, len, hidden] = states.dims();
    (states.reshape([batch * len, hidden]), batch)
}

/// A contiguous copy of a strided view (a flat reshape forces the copy), so that a
/// tensor read at every decoding step is laid out once rather than at every read.
fn materialize<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let dims = t.dims();
    t.reshape([dims.iter().product::<usize>()]).reshape(dims)
}

/// The encoder-decoder (HF `EncoderDecoderModel` with BERT on both sides).
#[derive(Module, Debug)]
pub struct Bert2Bert {
    /// The BERT encoder.
    pub encoder: BertEncoder,
    /// The BERT decoder with its LM head.
    pub decoder: BertDecoder,
}

impl Bert2BertConfig {
    /// A randomly initialised model as transformers initialises one (normal weights with
    /// `initializer_range`, zero biases, unit LayerNorms), including the encoder pooler.
    ///
    /// # Panics
    /// If the config is invalid; configs read by [`Bert2BertConfig::from_file`] are
    /// validated, hand-built ones should call [`Bert2BertConfig::validate`] first.
    pub fn init(&self, device: &Device) -> Bert2Bert {
        self.init_with_pooler(true, device)
    }

    pub(crate) fn init_with_pooler(&self, pooler: bool, device: &Device) -> Bert2Bert {
        self.validate().expect("a valid config");
        Bert2Bert {
            encoder: BertEncoder::new(&self.encoder, pooler, device),
            decoder: BertDecoder::new(&self.decoder, device),
        }
    }
}

impl Bert2Bert {
    /// The model computing with `execution` (the CPU fast paths of `scalegrad-ops` for
    /// [`Execution::Host`]; the default, [`Execution::Device`], uses burn's operations
    /// only and suits every backend; [`Execution::Fused`], which the `scalegrad` binary
    /// sets on wgpu and CUDA, is `Device` with every forward pass and decoding step
    /// making its LayerNorms' `[1, n]` rows at its start and ending the output
    /// projections' fused kernels before the residual, which saves kernel launches under
    /// burn's fusion, see [`PassNorms`]).
    pub fn with_execution(self, execution: Execution) -> Self {
        self.with_compute(|c| c.execution = execution)
    }

    /// How the model's forward passes and decoding compute.
    pub fn execution(&self) -> Execution {
        self.decoder.compute.execution
    }

    /// The model computing its products (linear layers, attention, LM head) in
    /// `precision`, parameters and everything else staying f32
    /// ([`Precision`](scalegrad_ops::Precision)).
    pub fn with_precision(self, precision: Precision) -> Self {
        self.with_compute(|c| c.precision = precision)
    }

    /// The model with `set` applied to the compute settings of encoder and decoder alike.
    fn with_compute(mut self, set: impl Fn(&mut Compute)) -> Self {
        set(&mut self.encoder.compute);
        set(&mut self.decoder.compute);
        self
    }

    /// The type of the model's products.
    pub fn precision(&self) -> Precision {
        self.decoder.compute.precision
    }

    /// The device holding the parameters.
    pub fn device(&self) -> Device {
        self.decoder
            .embeddings
            .word_embeddings
            .weight
            .val()
            .device()
    }

    /// Teacher-forced logits `[B, T, V]`: the encoder reads `source_ids` (`[B, S]`) with
    /// `source_mask`, the decoder reads `decoder_ids` (`[B, T]`: labels shifted right, see
    /// [`shift_tokens_right`]) with `decoder_mask` (1 = token, 0 = padding). On an
    /// autodiff device dropout is active, as in transformers' training mode; call
    /// `model.valid()` for evaluation.
    pub fn forward(
        &self,
        source_ids: Tensor<2, Int>,
        source_mask: Option<Tensor<2, Int>>,
        decoder_ids: Tensor<2, Int>,
        decoder_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        self.decoder
            .logits(self.forward_hidden(source_ids, source_mask, decoder_ids, decoder_mask))
    }

    /// The decoder's last hidden states `[B, T, H]` of [`forward`](Self::forward),
    /// before the LM head (`self.decoder.logits`), so that a caller can apply the head to
    /// a few rows at a time.
    pub fn forward_hidden(
        &self,
        source_ids: Tensor<2, Int>,
        source_mask: Option<Tensor<2, Int>>,
        decoder_ids: Tensor<2, Int>,
        decoder_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let states = self.encoder.forward(source_ids, source_mask.clone());
        self.decoder
            .forward_hidden(decoder_ids, decoder_mask, states, source_mask)
    }
}

/// The decoder attention mask transformers' `EncoderDecoderModel` builds when it is given
/// labels: 1 where the decoder input is not the pad token, 0 where it is.
pub fn decoder_attention_mask(decoder_ids: Tensor<2, Int>, pad: u32) -> Tensor<2, Int> {
    decoder_ids.not_equal_elem(pad as i64).int()
}

/// transformers' `shift_tokens_right`: decoder inputs from labels `[B, T]`: the decoder
/// start token, then the labels without their last position, with the ignore index
/// `-100` replaced by `pad`.
pub fn shift_tokens_right(labels: Tensor<2, Int>, pad: u32, decoder_start: u32) -> Tensor<2, Int> {
    let [b, t] = labels.dims();
    let device = labels.device();
    let start = Tensor::<2, Int>::full([b, 1], decoder_start as i64, &device);
    let shifted = if t > 1 {
        Tensor::cat(vec![start, labels.slice([0..b, 0..t - 1])], 1)
    } else {
        start
    };
    let ignored = shifted.clone().equal_elem(-100);
    shifted.mask_fill(ignored, pad as i64)
}
