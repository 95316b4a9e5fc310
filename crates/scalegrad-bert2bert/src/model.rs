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
use scalegrad_ops::{Compute, Execution, KvBuffer, Precision, dropout};

fn activate<const D: usize>(act: HiddenAct, x: Tensor<D>) -> Tensor<D> {
    match act {
        HiddenAct::Gelu => gelu(x),
        HiddenAct::GeluTanh => gelu_approximate(x),
        HiddenAct::Relu => relu(x),
    }
}

fn layer_norm(config: &BertConfig, device: &Device) -> LayerNorm {
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
            layer_norm: layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// Embeds `ids` (`[B, T]`) placed at positions `start..start + T`.
    ///
    /// # Panics
    /// If `start + T` exceeds the number of position embeddings (callers truncate).
    pub fn forward(&self, exec: Compute, ids: Tensor<2, Int>, start: usize) -> Tensor<3> {
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
        let x = self.word_embeddings.forward(ids) + token_type + positions;
        dropout(exec, &self.dropout, self.layer_norm.forward(x))
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
            norm: layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.activation(),
        }
    }

    fn forward(&self, exec: Compute, x: Tensor<3>) -> Tensor<3> {
        let act = self.activation;
        let h = activate(
            act,
            scalegrad_ops::linear(exec, &self.intermediate, x.clone()),
        );
        let h = dropout(
            exec,
            &self.dropout,
            scalegrad_ops::linear(exec, &self.output, h),
        );
        self.norm.forward(x + h)
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
            norm: layer_norm(config, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    fn residual(&self, exec: Compute, x: Tensor<3>, attended: Tensor<3>) -> Tensor<3> {
        self.norm
            .forward(x + dropout(exec, &self.dropout, attended))
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
    fn forward(&self, exec: Compute, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let a = self
            .self_attn
            .attention
            .self_attention(exec, x.clone(), bias, false);
        let x = self.self_attn.residual(exec, x, a);
        self.ffn.forward(exec, x)
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
        let bias = mask.map(mask_bias);
        let mut x = self.embeddings.forward(exec, ids, 0);
        for layer in &self.layers {
            x = layer.forward(exec, x, bias.clone());
        }
        x
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
    /// Cross-attention of `x` (`[N, T, H]`, `N = sources * beams`) on one source's keys and
    /// values (`[sources, heads, S, d]`): the rows of all beams of a source are stacked as
    /// query positions of that source, so keys and values are shared, not copied.
    fn cross(
        &self,
        exec: Compute,
        x: Tensor<3>,
        kv: &(Tensor<4>, Tensor<4>),
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let [n, t, h] = x.dims();
        let sources = kv.0.dims()[0];
        let attention = &self.cross_attn.attention;
        let q = scalegrad_ops::linear(exec, &attention.query, x);
        let q = attention.split(q.reshape([sources, n / sources * t, h]));
        let context = attention.attend(exec, q, kv.0.clone(), kv.1.clone(), bias, false);
        let out = scalegrad_ops::linear(exec, &attention.output, Attention::merge(context));
        out.reshape([n, t, h])
    }

    fn forward(
        &self,
        exec: Compute,
        x: Tensor<3>,
        self_bias: Option<Tensor<4>>,
        cached: Option<(&mut KvBuffer, usize, usize)>,
        cross_kv: &(Tensor<4>, Tensor<4>),
        cross_bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let attention = &self.self_attn.attention;
        let a = match cached {
            None => attention.self_attention(exec, x.clone(), self_bias, true),
            Some((slot, start, capacity)) => {
                let q = attention.split(scalegrad_ops::linear(exec, &attention.query, x.clone()));
                let k = attention.split(scalegrad_ops::linear(exec, &attention.key, x.clone()));
                let v = attention.split(scalegrad_ops::linear(exec, &attention.value, x.clone()));
                let (k, v) = slot.append(k, v, start, capacity);
                let context = attention.attend(exec, q, k, v, self_bias, true);
                scalegrad_ops::linear(exec, &attention.output, Attention::merge(context))
            }
        };
        let x = self.self_attn.residual(exec, x, a);
        let c = self.cross(exec, x.clone(), cross_kv, cross_bias);
        let x = self.cross_attn.residual(exec, x, c);
        self.ffn.forward(exec, x)
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
                norm: layer_norm(config, device),
                bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
                activation: config.activation(),
            },
            compute: Compute::default(),
        }
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
        let act = self.head.activation;
        // On `[rows, H]`: single matrix products, not batched ones (see `scalegrad_ops::linear`).
        let mut dims = h.dims();
        let hidden = dims[D - 1];
        let h = h.reshape([dims[..D - 1].iter().product::<usize>(), hidden]);
        let h = self.head.norm.forward(activate(act, self.transform(h)));
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
        let self_bias = mask.map(mask_bias);
        let cross_bias = source_mask.map(mask_bias);
        let mut x = self.embeddings.forward(exec, ids, 0);
        for layer in &self.layers {
            let kv = layer
                .cross_attn
                .attention
                .key_value(exec, encoder_states.clone());
            x = layer.forward(exec, x, self_bias.clone(), None, &kv, cross_bias.clone());
        }
        x
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
        let sources = encoder_states.dims()[0];
        let capacity = capacity.min(self.embeddings.max_positions());
        DecoderCache {
            self_kv: vec![KvBuffer::default(); self.layers.len()],
            capacity,
            cross_kv: self
                .layers
                .iter()
                .map(|l| {
                    let (k, v) = l
                        .cross_attn
                        .attention
                        .key_value(self.compute, encoder_states.clone());
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
        let mut x = self.embeddings.forward(exec, ids, cache.len);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(
                exec,
                x,
                None,
                Some((&mut cache.self_kv[i], cache.len, cache.capacity)),
                &cache.cross_kv[i],
                cache.cross_bias.clone(),
            );
        }
        cache.len += t;
        let h = x.dims()[2];
        let last = x.slice([0..rows, t - 1..t]).reshape([rows, h]);
        let act = self.head.activation;
        let last = self.head.norm.forward(activate(act, self.transform(last)));
        // `E · hᵀ` rather than `h · Eᵀ`: with a few rows the product is bound by reading
        // the [vocab, H] matrix, and gemm streams it fastest as the row-major left operand
        // (split over the threads where that is faster, see `scalegrad_ops::split_parts`).
        let embeddings = self.embeddings.word_embeddings.weight.val();
        let vocab = embeddings.dims()[0];
        scalegrad_ops::matmul_transposed(exec, last, &embeddings)
            + self.head.bias.val().reshape([1, vocab])
    }
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
    /// sets on wgpu and CUDA, computes here as `Device` does).
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
