//! AdamW with decay groups, global-norm gradient clipping and gradient accumulation.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::config::OptimizerSection;

/// Parameter paths that get no weight decay: biases and LayerNorm scales and shifts
/// (burn names them `bias`, `gamma` and `beta`), as Hugging Face's example scripts do
/// with `no_decay = ["bias", "LayerNorm.weight"]`.
pub const NO_DECAY_PATTERN: &str = r"(^|\.)(bias|gamma|beta)$";

/// AdamW as configured, with `weight_decay` on weight matrices and embeddings only.
///
/// burn's optimiser takes the learning rate at each step, so the schedule lives in the
/// training loop; gradient clipping is done there too, over the global norm (burn's own
/// `GradientClipping::Norm` clips each tensor separately, which is not what the paper's
/// PyTorch code does with `clip_grad_norm_`).
pub fn adamw(config: &OptimizerSection) -> ModuleOptimizer {
    let base = AdamWConfig::new()
        .with_beta_1(config.beta1 as f32)
        .with_beta_2(config.beta2 as f32)
        .with_epsilon(config.eps as f32);
    let decayed = base.clone().with_weight_decay(config.weight_decay as f32);
    let undecayed = base.with_weight_decay(0.0);
    let no_decay = ParamGroup::from_regex(NO_DECAY_PATTERN).expect("valid regex");
    ModuleOptimizer::from(decayed.build()).with_group(no_decay, undecayed.build(), None)
}

/// Collects the squared L2 norm of every float parameter's gradient.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.parts.push(grad.square().sum());
        }
    }
}

/// Scales every float parameter's gradient by a factor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// The global L2 norm of all gradients of `module` (one host read).
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.parts.is_empty() {
        return 0.0;
    }
    let total = Tensor::cat(visitor.parts, 0).sum();
    let value: f64 = total.into_scalar::<f32>() as f64;
    value.sqrt()
}

/// Multiplies every gradient of `module` by `factor`.
pub fn scale_gradients<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    module.visit(&mut Scale { grads, factor });
}

/// Clips the global gradient norm to `max_norm` like PyTorch's `clip_grad_norm_`
/// (`factor = max_norm / (norm + 1e-6)` when that is below one) and returns the norm
/// before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_norm(module, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        scale_gradients(module, grads, factor);
    }
    norm
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    use super::*;

    #[derive(Module, Debug)]
    struct Two {
        a: Linear,
        b: Linear,
    }

    /// The flex device's generator is shared by the whole process: tests that seed it
    /// and then initialise parameters take turns.
    static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn model_and_grads() -> (Two, GradientsParams) {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex().autodiff();
        device.seed(3);
        let model = Two {
            a: LinearConfig::new(3, 2).init(&device),
            b: LinearConfig::new(2, 2).init(&device),
        };
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0, 0.5], [1, 3]), &device);
        let loss = model.b.forward(model.a.forward(x)).square().sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (model, grads)
    }

    fn host_norm(model: &Two, grads: &GradientsParams) -> f64 {
        let mut sum = 0.0f64;
        for id in [model.a.weight.id, model.b.weight.id] {
            let g = grads
                .get::<2>(id)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            sum += g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>();
        }
        for bias in [&model.a.bias, &model.b.bias] {
            let g = grads
                .get::<1>(bias.as_ref().unwrap().id)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            sum += g.iter().map(|x| (*x as f64).powi(2)).sum::<f64>();
        }
        sum.sqrt()
    }

    #[test]
    fn global_norm_covers_every_parameter() {
        let (model, grads) = model_and_grads();
        let ours = global_norm(&model, &grads);
        let host = host_norm(&model, &grads);
        assert!(ours > 0.0);
        assert!(
            (ours - host).abs() < 1e-4 * host,
            "ours={ours}, host={host}"
        );
    }

    #[test]
    fn clipping_scales_to_the_maximum_norm_and_leaves_small_gradients() {
        let (model, mut grads) = model_and_grads();
        let before = global_norm(&model, &grads);
        let reported = clip_global_norm(&model, &mut grads, before / 4.0);
        assert!((reported - before).abs() < 1e-9);
        let after = host_norm(&model, &grads);
        assert!(
            (after - before / 4.0).abs() < 1e-3 * before,
            "after={after}"
        );

        let (model, mut grads) = model_and_grads();
        clip_global_norm(&model, &mut grads, before * 10.0);
        assert!((host_norm(&model, &grads) - before).abs() < 1e-5 * before);
    }

    #[derive(Module, Debug)]
    struct WithNorm {
        a: Linear,
        norm: burn::nn::LayerNorm,
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn weight_decay_reaches_weights_but_not_biases_or_layer_norms() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex().autodiff();
        device.seed(5);
        let model = WithNorm {
            a: LinearConfig::new(3, 3).init(&device),
            norm: burn::nn::LayerNormConfig::new(3).init(&device),
        };
        // A zero loss gives zero gradients, so Adam's own update is zero and only the
        // decoupled decay `p -= lr * wd * p` can move a parameter.
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0, 0.5], [1, 3]), &device);
        let loss = model.norm.forward(model.a.forward(x)).sum().mul_scalar(0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let config = OptimizerSection {
            weight_decay: 0.5,
            ..toml::from_str("lr = 0.1").unwrap()
        };
        let before_w = values(model.a.weight.val());
        let before_b = values(model.a.bias.as_ref().unwrap().val());
        let before_gamma = values(model.norm.gamma.val());
        let mut optim = adamw(&config);
        let model = optim.step(0.1, model, grads);
        let after_w = values(model.a.weight.val());
        for (b, a) in before_w.iter().zip(&after_w) {
            assert!(
                (a - b * (1.0 - 0.1 * 0.5)).abs() < 1e-6,
                "weight {b} -> {a}"
            );
        }
        assert_eq!(values(model.a.bias.as_ref().unwrap().val()), before_b);
        assert_eq!(values(model.norm.gamma.val()), before_gamma);
        assert!(regex_is_anchored());
    }

    /// The pattern matches whole path segments only (`ln_1.beta`, not `alphabeta`).
    fn regex_is_anchored() -> bool {
        let re = regex::Regex::new(NO_DECAY_PATTERN).unwrap();
        re.is_match("blocks.0.ln_1.beta")
            && re.is_match("bias")
            && !re.is_match("blocks.0.alphabeta")
            && !re.is_match("blocks.0.bias_proj.weight")
    }
}
