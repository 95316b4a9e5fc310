//! Preallocated key/value buffers for incremental decoding, shared by both models.

use burn::tensor::{Int, Tensor};

/// One attention layer's keys and values during decoding, in buffers of
/// `[rows, heads, capacity, head_dim]` allocated at the first step. A step writes its
/// positions in place (an in-place `slice_assign` where the buffer is owned by the cache
/// alone between steps, on every backend) and attention reads a view of the filled
/// prefix, so a step costs its own positions, not a copy of the whole prefix as growing
/// the cache by concatenation does.
#[derive(Clone, Debug, Default)]
pub struct KvBuffer {
    keys: Option<Tensor<4>>,
    values: Option<Tensor<4>>,
}

impl KvBuffer {
    /// Writes `k` and `v` (`[rows, heads, len, head_dim]`) at positions
    /// `start..start + len` and returns views of positions `0..start + len`.
    ///
    /// # Panics
    ///
    /// When `start + len` exceeds `capacity` (callers check their lengths first).
    pub fn append(
        &mut self,
        k: Tensor<4>,
        v: Tensor<4>,
        start: usize,
        capacity: usize,
    ) -> (Tensor<4>, Tensor<4>) {
        let [rows, heads, len, head_dim] = k.dims();
        let end = start + len;
        assert!(
            end <= capacity,
            "position {end} is beyond the key/value cache's capacity of {capacity}"
        );
        let write = |buffer: Option<Tensor<4>>, new: Tensor<4>| {
            buffer
                .unwrap_or_else(|| Tensor::zeros([rows, heads, capacity, head_dim], &new.device()))
                .slice_assign([0..rows, 0..heads, start..end, 0..head_dim], new)
        };
        let keys = write(self.keys.take(), k);
        let values = write(self.values.take(), v);
        let views = (
            keys.clone().narrow(2, 0, end),
            values.clone().narrow(2, 0, end),
        );
        self.keys = Some(keys);
        self.values = Some(values);
        views
    }

    /// Row `r` takes old row `index[r]`'s first `len` positions (beam search's
    /// reselection; later positions are unused and left as they are).
    pub fn reorder(&mut self, index: &Tensor<1, Int>, len: usize) {
        for buffer in [&mut self.keys, &mut self.values] {
            if let Some(b) = buffer.take() {
                let [rows, heads, _, head_dim] = b.dims();
                let kept = b.clone().narrow(2, 0, len).select(0, index.clone());
                *buffer = Some(b.slice_assign([0..rows, 0..heads, 0..len, 0..head_dim], kept));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, TensorData};

    use super::*;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn appended_steps_read_back_as_their_concatenation_and_reorder_moves_rows() {
        let device = Device::flex();
        let mut buffer = KvBuffer::default();
        let steps: Vec<Tensor<4>> = (0..3)
            .map(|_| Tensor::random([2, 3, 1, 4], Distribution::Default, &device))
            .collect();
        let mut seen = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let (keys, vals) = buffer.append(step.clone(), step.clone() * 2.0, i, 5);
            seen.push(step.clone());
            let expected = Tensor::cat(seen.clone(), 2);
            assert_eq!(keys.dims(), [2, 3, i + 1, 4]);
            assert_eq!(values(keys), values(expected.clone()));
            assert_eq!(values(vals), values(expected * 2.0));
        }
        // Both rows now continue from old row 1.
        let index = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 1], [2]), &device);
        buffer.reorder(&index, 3);
        let next = Tensor::random([2, 3, 1, 4], Distribution::Default, &device);
        let (keys, _) = buffer.append(next.clone(), next.clone(), 3, 5);
        let row1 = Tensor::cat(seen, 2).narrow(0, 1, 1);
        let expected = Tensor::cat(vec![Tensor::cat(vec![row1.clone(), row1], 0), next], 2);
        assert_eq!(values(keys), values(expected));
    }
}
