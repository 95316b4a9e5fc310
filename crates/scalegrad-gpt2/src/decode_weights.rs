//! Transposed copies of the linear weights, for decoding a few rows at once on CPU.
//!
//! A decoding step multiplies a handful of rows (one per prompt) by each weight matrix,
//! so it is bound by reading the weights. With burn's `[in, out]` layout the matmul
//! kernels of the CPU backend re-pack the whole weight for such a short left-hand side;
//! in the `W^T x^T` orientation with `W^T` stored row-major they stream it once instead
//! (on flex: 2.4x faster for an `[8, 768] x [768, 3072]` product).
//!
//! Products the backend would run on one thread are split over the rayon pool by
//! [`scalegrad_ops::matmul_transposed`].
//!
//! [`generate`] builds the copies (`Gpt2::decode_weights`) once per call when the batch has between
//! [`MIN_ROWS`] and [`MAX_ROWS`] rows and the backend uses gemm's AVX2 kernels (with its
//! AVX-512 kernels the `[in, out]` orientation is the faster, see
//! [`DecodeWeights::pays_off`]); they live only for that call, so they can never
//! go stale.
//!
//! [`generate`]: crate::generate

use burn::nn::Linear;
use burn::tensor::Tensor;
use scalegrad_ops::{Compute, Execution, Precision, matmul_transposed};

/// Fewest rows per step for which the transposed weights pay off.
pub(crate) const MIN_ROWS: usize = 4;
/// From this many rows per step the ordinary orientation is as fast.
pub(crate) const MAX_ROWS: usize = 32;

/// One linear layer with its weight as a row-major `[out, in]` matrix.
#[derive(Debug)]
pub(crate) struct TransposedLinear {
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
}

impl TransposedLinear {
    fn new(linear: &Linear) -> Self {
        let weight = linear.weight.val().detach();
        let device = weight.device();
        // Through host data: a contiguous `[out, in]` copy is the point of the struct,
        // and only a copy guarantees the layout on every backend.
        let weight = Tensor::from_data(weight.transpose().into_data(), &device);
        Self {
            weight,
            bias: linear.bias.as_ref().map(|b| b.val().detach()),
        }
    }

    /// `x W + b` for `x` of `[batch, len, in]`, computed as `(W^T x^T)^T + b`.
    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, len, d_in] = x.dims();
        let d_out = self.weight.dims()[0];
        let out = matmul_transposed(
            Execution::Host,
            x.reshape([batch * len, d_in]),
            &self.weight,
        );
        let out = match &self.bias {
            Some(bias) => out + bias.clone().unsqueeze::<2>(),
            None => out,
        };
        out.reshape([batch, len, d_out])
    }
}

/// The four linear layers of a block.
#[derive(Debug)]
pub(crate) struct BlockWeights {
    pub qkv: TransposedLinear,
    pub attn_proj: TransposedLinear,
    pub fc: TransposedLinear,
    pub mlp_proj: TransposedLinear,
}

/// Transposed copies of every block's linear layers.
#[derive(Debug)]
pub(crate) struct DecodeWeights {
    pub blocks: Vec<BlockWeights>,
}

impl BlockWeights {
    /// Copies of a block's attention input and output projections and its MLP's two
    /// layers.
    pub(crate) fn new(qkv: &Linear, attn_proj: &Linear, fc: &Linear, mlp_proj: &Linear) -> Self {
        Self {
            qkv: TransposedLinear::new(qkv),
            attn_proj: TransposedLinear::new(attn_proj),
            fc: TransposedLinear::new(fc),
            mlp_proj: TransposedLinear::new(mlp_proj),
        }
    }
}

impl DecodeWeights {
    /// Whether decoding `rows` rows per step is faster with the copies: only with
    /// [`Execution::Host`] (elsewhere the copy would be a download and an upload of every
    /// weight), and there with gemm's AVX2 kernels, for `MIN_ROWS..MAX_ROWS` rows
    /// (batch 8 on 2 cores: 196 new tokens/s against 125 without); with its AVX-512
    /// kernels, never (165 without, 143 with).
    /// The copies are f32, so a model computing in a half type never takes them.
    pub(crate) fn pays_off(compute: Compute, rows: usize) -> bool {
        compute.is_host()
            && compute.precision == Precision::F32
            && !scalegrad_ops::avx512_kernels()
            && (MIN_ROWS..MAX_ROWS).contains(&rows)
    }
}
