//! Transposed copies of the linear weights, for decoding a few rows at once on CPU.
//!
//! A decoding step multiplies a handful of rows (one per prompt) by each weight matrix,
//! so it is bound by reading the weights. With burn's `[in, out]` layout the matmul
//! kernels of the CPU backend re-pack the whole weight for such a short left-hand side;
//! in the `W^T x^T` orientation with `W^T` stored row-major they stream it once instead
//! (on flex: 2.4x faster for an `[8, 768] x [768, 3072]` product).
//!
//! Matrix-vector products (one row per step) and products below `192^3` multiply-adds run
//! on one thread: the backend parallelises only larger matrix products, and one thread
//! reads memory at about half the rate two cores reach. [`linear`] splits such a product along the input
//! dimension, whose slices of an `[in, out]` weight are contiguous views (no copy), over
//! the rayon pool and adds the partial products; [`matmul_transposed`] splits the rows of
//! an `[out, in]` matrix such as the LM head's (measured on flex, 2 cores, one row, six
//! weights read in turn: 1.5x on `768 x 2304`, 2x on `768 x 3072` and `3072 x 768`, 1.8x
//! on the `50257 x 768` LM head).
//!
//! [`generate`] builds the copies once per call when the batch has between
//! [`MIN_ROWS`] and [`MAX_ROWS`] rows; they live only for that call, so they can never
//! go stale.
//!
//! [`generate`]: crate::generate

use burn::nn::Linear;
use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::model::Gpt2;

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
        let out = matmul_transposed(x.reshape([batch * len, d_in]), &self.weight);
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

impl DecodeWeights {
    pub(crate) fn new(model: &Gpt2) -> Self {
        Self {
            blocks: model
                .blocks
                .iter()
                .map(|block| BlockWeights {
                    qkv: TransposedLinear::new(&block.attn.qkv),
                    attn_proj: TransposedLinear::new(&block.attn.proj),
                    fc: TransposedLinear::new(&block.mlp.fc),
                    mlp_proj: TransposedLinear::new(&block.mlp.proj),
                })
                .collect(),
        }
    }

    /// Whether decoding `rows` rows per step is faster with the copies.
    pub(crate) fn pays_off(rows: usize) -> bool {
        (MIN_ROWS..MAX_ROWS).contains(&rows)
    }
}

/// Multiply-adds from which the CPU backend's matrix kernels use every core themselves.
const BACKEND_PARALLEL_OPS: usize = 192 * 192 * 192;

/// Weight elements per thread below which a split is not worth a task.
const MIN_SPLIT: usize = 1 << 17;

/// How many slices of a product of `x` with a weight of `elements` elements to compute
/// side by side on the rayon pool: one (no split) when the backend's kernels parallelise
/// the product themselves (a matrix product of `BACKEND_PARALLEL_OPS` or more; never a
/// matrix-vector one), and on autodiff devices (training batches are never this small,
/// and the graph is best built on one thread).
fn split_parts(x: &Tensor<2>, elements: usize) -> usize {
    let [rows, _] = x.dims();
    let backend_parallel = rows > 1 && rows * elements >= BACKEND_PARALLEL_OPS;
    if backend_parallel || x.device().is_autodiff() {
        return 1;
    }
    rayon::current_num_threads()
        .min(elements / MIN_SPLIT)
        .max(1)
}

/// `x W + b` of a linear layer for `x` of `[batch, len, in]`: burn's `Linear`, except
/// for products the backend would run on one thread, where slices of the input
/// dimension are multiplied on all of the rayon pool's threads and the partial products
/// added.
pub(crate) fn linear(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [batch, len, d_in] = x.dims();
    let weight = layer.weight.val();
    let d_out = weight.dims()[1];
    let x2 = x.clone().reshape([batch * len, d_in]);
    let parts = split_parts(&x2, d_in * d_out);
    if parts == 1 {
        return layer.forward(x);
    }
    let per_part = d_in.div_ceil(parts);
    let out = (0..parts)
        .into_par_iter()
        .map(|part| {
            let start = part * per_part;
            let len = per_part.min(d_in - start);
            x2.clone()
                .narrow(1, start, len)
                .matmul(weight.clone().narrow(0, start, len))
        })
        .reduce_with(|a, b| a + b)
        .expect("at least one part");
    let out = match &layer.bias {
        Some(bias) => out + bias.val().unsqueeze::<2>(),
        None => out,
    };
    out.reshape([batch, len, d_out])
}

/// `x weight^T` for `x` of `[rows, in]` and a row-major `weight` of `[out, in]`, as
/// `[rows, out]`: one `(weight x^T)^T` product, or, when the backend would run it on one
/// thread, slices of `weight`'s rows on all of the rayon pool's threads, concatenated.
pub(crate) fn matmul_transposed(x: Tensor<2>, weight: &Tensor<2>) -> Tensor<2> {
    let [out, d_in] = weight.dims();
    let parts = split_parts(&x, out * d_in);
    if parts == 1 {
        return weight.clone().matmul(x.transpose()).transpose();
    }
    let per_part = out.div_ceil(parts);
    let slices: Vec<Tensor<2>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let start = part * per_part;
            let len = per_part.min(out - start);
            x.clone()
                .matmul(weight.clone().narrow(0, start, len).transpose())
        })
        .collect();
    Tensor::cat(slices, 1)
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn max_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    /// A pool of two threads, so the split happens whatever the machine's core count.
    fn two_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool")
            .install(f)
    }

    #[test]
    fn split_linear_equals_the_plain_product() {
        let device = Device::flex();
        let layer = LinearConfig::new(768, 512).init(&device);
        let layer = Linear {
            bias: layer
                .bias
                .map(|b| b.map(|t| t.random_like(Distribution::Default))),
            ..layer
        };
        for rows in [1, 2, 3] {
            let x = Tensor::<3>::random([1, rows, 768], Distribution::Default, &device);
            let flat = x.clone().reshape([rows, 768]);
            assert_eq!(two_threads(|| split_parts(&flat, 768 * 512)), 2);
            let split = two_threads(|| linear(&layer, x.clone())).reshape([rows, 512]);
            let plain = layer.forward(x).reshape([rows, 512]);
            assert!(max_diff(split, plain) < 1e-4, "{rows} rows");
        }
    }

    #[test]
    fn split_transposed_product_equals_the_plain_one() {
        let device = Device::flex();
        // The LM head's shape class: many output rows, read as `[out, in]`.
        let weight = Tensor::<2>::random([5003, 64], Distribution::Default, &device);
        let x = Tensor::<2>::random([1, 64], Distribution::Default, &device);
        assert_eq!(two_threads(|| split_parts(&x, 5003 * 64)), 2);
        let split = two_threads(|| matmul_transposed(x.clone(), &weight));
        assert_eq!(split.dims(), [1, 5003]);
        let plain = x.matmul(weight.transpose());
        assert!(max_diff(split, plain) < 1e-4);
    }

    #[test]
    fn no_split_for_large_products_or_autodiff() {
        let device = Device::flex();
        let rows = Tensor::<2>::zeros([64, 768], &device);
        assert_eq!(two_threads(|| split_parts(&rows, 768 * 768)), 1);
        let tracked = Tensor::<2>::zeros([1, 768], &device.clone().autodiff());
        assert_eq!(two_threads(|| split_parts(&tracked, 768 * 768)), 1);
        let small = Tensor::<2>::zeros([1, 64], &device);
        assert_eq!(two_threads(|| split_parts(&small, 64 * 64)), 1);
    }
}
