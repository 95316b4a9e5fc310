//! Linear layers and products of a few rows, on all cores.
//!
//! Two shapes of matrix product are slow on burn's CPU backend (flex, through the `gemm`
//! crate), and these functions take another route for them:
//!
//! - **Training batches.** burn multiplies `[batch, len, in]` by an `[in, out]` weight
//!   as a batched product, which the backend runs as one single-threaded product per
//!   sequence, packing the weight for each. [`linear`] multiplies the `[batch * len, in]`
//!   rows instead: one product, packed once, parallelised by the backend (distilgpt2
//!   train step at 4x128 on flex, 2 cores: 144 -> 162 tokens/s).
//! - **Decoding steps.** A step multiplies a handful of rows (one per prompt or beam)
//!   by each weight. The backend runs matrix-vector products, and products below
//!   `192^3` multiply-adds, on one thread, and one thread reads memory at about half
//!   the rate two cores reach. [`linear`] splits such a product along the input
//!   dimension, whose slices of an `[in, out]` weight are contiguous views (no copy),
//!   over the rayon pool and adds the partial products; [`matmul_transposed`] splits
//!   the rows of an `[out, in]` matrix such as an LM head's (flex, 2 cores, one row:
//!   1.5x on `768 x 2304`, 2x on `768 x 3072` and `3072 x 768`, 1.8x on the
//!   `50257 x 768` GPT-2 LM head; bert-small2bert-small beam search, 4 beams: 4.3 s per
//!   article before, 3.0 s after).
//!
//! Splits never happen on autodiff devices (training batches are never this small, and
//! the graph is best built on one thread), nor off [`Execution::Host`](crate::Execution::Host)
//! (`Device`, `Fused`): a GPU runs a few-row product as one kernel, and slicing it would
//! only launch more.

use burn::nn::Linear;
use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::Compute;

/// Multiply-adds from which the CPU backend's matrix kernels use every core themselves.
const BACKEND_PARALLEL_OPS: usize = 192 * 192 * 192;

/// Weight elements per thread below which a split is not worth a task.
const MIN_SPLIT: usize = 1 << 17;

/// Rows per product up to which a product counts as a decoding step's.
pub const FEW_ROWS: usize = 32;

/// How many slices of a product of `rows` rows with a weight of `elements` elements to
/// compute side by side on the rayon pool (1: no split).
///
/// - On autodiff devices, never (training batches are not this small, and the graph is
///   best built on one thread).
/// - Matrix-vector products and products below `192^3` multiply-adds, which the backend
///   runs on one thread: one slice per thread, unless the weight is too small to share.
/// - Larger products of at most [`FEW_ROWS`] rows with gemm's AVX-512 kernels
///   ([`avx512_kernels`](crate::avx512_kernels)): slices just below `192^3`
///   multiply-adds, so that each runs on one thread, spread over the pool. gemm's own
///   threading of such skinny products is slow with those kernels (distilgpt2 decoding at
///   batch 8 on 2 cores: 147 new tokens/s with it, 165 with the slices). With its AVX2
///   kernels the backend's threading is the faster (196 against 157), so it keeps them.
/// - Anything larger: the backend's kernels, which use every core.
pub fn split_parts(rows: usize, elements: usize, autodiff: bool) -> usize {
    parts_for(rows, elements, autodiff, crate::avx512_kernels())
}

/// [`split_parts`] with the kernel family given.
fn parts_for(rows: usize, elements: usize, autodiff: bool, avx512: bool) -> usize {
    if autodiff {
        return 1;
    }
    let threads = rayon::current_num_threads();
    let ops = rows * elements;
    if rows == 1 || ops < BACKEND_PARALLEL_OPS {
        return threads.min(elements / MIN_SPLIT).max(1);
    }
    if avx512 && rows <= FEW_ROWS {
        return ops
            .div_ceil(BACKEND_PARALLEL_OPS - 1)
            .next_multiple_of(threads);
    }
    1
}

