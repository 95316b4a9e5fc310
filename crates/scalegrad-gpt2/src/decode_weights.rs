//! Weights prepared for the passes of one call, in the form each kind of device computes
//! them fastest.
//!
//! **CPU: transposed copies, once per [`generate`] call.** A decoding step multiplies a
//! handful of rows (one per prompt) by each weight matrix, so it is bound by reading the
//! weights. With burn's `[in, out]` layout the matmul kernels of the CPU backend re-pack
//! the whole weight for such a short left-hand side; in the `W^T x^T` orientation with
//! `W^T` stored row-major they stream it once instead (on flex: 2.4x faster for an
//! `[8, 768] x [768, 3072]` product). Products the backend would run on one thread are
//! split over the rayon pool by [`scalegrad_ops::matmul_transposed`]. Built when the batch
//! has between [`MIN_ROWS`] and [`MAX_ROWS`] rows and the backend uses gemm's AVX2 kernels
//! (with its AVX-512 kernels the `[in, out]` orientation is the faster, see
//! [`DecodeWeights::transposed`]).
//!
//! **Kernel fusion ([`Execution::Fused`]): parameter rows, once per forward pass.** On a
//! GPU, and most of all in a decoding step of a few rows, time goes to kernel launches,
//! and on burn's CubeCL backends its fusion decides how many there are. `LayerNorm` and
//! `Linear` reshape their `[n]` scale, shift and bias to a broadcastable row on every
//! call; such a reshape, landing in the stream between a fused kernel and the addition
//! that uses its result, ends the kernel early, so the addition ran as a kernel of its
//! own. Every forward pass (training, evaluation, each decoding step) makes the rows at
//! its start instead and writes its normalisations out with them (the same operations,
//! in the same order, as burn's own `layer_norm`, so the results are the same). The
//! output projections end their kernel after their bias (see [`end_fused_kernel`]), so
//! that the residual addition opens the next normalisation's kernel instead of leaving
//! the normalisation's first reduction alone in one. Measured on lavapipe, tiny GPT-2
//! (2 layers; docs/BACKENDS.md has how launches are counted): greedy decoding 42.6 kernel
//! launches a new token before, 36.0 with the rows and the row-shaped embeddings; a
//! train step 363.9 before, 340.4 with them. Not with [`Execution::Device`]: on libtorch,
//! which runs each operation as it comes, burn's LayerNorm is one kernel and the
//! written-out one several.
//!
//! Neither outlives its call, so they can never go stale.
//!
//! [`generate`]: crate::generate

use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use scalegrad_ops::{Compute, Execution, NormRows, Precision, end_fused_kernel, matmul_transposed};

use crate::model::Block;

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

    /// `x W + b` for `x` of `[rows, in]`, computed as `(W^T x^T)^T + b`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let out = matmul_transposed(Execution::Host, x, &self.weight);
        match &self.bias {
            Some(bias) => out + bias.clone().unsqueeze::<2>(),
            None => out,
        }
    }
}

/// A linear layer's bias as a `[1, out]` row.
#[derive(Debug)]
pub(crate) struct LinearRows {
    bias: Option<Tensor<2>>,
}

impl LinearRows {
    fn new(linear: &Linear) -> Self {
        Self {
            bias: linear.bias.as_ref().map(|b| b.val().unsqueeze::<2>()),
        }
    }

    /// `x W + b` with the layer's weight and the prepared bias row.
    fn forward(&self, compute: Compute, layer: &Linear, x: Tensor<2>) -> Tensor<2> {
        let out = compute.matmul(x, layer.weight.val());
        match &self.bias {
            Some(bias) => out + bias.clone(),
            None => out,
        }
    }
}

/// Which linear layer of a block.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BlockLinear {
    /// `attn.c_attn`.
    Qkv,
    /// `attn.c_proj`.
    AttnProj,
    /// `mlp.c_fc`.
    Fc,
    /// `mlp.c_proj`.
    MlpProj,
}

/// Which LayerNorm of a block.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BlockNorm {
    /// `ln_1`.
    Ln1,
    /// `ln_2`.
    Ln2,
}

/// One block's prepared weights.
#[derive(Debug)]
pub(crate) enum BlockWeights {
    /// Transposed copies of the four linear layers (CPU).
    Transposed(Box<[TransposedLinear; 4]>),
    /// Bias and LayerNorm rows (GPU).
    Rows(Box<BlockRows>),
}

