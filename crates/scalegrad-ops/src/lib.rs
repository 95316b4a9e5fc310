//! CPU fast paths for burn operations, shared by scalegrad's model crates.
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
//! Every function computes what the plain burn operation computes, on any device; the
//! fast paths only change how (tests compare them).

mod dropout;
mod few_rows;

pub use dropout::dropout;
pub use few_rows::{linear, matmul_transposed, split_parts};
