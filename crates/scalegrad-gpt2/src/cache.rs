//! The key/value cache for incremental decoding.
//!
//! Each layer keeps two buffers of `[batch, heads, capacity, head_dim]`, allocated once.
//! A decoding step writes the new position's keys and values into the next free slot
//! (an in-place `slice_assign`: the buffer is owned by the cache alone between steps)
//! and attends over a view of the filled prefix, so a step costs one position of
//! compute and memory traffic, not the whole prefix.
//!
//! Padding is tracked per slot on the host: every slot of every row is either a real
//! token or padding, and padding is masked out as a key. The position id of a row's
//! next real token is the number of real tokens the row already has, so a left-padded,
//! a right-padded and an unpadded prompt produce the same keys, values and logits for
//! their real tokens (what transformers' `generate` does for left padding).

use burn::tensor::{Bool, Tensor, TensorData};

use scalegrad_ops::KvBuffer;

use crate::attention::AttentionMask;

/// The decoding state of a batch: per-layer key/value buffers and, per slot, whether
/// it holds a real token. Create it with [`Gpt2::new_cache`](crate::Gpt2::new_cache) and
/// feed it to [`Gpt2::forward_cached`](crate::Gpt2::forward_cached).
#[derive(Debug)]
pub struct KvCache {
    pub(crate) layers: Vec<KvBuffer>,
    batch: usize,
    capacity: usize,
    len: usize,
    /// `[batch, capacity]`, row-major: whether slot `s` of row `b` is a real token.
    real: Vec<bool>,
    /// Position id of each row's next real token.
    next_position: Vec<usize>,
}

impl KvCache {
    pub(crate) fn new(n_layer: usize, batch: usize, capacity: usize) -> Self {
        Self {
            layers: (0..n_layer).map(|_| KvBuffer::default()).collect(),
            batch,
            capacity,
            len: 0,
            real: vec![false; batch * capacity],
            next_position: vec![0; batch],
        }
    }

    /// Number of rows.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Number of slots filled so far (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots the buffers hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of real (non-padding) tokens of each row so far: the position id its
    /// next real token will get.
    pub fn real_lengths(&self) -> &[usize] {
        &self.next_position
    }

    /// Slots the cache still has room for.
    pub fn remaining(&self) -> usize {
        self.capacity - self.len
    }

    pub(crate) fn capacity_for_layers(&self) -> usize {
        self.capacity
    }

    /// Registers `len` new slots per row whose realness is `real` (`[batch, len]`,
    /// row-major) and returns their position ids (`[batch, len]`, 0 at padding as in
    /// transformers) and the attention mask of the new queries over all filled slots.
    ///
    /// # Panics
    ///
    /// When `real` does not hold `batch * len` flags or the cache is full; callers check
    /// [`remaining`](Self::remaining) first.
    pub(crate) fn advance(&mut self, real: &[bool], len: usize) -> (Vec<i64>, Vec<bool>) {
        assert_eq!(real.len(), self.batch * len, "one flag per new token");
        assert!(len <= self.remaining(), "KV cache full");
        let start = self.len;
        let end = start + len;
        let mut positions = Vec::with_capacity(self.batch * len);
        for b in 0..self.batch {
            for i in 0..len {
                let is_real = real[b * len + i];
                self.real[b * self.capacity + start + i] = is_real;
                if is_real {
                    positions.push(self.next_position[b] as i64);
                    self.next_position[b] += 1;
                } else {
                    positions.push(0);
                }
            }
        }
        // masked[b, i, j]: new query i of row b must not see slot j.
        let mut masked = Vec::with_capacity(self.batch * len * end);
        for b in 0..self.batch {
            let row = &self.real[b * self.capacity..b * self.capacity + end];
            for i in 0..len {
                masked.extend(row.iter().enumerate().map(|(j, &r)| !r || j > start + i));
            }
        }
        self.len = end;
        (positions, masked)
    }

    /// The mask from [`advance`](Self::advance) as a tensor for the attention layers.
    pub(crate) fn mask_tensor(
        &self,
        masked: Vec<bool>,
        len: usize,
        device: &burn::tensor::Device,
    ) -> AttentionMask {
        let keys = self.len;
        let mask = Tensor::<4, Bool>::from_data(
            TensorData::new(masked, [self.batch, 1, len, keys]),
            device,
        );
        AttentionMask {
            mask: Some(mask),
            causal: false,
        }
    }
}
