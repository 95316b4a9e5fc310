//! Choosing the execution backend at run time.
//!
//! Each backend is a cargo feature of this crate; `--backend NAME` picks one of those
//! compiled in. Asking for one that is not compiled in is an error that says how to
//! build it, never a silent fallback to the CPU.

use std::sync::OnceLock;

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;
use scalegrad_ops::{Execution, FusionSearch, Precision};

/// Where this process's fusion search settings came from (see [`fusion_search`]).
static FUSION_SEARCH: OnceLock<FusionSearch> = OnceLock::new();

/// Sets burn's kernel-fusion search for the process (scalegrad's one open group of
/// operations, unless a `burn.toml` of the user's holds other settings; see
/// `scalegrad_ops::configure_fusion_search`) the first time it is called, and says where
/// the settings came from. `main` calls it before anything runs on a device.
pub fn fusion_search() -> &'static FusionSearch {
    FUSION_SEARCH.get_or_init(scalegrad_ops::configure_fusion_search)
}

/// The execution backends the CLI knows about.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's pure-Rust CPU backend (default).
    #[default]
    Flex,
    /// burn's older ndarray CPU backend (deprecated upstream).
    Ndarray,
    /// wgpu: Vulkan, Metal or DX12 GPUs (or Mesa's software Vulkan).
    Wgpu,
    /// CubeCL CUDA (needs network at build time to fetch LLVM).
    Cuda,
    /// LibTorch through tch (see `cargo xtask setup libtorch`).
    Tch,
}

impl Backend {
    /// The backend's name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Tch => "tch",
        }
    }

    /// How scalegrad computes on this backend's device: the CPU fast paths where
    /// tensors live in host memory (`flex`, `ndarray`), device operations elsewhere,
    /// arranged for kernel fusion on the CubeCL backends (`wgpu`, `cuda`, which this
    /// binary builds with burn's fusion).
    /// The one place a backend is classified; everything downstream receives the value.
    pub fn execution(self) -> Execution {
        match self {
            Self::Flex | Self::Ndarray => Execution::Host,
            Self::Wgpu | Self::Cuda => Execution::Fused,
            Self::Tch => Execution::Device,
        }
    }

    /// The backends compiled into this binary.
    pub fn compiled() -> Vec<Backend> {
        Self::value_variants()
            .iter()
            .copied()
            .filter(|b| b.is_compiled())
            .collect()
    }

    /// Whether this binary was built with the backend's feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::Ndarray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
            Self::Tch => cfg!(feature = "tch"),
        }
    }

    /// The device of this backend (without autodiff), or an error naming the cargo
    /// feature to build with.
    pub fn device(self) -> Result<Device> {
        if !self.is_compiled() {
            let compiled: Vec<_> = Self::compiled().iter().map(|b| b.name()).collect();
            bail!(
                "the `{name}` backend is not compiled into this binary (compiled: {compiled}); \
                 rebuild with `cargo build --release -p scalegrad-cli --features {name}`",
                name = self.name(),
                compiled = compiled.join(", "),
            );
        }
        Ok(self.device_unchecked())
    }

    #[allow(unreachable_code, deprecated)]
    fn device_unchecked(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            Self::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(0),
            #[cfg(feature = "tch")]
            Self::Tch => Device::libtorch(),
            #[allow(unreachable_patterns)]
            _ => unreachable!("checked by is_compiled"),
        }
    }
}

/// Command-line arguments shared by every command that runs a model.
#[derive(Clone, Debug, clap::Args)]
pub struct DeviceArgs {
    /// Execution backend; it must be compiled into this binary (see `scalegrad info`).
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Type of the matrix products: f32, bf16 or f16 (mixed precision: parameters,
    /// softmax, LayerNorm and losses stay f32). Default: the config's
    /// `training.precision` for `train`/`eval`, f32 elsewhere.
    #[arg(long, value_parser = parse_precision)]
    pub precision: Option<Precision>,
}

fn parse_precision(text: &str) -> Result<Precision, String> {
    text.parse()
}

impl DeviceArgs {
    /// The precision asked for (f32 when none), checked against `device`: a device that
    /// does not compute in it is an error naming the backend and the precision.
    pub fn precision_on(&self, device: &Device) -> Result<Precision> {
        let precision = self.precision.unwrap_or_default();
        precision
            .check_backend(device, self.backend.name())
            .map_err(anyhow::Error::msg)?;
        Ok(precision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_backends_take_the_host_paths_and_gpu_backends_the_device_ones() {
        assert_eq!(Backend::Flex.execution(), Execution::Host);
        assert_eq!(Backend::Ndarray.execution(), Execution::Host);
        for gpu in [Backend::Wgpu, Backend::Cuda] {
            assert_eq!(gpu.execution(), Execution::Fused, "{gpu:?}");
        }
        assert_eq!(Backend::Tch.execution(), Execution::Device);
    }
}
