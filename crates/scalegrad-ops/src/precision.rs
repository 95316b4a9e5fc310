//! Mixed precision: the floating-point type of the products.

use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::Execution;

/// The type matrix products compute in. Parameters, optimiser state, activations
/// between products, softmax, LayerNorm, the losses and the gradient norm stay f32;
/// with a half type the two operands of each product (linear layers, attention scores
/// and values, the LM head) are cast to it and the result cast back, which is what
/// PyTorch's autocast does for `matmul`/`linear` (on GPUs with tensor cores the half
/// product is the fast one). Gradients flow back through the casts, so weight gradients
/// are computed in the half type and accumulated into f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Products in bfloat16 (f32's range, 8 bits of mantissa): no loss scaling needed.
    Bf16,
    /// Products in IEEE half (5 exponent bits): training needs dynamic loss scaling.
    F16,
}

impl Precision {
    /// The half type, or `None` for f32.
    pub fn half(self) -> Option<FloatDType> {
        match self {
            Self::F32 => None,
            Self::Bf16 => Some(FloatDType::BF16),
            Self::F16 => Some(FloatDType::F16),
        }
    }

    /// `f32`, `bf16` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// Whether training needs dynamic loss scaling (f16's narrow exponent range lets
    /// small gradients underflow to zero).
    pub fn needs_loss_scaling(self) -> bool {
        self == Self::F16
    }

    /// Checks that `device` computes in this precision; the error names the type (the
    /// caller adds the backend).
    pub fn check_device(self, device: &Device) -> Result<(), String> {
        match self.half() {
            Some(dtype) if !device.supports_dtype(dtype) => {
                Err(format!("{device:?} has no {} arithmetic", self.name()))
            }
            _ => Ok(()),
        }
    }

    /// [`check_device`](Self::check_device) with the whole message a user sees: the
    /// backend (as the user named it), the precision and the fix.
    pub fn check_backend(self, device: &Device, backend: &str) -> Result<(), String> {
        self.check_device(device).map_err(|why| {
            let other = if self == Self::Bf16 {
                " (or f16 where the device has it)"
            } else {
                ""
            };
            format!("the {backend} backend cannot run {self}: {why}; use --precision f32{other}")
        })
    }

    /// `a @ b` with both operands in the half type and the result in f32 (f32: the
    /// plain product).
    pub fn matmul<const D: usize>(self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        match self.half() {
            None => a.matmul(b),
            Some(half) => a.cast(half).matmul(b.cast(half)).cast(FloatDType::F32),
        }
    }
}

/// How a model computes: where ([`Execution`]) and in which type the products run
/// ([`Precision`]). What the models hand to this crate's operations; an [`Execution`]
/// alone converts into one with f32 products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Compute {
    /// Host fast paths or device operations.
    pub execution: Execution,
    /// The type of the products.
    pub precision: Precision,
}

impl Compute {
    /// Whether the CPU fast paths are taken.
    pub fn is_host(self) -> bool {
        self.execution.is_host()
    }

    /// `a @ b` in this precision ([`Precision::matmul`]).
    pub fn matmul<const D: usize>(self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        self.precision.matmul(a, b)
    }

    /// Attention of queries on keys and values (`mask`: `true` hides a key; `bias` is
    /// added to the scores), the result in f32.
    ///
    /// In f32, and in a half type on a host backend without autodiff, it is burn's
    /// fused attention (flex computes a half attention entirely in f32). Elsewhere a
    /// half type takes [`explicit_attention`]: burn's autodiff and CubeCL backends fall
    /// back to separate kernels in the input's type (whenever a scale or a bias is
    /// given, and always when training), which would run the softmax, its maximum and
    /// its sum over hundreds of keys in the half type.
    pub fn attention(
        self,
        [q, k, v]: [Tensor<4>; 3],
        mask: Option<Tensor<4, Bool>>,
        bias: Option<Tensor<4>>,
        options: AttentionModuleOptions,
    ) -> Tensor<4> {
        match self.precision.half() {
            None => attention(q, k, v, mask, bias, options),
            Some(_) if !self.is_host() || q.device().is_autodiff() => {
                explicit_attention(self.precision, [q, k, v], mask, bias, options)
            }
            Some(half) => attention(
                q.cast(half),
                k.cast(half),
                v.cast(half),
                mask,
                bias.map(|b| b.cast(half)),
                options,
            )
            .cast(FloatDType::F32),
        }
    }
}

