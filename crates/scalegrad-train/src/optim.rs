//! AdamW with decay groups, global-norm gradient clipping and gradient accumulation.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{
    AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate,
    ModuleOptimizer, Optimizer,
};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;
use scalegrad_ops::Execution;

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
///
/// `update` picks how each parameter's update is computed (see [`AdamWUpdate`]); both
/// give the same values up to float rounding and share one checkpoint format.
pub fn adamw(config: &OptimizerSection, update: AdamWUpdate) -> ModuleOptimizer {
    let decayed = FusedAdamW::new(config, config.weight_decay as f32, update);
    let undecayed = FusedAdamW::new(config, 0.0, update);
    let no_decay = ParamGroup::from_regex(NO_DECAY_PATTERN).expect("valid regex");
    ModuleOptimizer::from(decayed).with_group(no_decay, undecayed, None)
}

/// How [`adamw`] computes a parameter's update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdamWUpdate {
    /// burn's `AdamW`: a dozen tensor operations per parameter. Right for GPU
    /// backends, where burn-fusion merges them into one kernel.
    Tensor,
    /// One pass over the parameter, its gradient and both moments in host memory, on
    /// all cores. For CPU backends, whose tensors already live in host memory: there
    /// burn's `AdamW` reads and writes every element about fourteen times and
    /// allocates several parameter-sized temporaries (0.65 s of a 2 s distilgpt2 step
    /// at 1x128 on two cores; this pass takes 0.08 s).
    Host,
}

impl AdamWUpdate {
    /// The right choice for an execution policy: the host pass where tensors live in
    /// host memory, burn's tensor operations everywhere else.
    pub fn for_execution(execution: Execution) -> Self {
        match execution {
            Execution::Host => Self::Host,
            Execution::Device | Execution::Fused => Self::Tensor,
        }
    }
}

/// AdamW (decoupled weight decay, bias-corrected moments, epsilon added after the
/// square root) with burn's `AdamW` state, so checkpoints do not depend on
/// [`AdamWUpdate`]. Written here because burn's implementation is a chain of tensor
/// operations that a CPU backend cannot fuse.
#[derive(Clone)]
struct FusedAdamW {
    tensor_ops: AdamW,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    update: AdamWUpdate,
}

impl FusedAdamW {
    fn new(config: &OptimizerSection, weight_decay: f32, update: AdamWUpdate) -> Self {
        let (beta_1, beta_2, epsilon) =
            (config.beta1 as f32, config.beta2 as f32, config.eps as f32);
        Self {
            tensor_ops: AdamWConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .with_weight_decay(weight_decay)
                .build(),
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            update,
        }
    }
}

/// Elements per task of the host update: large enough that scheduling is noise.
const HOST_CHUNK: usize = 1 << 16;

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let f32_only = tensor.dtype() == DType::F32 && grad.dtype() == DType::F32;
        if self.update == AdamWUpdate::Tensor || !f32_only {
            return self.tensor_ops.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let n = shape.num_elements();
        // On a CPU backend a tensor owned by nobody else converts to and from host
        // data without a copy (measured on flex: the parameter, its gradient and the
        // moments all do), so these are the tensors' own buffers.
        let mut param = tensor.into_data();
        let grad = grad.into_data();
        let (time, mut m, mut v) = match state {
            Some(state) => {
                let momentum = state.momentum;
                (
                    momentum.time + 1,
                    momentum.moment_1.into_data(),
                    momentum.moment_2.into_data(),
                )
            }
            None => {
                let zeros = || TensorData::new(vec![0.0f32; n], shape.clone());
                (1, zeros(), zeros())
            }
        };
        let lr = lr as f32;
        let (b1, b2) = (self.beta_1, self.beta_2);
        let correction_1 = 1.0 - b1.powi(time as i32);
        let correction_2 = 1.0 - b2.powi(time as i32);
        let decay = 1.0 - lr * self.weight_decay;
        let epsilon = self.epsilon;
        let slice = "AdamW state is f32 like its parameter";
        param
            .as_mut_slice::<f32>()
            .expect(slice)
            .par_chunks_mut(HOST_CHUNK)
            .zip(grad.as_slice::<f32>().expect(slice).par_chunks(HOST_CHUNK))
            .zip(
                m.as_mut_slice::<f32>()
                    .expect(slice)
                    .par_chunks_mut(HOST_CHUNK),
            )
            .zip(
                v.as_mut_slice::<f32>()
                    .expect(slice)
                    .par_chunks_mut(HOST_CHUNK),
            )
            .for_each(|(((p, g), m), v)| {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let step = (*m / correction_1) / ((*v / correction_2).sqrt() + epsilon);
                    *p = *p * decay - lr * step;
                }
            });
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_data(m, &device),
            Tensor::from_data(v, &device),
        );
        (
            Tensor::from_data(param, &device),
            Some(AdamWState::new(momentum)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
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

/// Scales every float parameter's gradient by a one-element device tensor.
struct ScaleBy<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for ScaleBy<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let factor = self.factor.clone().reshape([1; D]);
            self.grads.register(param.id, grad * factor);
        }
    }
}

