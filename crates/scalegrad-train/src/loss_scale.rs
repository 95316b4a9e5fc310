//! Dynamic loss scaling for f16 training, with the rules of PyTorch's `GradScaler`.
//!
//! f16 has five exponent bits: gradients below about 6e-8 flush to zero in its
//! products. The loss is multiplied by a large scale before the backward pass so that
//! the gradients land in f16's range, and the gradients are divided by it (in f32)
//! before clipping and the optimiser step. A step whose gradients overflowed (an
//! infinite or NaN norm) is skipped and the scale halved; after `GROWTH_INTERVAL`
//! clean steps in a row the scale doubles.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::optim::{global_norm_tensor, scale_gradients};

/// The scaler's state; a checkpoint keeps it so that a resumed run scales as an
/// uninterrupted one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    /// The current scale.
    pub scale: f64,
    /// Clean steps since the scale last changed.
    pub clean_steps: u64,
    /// Steps skipped so far because their gradients overflowed.
    pub skipped_steps: u64,
}

impl LossScaler {
    /// PyTorch's `init_scale`.
    pub const INITIAL_SCALE: f64 = 65536.0;
    /// PyTorch's `growth_interval`.
    pub const GROWTH_INTERVAL: u64 = 2000;
    /// PyTorch's `backoff_factor`.
    pub const BACKOFF: f64 = 0.5;
    /// PyTorch's `growth_factor`.
    pub const GROWTH: f64 = 2.0;

    /// A scaler at the initial scale.
    pub fn new() -> Self {
        Self {
            scale: Self::INITIAL_SCALE,
            clean_steps: 0,
            skipped_steps: 0,
        }
    }

    /// Records whether a step's unscaled gradients were all finite; returns whether the
    /// optimiser step is to be taken. An overflow halves the scale and skips the step;
    /// the `GROWTH_INTERVAL`-th clean step in a row doubles the scale.
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            self.scale *= Self::BACKOFF;
            self.clean_steps = 0;
            self.skipped_steps += 1;
            return false;
        }
        self.clean_steps += 1;
        if self.clean_steps == Self::GROWTH_INTERVAL {
            self.scale *= Self::GROWTH;
            self.clean_steps = 0;
        }
        true
    }

    /// The step's side of `GradScaler`: divides `grads` by the scale (in f32), takes
    /// their global norm and [`update`](Self::update)s with whether it is finite. Returns
    /// whether to take the optimiser step and the unscaled norm, which clipping and the
    /// log use (infinite or NaN when the step is skipped). One host read per step, as
    /// PyTorch's found-inf check.
    pub fn unscale<M: Module>(
        &mut self,
        module: &M,
        grads: &mut GradientsParams,
    ) -> (bool, Option<Tensor<1>>) {
        scale_gradients(module, grads, 1.0 / self.scale);
        let norm = global_norm_tensor(module, grads);
        let finite = norm
            .as_ref()
            .is_none_or(|n| n.clone().into_scalar::<f32>().is_finite());
        (self.update(finite), norm)
    }
}

impl Default for LossScaler {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_at_two_to_the_sixteenth() {
        assert_eq!(LossScaler::new().scale, 65536.0);
    }

    #[test]
    fn an_overflow_halves_the_scale_skips_the_step_and_restarts_the_count() {
        let mut s = LossScaler::new();
        for _ in 0..10 {
            assert!(s.update(true));
        }
        assert!(!s.update(false));
        assert_eq!((s.scale, s.clean_steps, s.skipped_steps), (32768.0, 0, 1));
        assert!(!s.update(false));
        assert_eq!((s.scale, s.skipped_steps), (16384.0, 2));
    }

    #[test]
    fn the_scale_doubles_after_2000_clean_steps_in_a_row_only() {
        let mut s = LossScaler::new();
        for _ in 0..1999 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale, 65536.0);
        assert!(s.update(true));
        assert_eq!((s.scale, s.clean_steps), (131072.0, 0));
        // An overflow in the middle of the next interval restarts it.
        for _ in 0..1500 {
            s.update(true);
        }
        s.update(false);
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!(
            s.scale, 65536.0,
            "1999 clean steps since the overflow: no growth"
        );
        s.update(true);
        assert_eq!(s.scale, 131072.0);
    }

    #[test]
    fn unscaling_divides_by_the_scale_before_the_norm_and_skips_an_overflow() {
        use burn::nn::{Linear, LinearConfig};
        use burn::tensor::{Device, Distribution};

        let device = Device::flex().autodiff();
        let layer: Linear = LinearConfig::new(4, 3).init(&device);
        let grads = |x: Tensor<2>, factor: f64| {
            let loss = layer.forward(x).sum() * factor;
            GradientsParams::from_grads(loss.backward(), &layer)
        };
        let x = Tensor::<2>::random([5, 4], Distribution::Normal(0.0, 1.0), &device);
        let plain = global_norm_tensor(&layer, &grads(x.clone(), 1.0))
            .unwrap()
            .into_scalar::<f32>();

        let mut scaler = LossScaler::new();
        let mut scaled = grads(x.clone(), scaler.scale);
        let (take, norm) = scaler.unscale(&layer, &mut scaled);
        let norm = norm.unwrap().into_scalar::<f32>();
        assert!(take);
        assert!((norm - plain).abs() <= 1e-5 * plain, "{norm} vs {plain}");
        assert_eq!((scaler.scale, scaler.clean_steps), (65536.0, 1));

        // An infinite input gives infinite (or NaN) gradients: skip, halve, report it.
        let bad = x
            .clone()
            .slice_assign([0..1, 0..1], Tensor::full([1, 1], f32::INFINITY, &device));
        let mut overflowed = grads(bad, scaler.scale);
        let (take, norm) = scaler.unscale(&layer, &mut overflowed);
        assert!(!take);
        assert!(!norm.unwrap().into_scalar::<f32>().is_finite());
        assert_eq!((scaler.scale, scaler.skipped_steps), (32768.0, 1));
    }

    #[test]
    fn it_survives_a_checkpoint_round_trip() {
        let mut s = LossScaler::new();
        s.update(false);
        s.update(true);
        let back: LossScaler = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
