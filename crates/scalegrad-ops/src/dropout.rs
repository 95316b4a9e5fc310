//! Dropout with a fast mask generator.
//!
//! burn's `Dropout` draws its Bernoulli mask element by element through `rand`'s ChaCha
//! generator, about 15 ns per element on the project's CPU: for a bert-small training
//! step at batch 4 (about 57 million dropped-out activations, most of them attention
//! probabilities) that is close to a second, a tenth of the step. This module keeps
//! burn's `Dropout` module as the holder of the probability and of the training flag
//! (so `valid()`, freezing and saving behave as usual) and replaces only the mask: a
//! xoshiro256++ stream per chunk, seeded from the device's RNG (so `device.seed(..)`
//! still makes runs reproducible), filled on two threads. Each element is kept when a
//! 32-bit draw falls below `keep * 2^32` (probability exact to 2^-32) and kept values are
//! scaled by `1 / keep`, as in burn and PyTorch.

use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use crate::Compute;

/// Elements per independently seeded chunk (a chunk is one thread's work unit).
const CHUNK: usize = 1 << 20;

/// Whether `dropout` drops anything on `device`: the module is in training mode, its
/// probability is positive and the device is an autodiff one (burn's rule).
pub fn dropout_active(dropout: &Dropout, device: &Device) -> bool {
    dropout.training.is_enabled() && dropout.prob > 0.0 && device.is_autodiff()
}

/// Applies `dropout` to `x`: the identity unless [`dropout_active`]. With
/// [`Execution::Device`](crate::Execution::Device) or `Fused` it is burn's `Dropout`, whose mask the device draws from its
/// own generator (no host round trip; `device.seed(..)` makes it reproducible per
/// backend); with [`Execution::Host`](crate::Execution::Host) the mask is drawn on the host as described above.
pub fn dropout<const D: usize>(
    execution: impl Into<Compute>,
    dropout: &Dropout,
    x: Tensor<D>,
) -> Tensor<D> {
    let execution = execution.into().execution;
    let device = x.device();
    if !dropout_active(dropout, &device) {
        return x;
    }
    if !execution.is_host() {
        return dropout.forward(x);
    }
    // Two uniform draws from the device's generator make the 64-bit seed.
    let draws = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), &device)
        .try_into_vec_as::<f64>()
        .expect("two f32 draws");
    let seed = ((draws[0] * 4294967296.0) as u64) << 32 | (draws[1] * 4294967296.0) as u64;
    let shape = x.dims();
    let n: usize = shape.iter().product();
    let mask = keep_mask(n, 1.0 - dropout.prob, seed);
    x * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
}

/// `n` values, each `1 / keep` with probability `keep` and 0 otherwise.
fn keep_mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let threshold = (keep * 4294967296.0).min(4294967295.0) as u64;
    let scale = (1.0 / keep) as f32;
    let mut out = vec![0.0f32; n];
    let fill = |(index, chunk): (usize, &mut [f32])| {
        let mut rng = Xoshiro::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for pair in chunk.chunks_mut(2) {
            let bits = rng.next();
            for (slot, half) in pair.iter_mut().zip([bits & 0xFFFF_FFFF, bits >> 32]) {
                *slot = if half < threshold { scale } else { 0.0 };
            }
        }
    };
    let chunks: Vec<(usize, &mut [f32])> = out.chunks_mut(CHUNK).enumerate().collect();
    if chunks.len() < 2 {
        chunks.into_iter().for_each(fill);
    } else {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(chunks.len());
        let mut lanes: Vec<Vec<(usize, &mut [f32])>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, chunk) in chunks.into_iter().enumerate() {
            lanes[i % threads].push(chunk);
        }
        std::thread::scope(|scope| {
            for lane in lanes {
                scope.spawn(move || lane.into_iter().for_each(fill));
            }
        });
    }
    out
}

/// xoshiro256++ (Blackman and Vigna), seeded through splitmix64.
struct Xoshiro([u64; 4]);

impl Xoshiro {
    fn new(mut seed: u64) -> Self {
        let mut state = [0u64; 4];
        for s in &mut state {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *s = z ^ (z >> 31);
        }
        Self(state)
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Execution;
    use burn::nn::DropoutConfig;

    #[test]
    fn mask_keeps_the_right_share_and_scales_kept_values() {
        let n = 3 * CHUNK + 12345;
        let mask = keep_mask(n, 0.9, 7);
        let kept = mask.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        // 3.1M Bernoulli(0.9) draws: the standard error is 1.7e-4.
        assert!((kept - 0.9).abs() < 1e-3, "kept share {kept}");
        assert!(
            mask.iter()
                .all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6)
        );
        // Different seeds, different masks; the same seed, the same mask.
        assert_ne!(keep_mask(1000, 0.9, 1), keep_mask(1000, 0.9, 2));
        assert_eq!(keep_mask(1000, 0.9, 1), keep_mask(1000, 0.9, 1));
    }

    #[test]
    fn dropout_is_the_identity_without_autodiff_or_in_validation_mode() {
        use burn::module::Module;
        let layer = DropoutConfig::new(0.5).init();
        let x = Tensor::<2>::ones([4, 8], &Device::flex());
        for execution in [Execution::Host, Execution::Device, Execution::Fused] {
            let y = dropout(execution, &layer, x.clone())
                .try_into_vec_as::<f32>()
                .unwrap();
            assert!(y.iter().all(|&v| v == 1.0), "plain device: no dropout");
            let device = Device::flex().autodiff();
            let x = Tensor::<2>::ones([64, 64], &device);
            let y = dropout(execution, &layer, x.clone())
                .try_into_vec_as::<f32>()
                .unwrap();
            assert!(
                y.contains(&0.0) && y.contains(&2.0),
                "training ({execution}): zeros and 1/keep"
            );
            let y = dropout(execution, &layer.valid(), x)
                .try_into_vec_as::<f32>()
                .unwrap();
            assert!(y.iter().all(|&v| v == 1.0), "validation mode: no dropout");
        }
    }
}