/// `x W + b` of a linear layer for `x` of `[..., in]` (`[batch, len, in]`, or already
/// `[rows, in]`, which then goes through no reshape: under kernel fusion a reshape
/// between products and element-wise work ends the fused kernel), computed on the
/// `[rows, in]` rows. With [`Execution::Host`](crate::Execution::Host): burn's
/// `Linear::forward` (one product), or, for a product the backend would run on one
/// thread, slices of the input dimension multiplied on all of the rayon pool's threads
/// and the partial products added. With [`Execution::Device`](crate::Execution::Device)
/// or [`Execution::Fused`](crate::Execution::Fused): one product, then the bias, whose
/// `[1, out]` view is taken first (see the body).
///
/// With a half [`Precision`](crate::Precision) the product's operands are cast to it
/// (one product, no split) and the result comes back in f32 before the bias is added.
pub fn linear<const D: usize>(
    compute: impl Into<Compute>,
    layer: &Linear,
    x: Tensor<D>,
) -> Tensor<D> {
    let compute = compute.into();
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    let weight = layer.weight.val();
    let d_out = weight.dims()[1];
    let rows = dims[..D - 1].iter().product();
    dims[D - 1] = d_out;
    // A no-op for `[rows, in]` input (burn skips a reshape to the same shape).
    let x = x.reshape([rows, d_in]);
    let out = if compute.is_host() && compute.precision.half().is_none() {
        let parts = split_parts(rows, d_in * d_out, x.device().is_autodiff());
        linear_in_parts(layer, x, parts)
    } else {
        // The bias's `[1, out]` view is taken before the product, not between the product
        // and the addition as burn's `Linear` does: under kernel fusion a reshape there
        // ends the product's kernel, so the addition and the element-wise work after it
        // (activation, residual) ran as kernels of their own. Measured on lavapipe with
        // `CUBECL_DEBUG_OPTION=profile-full`: product, bias, scale and residual in 2
        // launches this way, 4.5 the other. On the CPU nothing fuses; the order is moot.
        let bias = bias_row(layer);
        plus_bias(compute.matmul(x, weight), bias)
    };
    out.reshape(dims)
}

/// `x W + b` for `x` of `[rows, in]`, the input dimension cut into `parts` slices.
fn linear_in_parts(layer: &Linear, x: Tensor<2>, parts: usize) -> Tensor<2> {
    if parts == 1 {
        return layer.forward(x);
    }
    let d_in = x.dims()[1];
    let weight = layer.weight.val();
    let bias = bias_row(layer);
    let per_part = d_in.div_ceil(parts);
    let out = (0..d_in.div_ceil(per_part))
        .into_par_iter()
        .map(|part| {
            let start = part * per_part;
            let len = per_part.min(d_in - start);
            x.clone()
                .narrow(1, start, len)
                .matmul(weight.clone().narrow(0, start, len))
        })
        .reduce_with(|a, b| a + b)
        .expect("at least one part");
    plus_bias(out, bias)
}

/// A linear layer's bias as a `[1, out]` row, if it has one; taken before the product it
/// is added to (see [`linear`]).
fn bias_row(layer: &Linear) -> Option<Tensor<2>> {
    layer.bias.as_ref().map(|b| b.val().unsqueeze::<2>())
}

/// `out + bias`, or `out` for a layer without one.
fn plus_bias(out: Tensor<2>, bias: Option<Tensor<2>>) -> Tensor<2> {
    match bias {
        Some(bias) => out + bias,
        None => out,
    }
}

/// `x weight^T` for `x` of `[rows, in]` and a row-major `weight` of `[out, in]`, as
/// `[rows, out]`. With [`Execution::Device`](crate::Execution::Device) or `Fused`, the plain product `x @ weight^T`. With
/// [`Execution::Host`](crate::Execution::Host), one `(weight x^T)^T` product (for a few rows the CPU kernels
/// stream the large row-major left operand instead of packing it), or, when the backend
/// would run it on one thread, slices of `weight`'s rows on all of the rayon pool's
/// threads, concatenated.
///
/// With a half [`Precision`](crate::Precision): the plain product, operands in the half
/// type, result in f32.
pub fn matmul_transposed(
    compute: impl Into<Compute>,
    x: Tensor<2>,
    weight: &Tensor<2>,
) -> Tensor<2> {
    let compute = compute.into();
    if !compute.is_host() || compute.precision.half().is_some() {
        return compute.matmul(x, weight.clone().transpose());
    }
    let [out, d_in] = weight.dims();
    let parts = split_parts(x.dims()[0], out * d_in, x.device().is_autodiff());
    matmul_transposed_in_parts(x, weight, parts)
}