/// The global L2 norm of all gradients of `module` as a one-element tensor on the
/// gradients' device (no host read); `None` when there is no gradient.
pub fn global_norm_tensor<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut visitor = SquaredNorm {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut visitor);
    if visitor.parts.is_empty() {
        return None;
    }
    Some(Tensor::cat(visitor.parts, 0).sum().sqrt())
}

/// The global L2 norm of all gradients of `module` (one host read).
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    global_norm_tensor(module, grads).map_or(0.0, |norm| norm.into_scalar::<f32>() as f64)
}

/// Multiplies every gradient of `module` by `factor`.
pub fn scale_gradients<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    module.visit(&mut Scale { grads, factor });
}

/// Clips the global gradient norm to `max_norm` like PyTorch's `clip_grad_norm_`
/// (`factor = max_norm / (norm + 1e-6)` when that is below one) and returns the norm
/// before clipping, as a one-element tensor (`None` without gradients).
///
/// With [`Execution::Device`] or `Fused` the factor is computed and applied on the device,
/// `min(1, factor)` multiplied into every gradient, with no host read. With
/// [`Execution::Host`] the norm is read (free where tensors live in host memory) and
/// the gradients are scaled only when clipping is needed, which saves a pass over them
/// in the usual case.
pub fn clip_global_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
    execution: Execution,
) -> Option<Tensor<1>> {
    let norm = global_norm_tensor(module, grads)?;
    clip_to_norm(module, grads, &norm, max_norm, execution);
    Some(norm)
}