/// Attention as separate operations: the products of queries with keys and of the
/// probabilities with values in `precision`, the scores, the masks and the softmax in
/// f32 (what transformers' eager attention does under autocast). `mask` (`true` hides
/// a key) broadcasts to `[batch, heads, queries, keys]`; causal masking aligns queries
/// with the last keys, as burn's attention does. Hidden scores are set to `f32::MIN`
/// rather than minus infinity (no NaN), and a query with every key hidden gets zeros,
/// as from burn's attention (flex's kernel and the fallback).
fn explicit_attention(
    precision: Precision,
    [q, k, v]: [Tensor<4>; 3],
    mask: Option<Tensor<4, Bool>>,
    bias: Option<Tensor<4>>,
    options: AttentionModuleOptions,
) -> Tensor<4> {
    let [batch, heads, queries, dim] = q.dims();
    let keys = k.dims()[2];
    let scale = options.scale.unwrap_or(1.0 / (dim as f64).sqrt());
    let mut scores = precision.matmul(q, k.swap_dims(2, 3)) * scale;
    if let Some(cap) = options.softcap {
        scores = (scores / cap).tanh() * cap;
    }
    if let Some(bias) = bias {
        scores = scores + bias;
    }
    let device = scores.device();
    // Causal masking alone leaves every query a key when there are at least as many keys
    // as queries (self-attention, a KV cache); only then is the zeroing below skipped.
    let may_hide_a_row = mask.is_some() || (options.is_causal && keys < queries);
    let mut hidden = mask.map(|m| m.expand([batch, heads, queries, keys]));
    if options.is_causal {
        // Query i sits at key position keys - queries + i and sees keys up to it.
        let causal =
            Tensor::<2, Bool>::tril_mask([queries, keys], keys as i64 - queries as i64, &device)
                .reshape([1, 1, queries, keys])
                .expand([batch, heads, queries, keys]);
        hidden = Some(match hidden {
            Some(m) => m.bool_or(causal),
            None => causal,
        });
    }
    let Some(hidden) = hidden else {
        return precision.matmul(softmax(scores, 3), v);
    };
    let probs = softmax(scores.mask_fill(hidden.clone(), f32::MIN), 3);
    if !may_hide_a_row {
        return precision.matmul(probs, v);
    }
    // A query that sees no key gets zeros, as from burn's attention.
    let sees_a_key = hidden.bool_not().any_dim(3).float();
    precision.matmul(probs * sees_a_key, v)
}