/// A block's bias and LayerNorm rows.
#[derive(Debug)]
pub(crate) struct BlockRows {
    linears: [LinearRows; 4],
    ln_1: NormRows,
    ln_2: NormRows,
}

impl BlockWeights {
    /// `x W + b` of the block's layer `which` (`layer`), for `x` of `[rows, in]`.
    pub(crate) fn linear(
        &self,
        which: BlockLinear,
        layer: &Linear,
        x: Tensor<2>,
        compute: Compute,
    ) -> Tensor<2> {
        match self {
            Self::Transposed(linears) => linears[which as usize].forward(x),
            Self::Rows(rows) => {
                let out = rows.linears[which as usize].forward(compute, layer, x);
                match which {
                    BlockLinear::AttnProj | BlockLinear::MlpProj => end_fused_kernel(out),
                    BlockLinear::Qkv | BlockLinear::Fc => out,
                }
            }
        }
    }

    /// The prepared rows of the block's LayerNorm `which`, if it has them.
    pub(crate) fn norm_rows(&self, which: BlockNorm) -> Option<&NormRows> {
        match (self, which) {
            (Self::Transposed(_), _) => None,
            (Self::Rows(rows), BlockNorm::Ln1) => Some(&rows.ln_1),
            (Self::Rows(rows), BlockNorm::Ln2) => Some(&rows.ln_2),
        }
    }
}

/// Every block's prepared weights, and the final LayerNorm's rows on a GPU.
#[derive(Debug)]
pub(crate) struct DecodeWeights {
    pub blocks: Vec<BlockWeights>,
    pub ln_f: Option<NormRows>,
}

impl DecodeWeights {
    /// Transposed copies for steps of `rows` rows with [`Execution::Host`], where they
    /// pay off: with gemm's AVX2 kernels for `MIN_ROWS..MAX_ROWS` rows (batch 8 on 2
    /// cores: 196 new tokens/s against 125 without); with its AVX-512 kernels, never (165
    /// without, 143 with), nor in a half precision (the copies are f32), nor on other
    /// devices (there the copy would be a download and an upload of every weight).
    pub(crate) fn transposed(blocks: &[Block], compute: Compute, rows: usize) -> Option<Self> {
        let pays_off = compute.is_host()
            && compute.precision == Precision::F32
            && !scalegrad_ops::avx512_kernels()
            && (MIN_ROWS..MAX_ROWS).contains(&rows);
        pays_off.then(|| Self {
            blocks: blocks
                .iter()
                .map(|b| {
                    BlockWeights::Transposed(Box::new(
                        [&b.attn.qkv, &b.attn.proj, &b.mlp.fc, &b.mlp.proj]
                            .map(TransposedLinear::new),
                    ))
                })
                .collect(),
            ln_f: None,
        })
    }

    /// The parameter rows for one forward pass under [`Execution::Fused`]. In decoding
    /// they are made at the start of every step rather than once per `generate` call:
    /// views made once and reused across steps measured worse (50.0 launches a token
    /// against 36.0), as burn's fusion then replayed un-fused plans it had recorded for
    /// the step's first operations.
    pub(crate) fn rows(blocks: &[Block], ln_f: &LayerNorm, epsilon: f64) -> Self {
        Self {
            blocks: blocks
                .iter()
                .map(|b| {
                    BlockWeights::Rows(Box::new(BlockRows {
                        linears: [&b.attn.qkv, &b.attn.proj, &b.mlp.fc, &b.mlp.proj]
                            .map(LinearRows::new),
                        ln_1: NormRows::new(&b.ln_1, epsilon),
                        ln_2: NormRows::new(&b.ln_2, epsilon),
                    }))
                })
                .collect(),
            ln_f: Some(NormRows::new(ln_f, epsilon)),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn max_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// The rows-route linear layer computes what burn's layer computes, and the
    /// kernel-ending reshapes leave the values as they are.
    #[test]
    fn linear_rows_compute_what_the_layer_computes() {
        let device = Device::flex();
        let x = Tensor::<2>::random([5, 24], Distribution::Normal(0.5, 0.3), &device);
        let layer = LinearConfig::new(24, 7).init(&device);
        let linears = LinearRows::new(&layer);
        let out = linears.forward(Compute::from(Execution::Device), &layer, x.clone());
        assert!(max_diff(out.clone(), layer.forward(x)) < 1e-5);
        assert_eq!(
            end_fused_kernel(out.clone()).into_data(),
            out.into_data(),
            "the reshapes change nothing"
        );
    }
}