/// [`clip_global_norm`] with the gradients' global norm already computed (`norm`, from
/// [`global_norm_tensor`]), so a caller that needed it anyway does not compute it twice.
pub fn clip_to_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    norm: &Tensor<1>,
    max_norm: f64,
    execution: Execution,
) {
    match execution {
        Execution::Host => {
            let value = norm.clone().into_scalar::<f32>() as f64;
            let factor = max_norm / (value + 1e-6);
            if factor < 1.0 {
                scale_gradients(module, grads, factor);
            }
        }
        Execution::Device | Execution::Fused => {
            let factor = norm
                .clone()
                .add_scalar(1e-6)
                .recip()
                .mul_scalar(max_norm)
                .clamp_max(1.0);
            module.visit(&mut ScaleBy { grads, factor });
        }
    }
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
        for execution in [Execution::Host, Execution::Device] {
            let (model, mut grads) = model_and_grads();
            let before = global_norm(&model, &grads);
            let reported = clip_global_norm(&model, &mut grads, before / 4.0, execution)
                .expect("gradients")
                .into_scalar::<f32>() as f64;
            assert!((reported - before).abs() < 1e-6 * before, "{execution}");
            let after = host_norm(&model, &grads);
            assert!(
                (after - before / 4.0).abs() < 1e-3 * before,
                "{execution}: after={after}"
            );

            let (model, mut grads) = model_and_grads();
            clip_global_norm(&model, &mut grads, before * 10.0, execution);
            assert!(
                (host_norm(&model, &grads) - before).abs() < 1e-5 * before,
                "{execution}"
            );
        }
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
        for update in [AdamWUpdate::Tensor, AdamWUpdate::Host] {
            let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
            let device = Device::flex().autodiff();
            device.seed(5);
            let model = WithNorm {
                a: LinearConfig::new(3, 3).init(&device),
                norm: burn::nn::LayerNormConfig::new(3).init(&device),
            };
            // A zero loss gives zero gradients, so Adam's own update is zero and only the
            // decoupled decay `p -= lr * wd * p` can move a parameter.
            let x =
                Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0, 0.5], [1, 3]), &device);
            let loss = model.norm.forward(model.a.forward(x)).sum().mul_scalar(0.0);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let config = OptimizerSection {
                weight_decay: 0.5,
                ..toml::from_str("lr = 0.1").unwrap()
            };
            let before_w = values(model.a.weight.val());
            let before_b = values(model.a.bias.as_ref().unwrap().val());
            let before_gamma = values(model.norm.gamma.val());
            let mut optim = adamw(&config, update);
            let model = optim.step(0.1, model, grads);
            let after_w = values(model.a.weight.val());
            for (b, a) in before_w.iter().zip(&after_w) {
                assert!(
                    (a - b * (1.0 - 0.1 * 0.5)).abs() < 1e-6,
                    "{update:?}: weight {b} -> {a}"
                );
            }
            assert_eq!(values(model.a.bias.as_ref().unwrap().val()), before_b);
            assert_eq!(values(model.norm.gamma.val()), before_gamma);
        }
        assert!(regex_is_anchored());
    }

    /// Trains `WithNorm` for `steps` steps on a fixed regression loss and returns every
    /// parameter after each step.
    fn trajectory(update: AdamWUpdate, steps: usize) -> Vec<Vec<f32>> {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex().autodiff();
        device.seed(11);
        let mut model = WithNorm {
            a: LinearConfig::new(3, 3).init(&device),
            norm: burn::nn::LayerNormConfig::new(3).init(&device),
        };
        let config = OptimizerSection {
            weight_decay: 0.1,
            beta2: 0.99,
            eps: 1e-6,
            ..toml::from_str("lr = 0.05").unwrap()
        };
        let mut optim = adamw(&config, update);
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 0.5, 0.3, 0.9, -1.1], [2, 3]),
            &device,
        );
        let mut out = Vec::new();
        for step in 0..steps {
            let y = model.norm.forward(model.a.forward(x.clone()));
            let loss = (y - (step as f32 * 0.1)).square().sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.05, model, grads);
            let mut params = values(model.a.weight.val());
            params.extend(values(model.a.bias.as_ref().unwrap().val()));
            params.extend(values(model.norm.gamma.val()));
            params.extend(values(model.norm.beta.as_ref().unwrap().val()));
            out.push(params);
        }
        out
    }

    #[test]
    fn host_update_follows_burns_adamw_step_by_step() {
        let steps = 12;
        let tensor = trajectory(AdamWUpdate::Tensor, steps);
        let host = trajectory(AdamWUpdate::Host, steps);
        for (step, (t, h)) in tensor.iter().zip(&host).enumerate() {
            for (a, b) in t.iter().zip(h) {
                assert!((a - b).abs() < 1e-5, "step {step}: tensor {a} host {b}");
            }
        }
        // The parameters did move (the comparison is not between two copies of the start).
        assert!(
            tensor[0]
                .iter()
                .zip(&tensor[steps - 1])
                .any(|(a, b)| (a - b).abs() > 1e-2)
        );
    }

    #[test]
    fn host_and_tensor_updates_share_a_checkpoint_format() {
        // Moments written by one path are read by the other: a run may resume on
        // another backend.
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex().autodiff();
        device.seed(2);
        let model = WithNorm {
            a: LinearConfig::new(3, 3).init(&device),
            norm: burn::nn::LayerNormConfig::new(3).init(&device),
        };
        let config: OptimizerSection = toml::from_str("lr = 0.05").unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -2.0, 0.5], [1, 3]), &device);
        let grads_of = |model: &WithNorm| {
            let loss = model
                .norm
                .forward(model.a.forward(x.clone()))
                .square()
                .sum();
            GradientsParams::from_grads(loss.backward(), model)
        };
        let mut host = adamw(&config, AdamWUpdate::Host);
        let model = host.step(0.05, model.clone(), grads_of(&model));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optim.bpk");
        host.save(&path).unwrap();
        let mut tensor = adamw(&config, AdamWUpdate::Tensor).load(&path).unwrap();
        let from_host = host.step(0.05, model.clone(), grads_of(&model));
        let from_tensor = tensor.step(0.05, model.clone(), grads_of(&model));
        let a = values(from_host.a.weight.val());
        let b = values(from_tensor.a.weight.val());
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-6, "host {a} tensor {b}");
        }
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