impl From<Execution> for Compute {
    fn from(execution: Execution) -> Self {
        Self {
            execution,
            precision: Precision::F32,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(format!(
                "unknown precision {other:?}; expected \"f32\", \"bf16\" or \"f16\""
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, Distribution, Int, TensorData};

    use super::*;

    #[test]
    fn half_products_round_like_the_type_and_come_back_in_f32() {
        let device = Device::flex();
        let a = Tensor::<2>::random([8, 64], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<2>::random([64, 16], Distribution::Normal(0.0, 1.0), &device);
        let exact = Precision::F32.matmul(a.clone(), b.clone());
        for (precision, tolerance) in [(Precision::Bf16, 0.15), (Precision::F16, 0.02)] {
            let got = precision.matmul(a.clone(), b.clone());
            assert_eq!(got.dtype(), DType::F32);
            let err: f32 = (got.clone() - exact.clone()).abs().max().into_scalar();
            assert!(err > 0.0, "{precision}: the operands were not rounded");
            assert!(err < tolerance, "{precision}: error {err}");
        }
    }

    #[test]
    fn explicit_attention_in_f32_equals_burns_attention() {
        // Fewer queries than keys (causal alignment at the end), a key mask, a bias.
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        let [q, k, v] = [[2, 3, 5, 8], [2, 3, 7, 8], [2, 3, 7, 8]]
            .map(|shape| Tensor::<4>::random(shape, normal, &device));
        let bias = Tensor::<4>::random([2, 1, 5, 7], normal, &device);
        // Keys 0, 1, 2 and 5 of the first sequence and key 3 of the second are hidden;
        // with causality the first sequence's first query (keys 0 to 2) sees none.
        let hide = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        let mask = Tensor::<1, Int>::from_data(TensorData::from(hide), &device)
            .reshape([2, 1, 1, 7])
            .equal_elem(1);
        for is_causal in [false, true] {
            let options = AttentionModuleOptions {
                scale: Some(0.3),
                softcap: None,
                is_causal,
            };
            let qkv = [q.clone(), k.clone(), v.clone()];
            let want = attention(
                q.clone(),
                k.clone(),
                v.clone(),
                Some(mask.clone().expand([2, 3, 5, 7])),
                Some(bias.clone().expand([2, 3, 5, 7])),
                options,
            );
            let got = explicit_attention(
                Precision::F32,
                qkv,
                Some(mask.clone()),
                Some(bias.clone()),
                options,
            );
            let err: f32 = (got - want).abs().max().into_scalar();
            assert!(err < 1e-5, "causal {is_causal}: {err}");
        }
    }

    #[test]
    fn half_attention_takes_the_f32_softmax_route_when_training_and_on_devices() {
        // Which route runs: the explicit one (f32 softmax) on an autodiff device and with
        // device execution, burn's fused kernel on a host device without autodiff (flex
        // computes it in f32). Each is compared bit for bit with the route it must be,
        // and with f32 within the operands' rounding.
        let options = AttentionModuleOptions {
            scale: Some(0.125),
            softcap: None,
            is_causal: true,
        };
        let normal = Distribution::Normal(0.0, 1.0);
        for device in [Device::flex().autodiff(), Device::flex()] {
            let [q, k, v] = [[1, 2, 6, 8], [1, 2, 9, 8], [1, 2, 9, 8]]
                .map(|shape| Tensor::<4>::random(shape, normal, &device));
            let qkv = || [q.clone(), k.clone(), v.clone()];
            let exact = Compute::from(Execution::Device).attention(qkv(), None, None, options);
            for precision in [Precision::Bf16, Precision::F16] {
                let half = precision.half().unwrap();
                let explicit = explicit_attention(precision, qkv(), None, None, options);
                let fused = attention(
                    q.clone().cast(half),
                    k.clone().cast(half),
                    v.clone().cast(half),
                    None,
                    None,
                    options,
                )
                .cast(FloatDType::F32);
                for execution in [Execution::Host, Execution::Device, Execution::Fused] {
                    let compute = Compute {
                        execution,
                        precision,
                    };
                    let got = compute.attention(qkv(), None, None, options);
                    assert_eq!(got.dtype(), DType::F32);
                    let route = if execution.is_host() && !device.is_autodiff() {
                        fused.clone()
                    } else {
                        explicit.clone()
                    };
                    let what = format!("{precision} {execution} {device:?}");
                    let same: f32 = (got.clone() - route).abs().max().into_scalar();
                    assert_eq!(same, 0.0, "{what}: not the expected route");
                    let err: f32 = (got - exact.clone()).abs().max().into_scalar();
                    assert!(err > 0.0 && err < 0.05, "{what}: {err} from f32");
                }
            }
        }
    }

    #[test]
    fn names_parse_back() {
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert!("fp16".parse::<Precision>().unwrap_err().contains("\"f16\""));
    }

    #[test]
    fn the_cpu_backend_computes_in_both_half_types() {
        let device = Device::flex();
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(p.check_device(&device), Ok(()));
        }
    }
}
