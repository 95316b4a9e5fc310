//! Mixed precision: the floating-point type of the products.

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

    /// burn's fused attention with queries, keys, values (and an additive `bias`) in
    /// this precision, the result in f32 (the kernel's softmax accumulates in f32).
    pub fn attention(
        self,
        [q, k, v]: [Tensor<4>; 3],
        mask: Option<Tensor<4, Bool>>,
        bias: Option<Tensor<4>>,
        options: AttentionModuleOptions,
    ) -> Tensor<4> {
        match self.precision.half() {
            None => attention(q, k, v, mask, bias, options),
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
    use burn::tensor::{DType, Distribution};

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