/// [`matmul_transposed`] with `weight`'s rows cut into `parts` slices.
fn matmul_transposed_in_parts(x: Tensor<2>, weight: &Tensor<2>, parts: usize) -> Tensor<2> {
    let out = weight.dims()[0];
    if parts == 1 {
        return weight.clone().matmul(x.transpose()).transpose();
    }
    let per_part = out.div_ceil(parts);
    let slices: Vec<Tensor<2>> = (0..out.div_ceil(per_part))
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
    use crate::Execution;

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
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

    fn layer_with_bias(d_in: usize, d_out: usize, device: &Device) -> Linear {
        let layer = LinearConfig::new(d_in, d_out).init(device);
        Linear {
            bias: layer
                .bias
                .map(|b| b.map(|t| t.random_like(Distribution::Default))),
            ..layer
        }
    }

    #[test]
    fn split_linear_equals_the_plain_layer() {
        let device = Device::flex();
        let layer = layer_with_bias(768, 512, &device);
        for (batch, len) in [(1, 1), (1, 3), (4, 1), (6, 1)] {
            let rows = batch * len;
            assert_eq!(two_threads(|| split_parts(rows, 768 * 512, false)), 2);
            let x = Tensor::<3>::random([batch, len, 768], Distribution::Default, &device);
            let split = two_threads(|| linear(Execution::Host, &layer, x.clone()));
            let device_route = linear(Execution::Device, &layer, x.clone());
            let x_rows = x.clone().reshape([rows, 768]);
            let plain = layer.forward(x);
            assert!(
                max_diff(device_route, plain.clone()) < 1e-4,
                "{batch}x{len}"
            );
            assert!(max_diff(split, plain.clone()) < 1e-4, "{batch}x{len}");
            // The same rows given as `[rows, in]`: taken as they are, same values.
            let plain_rows = plain.reshape([rows, 512]);
            for execution in [Execution::Host, Execution::Device, Execution::Fused] {
                let out = two_threads(|| linear(execution, &layer, x_rows.clone()));
                assert_eq!(out.dims(), [rows, 512], "{execution}");
                assert!(
                    max_diff(out, plain_rows.clone()) < 1e-4,
                    "{execution} {batch}x{len}"
                );
            }
        }
    }

    #[test]
    fn folded_linear_equals_the_batched_layer_with_gradients() {
        // Training shapes: no split, the batch folded into the rows; values and the
        // gradients of input, weight and bias are those of burn's batched layer.
        let device = Device::flex().autodiff();
        // burn's initialiser (its tensors are tracked; the bias values do not matter).
        let layer = LinearConfig::new(64, 48).init(&device);
        let x = Tensor::<3>::random([3, 40, 64], Distribution::Default, &device).require_grad();
        assert_eq!(split_parts(3 * 40, 64 * 48, true), 1);
        let weights = Tensor::<3>::random([3, 40, 48], Distribution::Default, &device);
        // Both routes: the host's folded product, and the device's product with the bias
        // added after it (not burn's linear op).
        for execution in [Execution::Host, Execution::Device, Execution::Fused] {
            let folded = linear(execution, &layer, x.clone());
            let plain = layer.forward(x.clone());
            assert_eq!(folded.dims(), [3, 40, 48]);
            assert!(
                max_diff(folded.clone(), plain.clone()) < 1e-5,
                "{execution}"
            );
            let grads_folded = (folded * weights.clone()).sum().backward();
            let grads_plain = (plain * weights.clone()).sum().backward();
            let grad = |g: &burn::tensor::Gradients, t: &Tensor<2>| t.grad(g).expect("a gradient");
            let weight = layer.weight.val();
            let bias = layer.bias.as_ref().expect("a bias").val();
            let gradient = "a gradient";
            for (name, diff, tolerance) in [
                (
                    "weight",
                    max_diff(grad(&grads_folded, &weight), grad(&grads_plain, &weight)),
                    1e-4,
                ),
                (
                    "bias",
                    max_diff(
                        bias.grad(&grads_folded).expect(gradient),
                        bias.grad(&grads_plain).expect(gradient),
                    ),
                    1e-4,
                ),
                (
                    "input",
                    max_diff(
                        x.grad(&grads_folded).expect(gradient),
                        x.grad(&grads_plain).expect(gradient),
                    ),
                    1e-5,
                ),
            ] {
                assert!(diff < tolerance, "{execution}, {name} gradient: {diff}");
            }
        }
    }

    #[test]
    fn split_transposed_product_equals_the_plain_one() {
        let device = Device::flex();
        // The LM head's shape class: many output rows, read as `[out, in]`.
        let weight = Tensor::<2>::random([5003, 64], Distribution::Default, &device);
        for rows in [1, 3] {
            let x = Tensor::<2>::random([rows, 64], Distribution::Default, &device);
            assert_eq!(two_threads(|| split_parts(rows, 5003 * 64, false)), 2);
            let split = two_threads(|| matmul_transposed(Execution::Host, x.clone(), &weight));
            assert_eq!(split.dims(), [rows, 5003]);
            let device_route = matmul_transposed(Execution::Device, x.clone(), &weight);
            let plain = x.matmul(weight.clone().transpose());
            assert!(max_diff(device_route, plain.clone()) < 1e-4, "{rows} rows");
            assert!(max_diff(split, plain) < 1e-4, "{rows} rows");
        }
    }

    #[test]
    fn no_split_for_large_products_autodiff_or_small_weights() {
        two_threads(|| {
            assert_eq!(split_parts(64, 768 * 768, false), 1, "backend-parallel");
            assert_eq!(split_parts(1, 768 * 768, true), 1, "autodiff");
            assert_eq!(split_parts(1, 64 * 64, false), 1, "too small to share");
            assert_eq!(split_parts(1, 768 * 768, false), 2);
        });
    }

    #[test]
    fn few_rows_of_large_products_split_below_the_backend_threshold_with_avx512() {
        two_threads(|| {
            // 8 x 768 x 2304 = 2.0 x 192^3: four slices, two per thread.
            assert_eq!(parts_for(8, 768 * 2304, false, true), 4);
            // A GPT-2 LM head for 8 rows: an even number of slices below 192^3.
            let parts = parts_for(8, 50257 * 768, false, true);
            assert_eq!(parts % 2, 0);
            assert!(8 * 50257 * 768 / parts < BACKEND_PARALLEL_OPS, "{parts}");
            // More rows, AVX2 kernels, or autodiff: the backend's own threading.
            assert_eq!(parts_for(FEW_ROWS + 1, 768 * 2304, false, true), 1);
            assert_eq!(parts_for(8, 768 * 2304, false, false), 1);
            assert_eq!(parts_for(8, 768 * 2304, true, true), 1);
        });
        // The slices compute the plain product, whatever their number.
        let device = Device::flex();
        let layer = layer_with_bias(768, 2304, &device);
        let x = Tensor::<2>::random([8, 768], Distribution::Default, &device);
        for parts in [4, 7, 44] {
            let split = two_threads(|| linear_in_parts(&layer, x.clone(), parts));
            assert!(max_diff(split, layer.forward(x.clone())) < 1e-4, "{parts}");
        }
        // GPT-2's initialisation scale, so the tolerance is one of rounding, not of size.
        let weight = Tensor::<2>::random([2304, 768], Distribution::Normal(0.0, 0.02), &device);
        for parts in [4, 44] {
            let split = two_threads(|| matmul_transposed_in_parts(x.clone(), &weight, parts));
            assert_eq!(split.dims(), [8, 2304]);
            assert!(max_diff(split, x.clone().matmul(weight.clone().transpose())) < 1e-4);
        }
    }
}
