//! Inputs and statistics shared by the BERT2BERT benchmark examples
//! (`scalegrad-bert2bert`'s `bench_b2b_beam`, `scalegrad-train`'s `bench_b2b_train`),
//! included by path so that both time the very same token stream.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// A fixed pseudo-random stream of ordinary word-piece ids (1000..30000), `[batch, len]`.
pub fn ids(batch: usize, len: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut x = seed;
    let data: Vec<i64> = (0..batch * len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1000 + ((x >> 33) % 29000) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [batch, len]), device)
}

/// The median of the timings.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
