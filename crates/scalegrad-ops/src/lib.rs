//! CPU fast paths for burn operations, shared by scalegrad's model crates, and the
//! execution policy that decides where they apply.
//!
//! Both model crates (`scalegrad-gpt2`, `scalegrad-bert2bert`) depend on burn and on
//! this crate only. What lives here is what burn 0.22's CPU backend does slowly for
//! these models' shapes, measured on the project's 2-core machine:
//!
//! - [`dropout`]: burn's `Dropout` draws its mask element by element through `rand`'s
//!   ChaCha generator (about 15 ns per element); this draws it from xoshiro256++
//!   streams seeded from the device's generator, on every core.
//! - [`linear`] and [`matmul_transposed`]: linear layers of training batches run as one
//!   `[batch * len, in]` product (burn runs `[batch, len, in]` as one single-threaded
//!   product per sequence), and the few-row products of decoding, which the backend
//!   runs on one thread, are split over the rayon pool.
//!
//! With the `x86-v4` feature burn's CPU backend uses the `gemm` crate's AVX-512 kernels
//! where the CPU has them ([`avx512_kernels`]), and the few-row rules follow what was
//! measured for those kernels.
//!
//! On GPU backends the order of operations matters to burn's kernel fusion: [`linear`]
//! takes its bias's broadcast view before the product, so that the addition (and the
//! element-wise work after it) fuses with the product, and [`configure_fusion_search`]
//! sets how burn's fusion searches (one open group of operations, which fuses backward
//! passes burn's default search leaves un-fused).
//!
//! [`NormRows`] and [`end_fused_kernel`] are the pieces of both models' forward passes
//! under [`Execution::Fused`]: LayerNorm with parameter rows made at the pass's start, and
//! the end of an output projection's fused kernel.
//!
//! [`KvBuffer`] is the preallocated key/value cache both models decode with, on any device.
//!
//! Every function takes the [`Execution`] policy the caller resolved once for its device:
//! [`Execution::Host`] takes the fast paths, [`Execution::Device`] and
//! [`Execution::Fused`] (GPU backends) plain burn operations that stay on the device. Either way it computes what the plain burn
//! operation computes; the fast paths only change how (tests compare them).

pub mod decoding;
mod dropout;
mod execution;
mod few_rows;
mod fusion_search;
mod kv_buffer;
mod norm_rows;
mod precision;

pub use dropout::{dropout, dropout_active};
pub use execution::Execution;
pub use few_rows::{FEW_ROWS, linear, matmul_transposed, split_parts};
pub use fusion_search::{
    FUSION_MAX_BLOCKS, FusionSearch, configure_fusion_search, fusion_max_blocks,
};
pub use kv_buffer::KvBuffer;
pub use norm_rows::{NormRows, end_fused_kernel, layer_norm};
pub use precision::{Compute, Precision};

/// Whether burn's CPU matrix kernels run the `gemm` crate's AVX-512 code: this build has
/// the `x86-v4` feature and the CPU has the AVX-512 subsets that gemm's x86-v4 level
/// needs (F, BW, CD, DQ, VL). Decoding picks its product shapes by it: the fastest shapes
/// of a few-row product differ between gemm's AVX2 and AVX-512 kernels (see
/// [`split_parts`]).
pub fn avx512_kernels() -> bool {
    #[cfg(all(feature = "x86-v4", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512cd")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(all(feature = "x86-v4", target_arch = "x86_64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(not(feature = "x86-v4"))]
    fn avx512_kernels_need_the_feature() {
        assert!(!super::avx512_kernels());
    }
}
