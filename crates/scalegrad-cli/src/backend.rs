//! Choosing the execution backend at run time.
//!
//! Each backend is a cargo feature of this crate; `--backend NAME` picks one of those
//! compiled in. Asking for one that is not compiled in is an error that says how to
//! build it, never a silent fallback to the CPU.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, anyhow, bail};
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

    /// The device of this backend, opened, and the adapter it runs on (GPU backends;
    /// `None` on the CPU ones). An adapter that is no GPU (a software rasterizer such as
    /// Mesa's llvmpipe, which wgpu takes when it finds no GPU driver) gets one warning on
    /// standard error: a run meant for a GPU would otherwise crawl without saying why.
    pub fn open(self) -> Result<(Device, Option<Adapter>)> {
        let device = self.device()?;
        let adapter = self.adapter(&device)?;
        if let Some(adapter) = adapter.as_ref().filter(|a| !a.is_card) {
            eprintln!("{}", software_warning(self, &adapter.name));
        }
        Ok((device, adapter))
    }

    /// The adapter `device` runs on, as CubeCL reports it; an error with the fix when the
    /// backend finds none.
    fn adapter(self, device: &Device) -> Result<Option<Adapter>> {
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        if matches!(self, Self::Wgpu | Self::Cuda) {
            let identity = catch_panics(|| Ok(device.identity()))
                .map_err(|err| anyhow!("{err:#}; {}", fix_for(self)))?;
            return Ok(identity.map(|identity| Adapter {
                name: identity.name,
                is_card: identity.physical.is_some(),
            }));
        }
        let _ = device;
        Ok(None)
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

/// The adapter (a GPU, or a software rasterizer) a GPU backend's device runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adapter {
    /// As its driver names it: `NVIDIA H200`, `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Whether it is a card; `false` for a CPU or a software rasterizer.
    pub is_card: bool,
}

/// The warning for a GPU backend that runs on `adapter`, which is no GPU.
fn software_warning(backend: Backend, adapter: &str) -> String {
    format!(
        "warning: --backend {name} runs on {adapter}, which is no GPU but software on this \
         CPU (expect it to be slower than --backend flex). If this machine has a GPU, {name} \
         did not find its driver: install the GPU vendor's Vulkan driver and libvulkan1 (or \
         build with --features cuda for NVIDIA); `scalegrad info --check --backend {name}` \
         shows the adapter, and CUBECL_WGPU_DEFAULT_DEVICE picks another",
        name = backend.name()
    )
}

/// Runs `f` with a panic hook that records panic messages (from any thread) instead of
/// printing them, and turns a panic of `f` into an error carrying the first recorded
/// message: a backend's worker thread often panics first with the real cause, and the
/// calling thread then panics with a consequence (a closed channel). burn's GPU backends
/// report a missing driver or adapter by panicking.
pub(crate) fn catch_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorded = Arc::clone(&messages);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        if let Ok(mut messages) = recorded.lock() {
            messages.push(message);
        }
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous);
    match outcome {
        Ok(result) => result,
        Err(_) => {
            let messages = messages.lock().map(|m| m.clone()).unwrap_or_default();
            let first = messages.first().map_or("unknown panic", String::as_str);
            Err(anyhow!("panicked: {}", one_line(first)))
        }
    }
}

/// Collapses a multi-line panic message into one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What to do when `backend` fails to initialise.
pub(crate) fn fix_for(backend: Backend) -> &'static str {
    match backend {
        Backend::Flex | Backend::Ndarray => {
            "this CPU backend needs nothing external; please report this as a bug"
        }
        Backend::Wgpu => {
            "wgpu found no usable adapter: it needs a Vulkan driver (or Metal, DX12, or \
             OpenGL ES through EGL); without a GPU install Mesa's software Vulkan with \
             `sudo apt-get install mesa-vulkan-drivers libvulkan1`; \
             CUBECL_WGPU_DEFAULT_DEVICE (e.g. `Cpu`) picks another adapter"
        }
        Backend::Cuda => {
            "the cuda backend needs an NVIDIA GPU with its driver (libcuda.so) installed; \
             check `nvidia-smi`"
        }
        Backend::Tch => {
            "the tch backend needs libtorch 2.9.0 from PyPI torch==2.9.0: run \
             `cargo xtask setup libtorch` and rebuild with the variables it prints \
             (see docs/BACKENDS.md)"
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

    // These tests swap the process-wide panic hook; they run one at a time through
    // this lock so that each restores the hook the next one saves.
    static HOOK: Mutex<()> = Mutex::new(());

    #[test]
    fn a_panic_becomes_an_error_with_its_message_on_one_line() {
        let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        let result: Result<()> =
            catch_panics(|| panic!("Unable to acquire wgpu device:\n  no adapter"));
        let message = format!("{:#}", result.unwrap_err());
        assert_eq!(
            message,
            "panicked: Unable to acquire wgpu device: no adapter"
        );
    }

    #[test]
    fn the_first_panic_of_any_thread_is_reported_as_the_cause() {
        let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        let result: Result<()> = catch_panics(|| {
            let worker = std::thread::spawn(|| panic!("driver not found"));
            assert!(worker.join().is_err());
            panic!("channel closed");
        });
        let message = format!("{:#}", result.unwrap_err());
        assert_eq!(message, "panicked: driver not found");
    }

    #[test]
    fn errors_and_values_pass_through_unchanged() {
        let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(catch_panics(|| Ok(7)).unwrap(), 7);
        let err = catch_panics::<()>(|| bail!("not compiled")).unwrap_err();
        assert_eq!(err.to_string(), "not compiled");
    }

    #[test]
    fn cpu_backends_take_the_host_paths_and_gpu_backends_the_device_ones() {
        assert_eq!(Backend::Flex.execution(), Execution::Host);
        assert_eq!(Backend::Ndarray.execution(), Execution::Host);
        for gpu in [Backend::Wgpu, Backend::Cuda] {
            assert_eq!(gpu.execution(), Execution::Fused, "{gpu:?}");
        }
        assert_eq!(Backend::Tch.execution(), Execution::Device);
    }

    #[test]
    fn the_software_adapter_warning_names_the_adapter_and_the_ways_out() {
        let warning = software_warning(Backend::Wgpu, "llvmpipe (LLVM 15.0.6, 256 bits)");
        assert!(
            warning.starts_with(
                "warning: --backend wgpu runs on llvmpipe (LLVM 15.0.6, 256 bits), which is no GPU"
            ),
            "{warning}"
        );
        assert!(
            warning.contains("--backend flex") && warning.contains("Vulkan driver"),
            "{warning}"
        );
        assert!(!warning.contains('\n'), "{warning}");
    }
}
