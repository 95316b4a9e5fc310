//! `scalegrad info`: what this binary can run on.
//!
//! Without flags it lists the backends compiled into the binary. With `--check` it runs a
//! small workload on each of them (or on those named with `--backend`) and reports, per
//! backend, whether it works, which device it got and how long each part took:
//!
//! 1. initialisation: build the device with autodiff and move one number through it
//!    (for wgpu this finds the adapter; for CubeCL backends the adapter name is reported);
//! 2. a 256x256 matmul, run twice (cold: kernel compilation included; warm), compared with
//!    the same product computed on the host in f64;
//! 3. ScaleGrad (gamma 0.2) forward and backward on `[2, 16, 100]` logits, whose loss and
//!    gradient are compared with a host f64 evaluation of the paper's eq. 3 (the gradient
//!    of `-log p~_y` with respect to the logits is `(p~ - onehot(y)) / N`). On the CubeCL
//!    backends (wgpu, cuda) it also counts what burn's kernel fusion made of this step:
//!    how many operations it registered, how many fused kernels and single operations
//!    ran them. A GPU pays a launch per kernel, so a build without fusion shows here.
//!
//! burn panics inside device initialisation when a backend is unusable (no Vulkan driver,
//! no CUDA driver, ...). Each check therefore runs under `catch_unwind` with a quiet panic
//! hook that records the messages; a panic becomes a one-line error with the fix, never a
//! backtrace. A failed check makes the command exit with a failure after the report.

use std::time::Instant;

use anyhow::{Result, anyhow, bail, ensure};
use burn::tensor::{Int, Tensor, TensorData};
use scalegrad_loss::ScaleGradConfig;
use scalegrad_ops::FusionSearch;
use serde::Serialize;

use crate::backend::{self, Backend, catch_panics, fix_for};

/// Arguments of `scalegrad info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Run a small matmul and a ScaleGrad forward/backward on each compiled backend and
    /// report whether it works, its device and timings.
    #[arg(long)]
    check: bool,
    /// Check only this backend (repeatable; default: every compiled backend).
    #[arg(
        long = "backend",
        value_enum,
        requires = "check",
        value_name = "BACKEND"
    )]
    backends: Vec<Backend>,
}

/// Side of the square matrices multiplied by the check.
const MATMUL_SIZE: usize = 256;
/// Shape `[batch, positions, vocabulary]` of the logits the loss check uses.
const LOGITS_SHAPE: [usize; 3] = [2, 16, 100];
/// Targets are drawn from the first `TARGET_RANGE` tokens, so rows repeat tokens and
/// ScaleGrad's context sets are not empty.
const TARGET_RANGE: u64 = 12;
/// ScaleGrad's gamma in the check (the paper's open-ended setting).
const GAMMA: f64 = 0.2;
/// Largest accepted matmul error, relative to `sum_k |a_ik b_kj|` of the entry. f32
/// accumulation over 256 terms errs by about 1e-6 of that; TF32 tensor cores by 1e-3.
const MATMUL_TOLERANCE: f64 = 1e-2;
/// Largest accepted relative error of the loss against the f64 host value.
const LOSS_TOLERANCE: f64 = 1e-4;
/// Largest accepted gradient error, relative to the largest gradient entry.
const GRAD_TOLERANCE: f64 = 1e-3;

/// The outcome of `--check` on one backend.
#[derive(Debug, Serialize)]
struct Check {
    /// The backend's command-line name.
    backend: &'static str,
    /// Whether every step ran and every result was within tolerance.
    ok: bool,
    /// `Debug` of the device (without autodiff), once it could be built.
    device: Option<String>,
    /// The adapter's own name (CubeCL backends only, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`).
    adapter: Option<String>,
    /// Wall time of the whole check, in milliseconds.
    ms: f64,
    /// Wall times of the steps that completed.
    steps: Steps,
    /// The ScaleGrad loss value, when it was computed.
    loss: Option<f64>,
    /// Largest errors against the host's f64 values, for the steps that were compared.
    errors: Errors,
    /// What kernel fusion made of the loss and backward step (CubeCL backends only).
    fusion: Option<FusionCounts>,
    /// Why the check failed, with the fix when one is known.
    error: Option<String>,
}

/// How burn's fusion ran one piece of work: `operations` tensor operations (drops of
/// tensors not counted) ran as `fused_kernels` kernels that each did several of them and
/// `single_operations` that ran on their own (some of those, such as reshapes, launch
/// nothing).
#[derive(Debug, Serialize)]
struct FusionCounts {
    operations: usize,
    fused_kernels: usize,
    single_operations: usize,
}

/// Per-step wall times in milliseconds (`None` for steps that did not complete).
#[derive(Debug, Default, Serialize)]
struct Steps {
    /// Device creation and a one-number round trip.
    init_ms: Option<f64>,
    /// First 256x256 matmul with read-back (includes kernel compilation).
    matmul_cold_ms: Option<f64>,
    /// Second, identical matmul with read-back.
    matmul_warm_ms: Option<f64>,
    /// ScaleGrad forward and backward with read-back of loss and gradient.
    loss_backward_ms: Option<f64>,
}

/// Largest relative errors against the host's f64 reference values.
#[derive(Debug, Default, Serialize)]
struct Errors {
    /// Matmul: largest `|got - exact| / sum_k |a_ik b_kj|` over the compared entries.
    matmul: Option<f64>,
    /// Loss: `|got - exact| / max(|exact|, 1)`.
    loss: Option<f64>,
    /// Gradient: largest absolute error over the largest reference entry.
    gradient: Option<f64>,
}

/// How burn's kernel fusion searches in this process (it matters on wgpu and CUDA).
#[derive(Debug, Serialize)]
struct FusionSearchReport {
    /// Groups of operations the search keeps open at a time.
    max_blocks: usize,
    /// `scalegrad`, the path of the user's `burn.toml`, or `burn` when burn had read its
    /// own settings first.
    source: String,
}

impl FusionSearchReport {
    fn new() -> Self {
        let source = match backend::fusion_search() {
            FusionSearch::Scalegrad => "scalegrad".to_owned(),
            FusionSearch::File(path) => path.display().to_string(),
            FusionSearch::AlreadyLoaded => "burn".to_owned(),
        };
        Self {
            max_blocks: scalegrad_ops::fusion_max_blocks(),
            source,
        }
    }
}

/// Prints the version and the compiled backends, and with `--check` runs the workload.
pub fn run(args: Args) -> Result<()> {
    let compiled: Vec<&str> = Backend::compiled().iter().map(|b| b.name()).collect();
    let fusion_search = FusionSearchReport::new();
    let fusing = Backend::compiled().iter().any(|b| b.execution().is_fused());
    let print_header = || {
        println!("scalegrad {}", env!("CARGO_PKG_VERSION"));
        println!("compiled backends: {}", compiled.join(", "));
        if fusing {
            println!(
                "kernel fusion search: {} open group(s) of operations ({})",
                fusion_search.max_blocks, fusion_search.source
            );
        }
    };
    if !args.check {
        if args.json {
            let info = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "backends": compiled,
                "fusion_search": fusion_search,
            });
            println!("{info}");
        } else {
            print_header();
        }
        return Ok(());
    }

    let requested = if args.backends.is_empty() {
        Backend::compiled()
    } else {
        args.backends
    };
    let mut selected = Vec::new();
    for backend in requested {
        if !selected.contains(&backend) {
            selected.push(backend);
        }
    }
    if !args.json {
        print_header();
    }
    let mut checks = Vec::new();
    for backend in selected {
        if backend == Backend::Wgpu {
            eprintln!(
                "checking wgpu: the first run compiles its shaders, which can take a while on \
                 a software rasterizer"
            );
        }
        let result = check(backend);
        if !args.json {
            print_check(&result);
        }
        checks.push(result);
    }
    if args.json {
        let info = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "backends": compiled,
            "fusion_search": fusion_search,
            "checks": checks,
        });
        println!("{info}");
    }
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.backend).collect();
    if !failed.is_empty() {
        bail!(
            "backend check failed for {} (see the report above)",
            failed.join(", ")
        );
    }
    Ok(())
}

fn print_check(check: &Check) {
    let status = if check.ok { "ok" } else { "FAILED" };
    let steps = &check.steps;
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{:<8} {status:<6} {:>9.1} ms  (init {}, matmul {} cold / {} warm, loss+backward {})",
        check.backend,
        check.ms,
        ms(steps.init_ms),
        ms(steps.matmul_cold_ms),
        ms(steps.matmul_warm_ms),
        ms(steps.loss_backward_ms),
    );
    if let Some(device) = &check.device {
        println!("         device: {device}");
    }
    if let Some(adapter) = &check.adapter {
        println!("         adapter: {adapter}");
    }
    if let Some(loss) = check.loss {
        let errors = &check.errors;
        let e = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1e}"));
        println!(
            "         ScaleGrad(gamma {GAMMA}) loss: {loss:.6}; relative errors vs host f64: \
             matmul {}, loss {}, gradient {}",
            e(errors.matmul),
            e(errors.loss),
            e(errors.gradient)
        );
    }
    if let Some(fusion) = &check.fusion {
        println!(
            "         fusion: the loss and backward's {} operations ran as {} fused kernels \
             and {} single operations",
            fusion.operations, fusion.fused_kernels, fusion.single_operations
        );
    }
    if let Some(error) = &check.error {
        println!("         error: {error}");
    }
}

/// Runs the workload on `backend`, turning errors and panics into a failed [`Check`].
fn check(backend: Backend) -> Check {
    let mut report = Check {
        backend: backend.name(),
        ok: false,
        device: None,
        adapter: None,
        ms: 0.0,
        steps: Steps::default(),
        loss: None,
        errors: Errors::default(),
        fusion: None,
        error: None,
    };
    let start = Instant::now();
    let outcome = catch_panics(|| workload(backend, &mut report));
    report.ms = millis(start);
    match outcome {
        Ok(()) => report.ok = true,
        Err(err) => report.error = Some(format!("{err:#}")),
    }
    report
}

fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The check's three steps; fills `report` as it goes so a failure keeps the timings and
/// device found before it.
fn workload(backend: Backend, report: &mut Check) -> Result<()> {
    let start = Instant::now();
    let device = backend.device()?;
    report.device = Some(format!("{device:?}"));
    let device = catch_panics(|| {
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        {
            report.adapter = device.identity().map(|identity| identity.name);
        }
        let device = device.autodiff();
        let one = Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &device);
        let back = values(one)?;
        ensure!(back == [1.0], "a round trip of [1.0] returned {back:?}");
        Ok(device)
    })
    .map_err(|err| anyhow!("{err:#}; {}", fix_for(backend)))?;
    report.steps.init_ms = Some(millis(start));

    let mut rng = Lcg(0x5ca1_e9ad);
    let n = MATMUL_SIZE;
    let a: Vec<f32> = (0..n * n).map(|_| rng.uniform()).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.uniform()).collect();
    let matmul = || -> Result<Vec<f32>> {
        let ta = Tensor::<2>::from_data(TensorData::new(a.clone(), [n, n]), &device);
        let tb = Tensor::<2>::from_data(TensorData::new(b.clone(), [n, n]), &device);
        values(ta.matmul(tb))
    };
    let reference = matmul_reference(&a, &b);
    let start = Instant::now();
    let product = matmul()?;
    report.steps.matmul_cold_ms = Some(millis(start));
    let cold_error = check_matmul(&reference, &product)?;
    let start = Instant::now();
    let product = matmul()?;
    report.steps.matmul_warm_ms = Some(millis(start));
    let warm_error = check_matmul(&reference, &product)?;
    report.errors.matmul = Some(cold_error.max(warm_error));

    let [batch, len, vocab] = LOGITS_SHAPE;
    let logits: Vec<f32> = (0..batch * len * vocab)
        .map(|_| 3.0 * rng.uniform())
        .collect();
    let targets: Vec<i64> = (0..batch * len)
        .map(|_| (rng.next() % TARGET_RANGE) as i64)
        .collect();
    let start = Instant::now();
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    let watch = fusion_watch::Watch::start();
    let tracked = Tensor::<3>::from_data(TensorData::new(logits.clone(), LOGITS_SHAPE), &device)
        .require_grad();
    let target_tensor =
        Tensor::<2, Int>::from_data(TensorData::new(targets.clone(), [batch, len]), &device);
    let loss = ScaleGradConfig::new(GAMMA)
        .init()
        .forward(tracked.clone(), target_tensor);
    let grads = loss.backward();
    let loss_value = f64::from(values(loss)?[0]);
    let grad = tracked
        .grad(&grads)
        .ok_or_else(|| anyhow!("the backward pass produced no gradient for the logits"))?;
    let grad = values(grad)?;
    report.steps.loss_backward_ms = Some(millis(start));
    report.loss = Some(loss_value);
    // The reads above ran every block of the step, so the counts are complete.
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        report.fusion = watch.finish();
    }

    ensure!(loss_value.is_finite(), "ScaleGrad loss is {loss_value}");
    ensure!(
        grad.iter().all(|g| g.is_finite()),
        "the gradient has non-finite entries"
    );
    ensure!(
        grad.iter().any(|&g| g != 0.0),
        "the gradient is zero everywhere"
    );
    let (ref_loss, ref_grad) = scalegrad_reference(&logits, &targets, GAMMA);
    let loss_error = (loss_value - ref_loss).abs() / ref_loss.abs().max(1.0);
    report.errors.loss = Some(loss_error);
    ensure!(
        loss_error <= LOSS_TOLERANCE,
        "ScaleGrad loss {loss_value} differs from the host f64 value {ref_loss} \
         (relative error {loss_error:.2e} > {LOSS_TOLERANCE:.0e})"
    );
    let grad_scale = ref_grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let grad_error = grad
        .iter()
        .zip(&ref_grad)
        .map(|(&g, r)| (f64::from(g) - r).abs())
        .fold(0.0f64, f64::max);
    report.errors.gradient = Some(grad_error / grad_scale);
    ensure!(
        grad_error <= GRAD_TOLERANCE * grad_scale,
        "ScaleGrad gradient differs from the host f64 gradient by {grad_error:.2e} \
         (largest entry {grad_scale:.2e}, tolerance {GRAD_TOLERANCE:.0e} of it)"
    );
    Ok(())
}

/// Counting what burn's fusion runs, with its observer (process-wide, so one count at a
/// time: the checks run one after another).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod fusion_watch {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    use burn_fusion::observer::{BlockOperations, FusionObservation, FusionObserver};
    use burn_ir::OperationIr;

    use super::FusionCounts;

    #[derive(Default)]
    struct Counter {
        operations: AtomicUsize,
        fused_kernels: AtomicUsize,
        single_operations: AtomicUsize,
    }

    impl FusionObserver for Counter {
        fn registered(&self, operation: &OperationIr) {
            if !matches!(operation, OperationIr::Drop(_)) {
                self.operations.fetch_add(1, Relaxed);
            }
        }

        fn block_starts(&self, block: BlockOperations<'_>) {
            let work = block
                .iter()
                .filter(|op| !matches!(op, OperationIr::Drop(_)))
                .count();
            match work {
                0 => {}
                1 => {
                    self.single_operations.fetch_add(1, Relaxed);
                }
                _ => {
                    self.fused_kernels.fetch_add(1, Relaxed);
                }
            }
        }

        fn block_ran(&self) {}
    }

    /// Counts from [`Watch::start`] to [`Watch::finish`].
    pub struct Watch {
        counter: Arc<Counter>,
        observation: FusionObservation,
    }

    impl Watch {
        pub fn start() -> Self {
            let counter = Arc::new(Counter::default());
            let observation = FusionObservation::new(counter.clone());
            Self {
                counter,
                observation,
            }
        }

        /// The counts, `None` when no operation went through fusion (a backend
        /// without it, such as flex); call it after a read of the work's results, which
        /// runs every block the work registered.
        pub fn finish(self) -> Option<FusionCounts> {
            drop(self.observation);
            let operations = self.counter.operations.load(Relaxed);
            (operations > 0).then(|| FusionCounts {
                operations,
                fused_kernels: self.counter.fused_kernels.load(Relaxed),
                single_operations: self.counter.single_operations.load(Relaxed),
            })
        }
    }
}

/// Reads a float tensor back to the host as f32.
fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|err| anyhow!("reading a tensor back: {err:?}"))
}

/// Every `MATMUL_ROW_STRIDE`-th row of the product is compared with the host (all of its
/// columns): a wrong tile shows up in a sampled row, and the host side stays cheap in
/// debug builds.
const MATMUL_ROW_STRIDE: usize = 8;

/// The host's f64 product `a b` of row-major `n x n` matrices, on the sampled rows:
/// `(row, column, exact value, sum_k |a_ik b_kj|)`.
fn matmul_reference(a: &[f32], b: &[f32]) -> Vec<(usize, usize, f64, f64)> {
    let n = MATMUL_SIZE;
    let mut entries = Vec::new();
    for i in (0..n).step_by(MATMUL_ROW_STRIDE) {
        for j in 0..n {
            let (mut exact, mut magnitude) = (0.0f64, 0.0f64);
            for k in 0..n {
                let term = f64::from(a[i * n + k]) * f64::from(b[k * n + j]);
                exact += term;
                magnitude += term.abs();
            }
            entries.push((i, j, exact, magnitude));
        }
    }
    entries
}

/// Compares a row-major `n x n` product with the host's reference entries and returns
/// the largest error relative to each entry's `sum_k |a_ik b_kj|`.
fn check_matmul(reference: &[(usize, usize, f64, f64)], product: &[f32]) -> Result<f64> {
    let n = MATMUL_SIZE;
    ensure!(
        product.len() == n * n,
        "matmul returned {} values, expected {}",
        product.len(),
        n * n
    );
    let mut worst = 0.0f64;
    for &(i, j, exact, magnitude) in reference {
        let got = f64::from(product[i * n + j]);
        let error = (got - exact).abs() / magnitude.max(f64::MIN_POSITIVE);
        ensure!(
            error <= MATMUL_TOLERANCE,
            "matmul entry ({i}, {j}) is {got}, the host f64 product is {exact}"
        );
        worst = worst.max(error);
    }
    Ok(worst)
}

/// ScaleGrad's mean loss and its gradient with respect to the logits, in f64, written
/// directly from the paper's definition (eq. 3) rather than the library's closed form:
/// at position `t`, `p = softmax(logits_t)`, novel tokens (not among the earlier targets
/// of the row) get weight `gamma`, `p~ = w p / sum(w p)`, `loss_t = -log p~_y`. The
/// gradient of the mean is `(p~ - onehot(y)) / N` because `log sum(w p)` differs from
/// `logsumexp(logits + log w)` only by a constant.
fn scalegrad_reference(logits: &[f32], targets: &[i64], gamma: f64) -> (f64, Vec<f64>) {
    let [batch, len, vocab] = LOGITS_SHAPE;
    let count = (batch * len) as f64;
    let mut loss = 0.0;
    let mut grad = vec![0.0; logits.len()];
    for b in 0..batch {
        for t in 0..len {
            let row = &logits[(b * len + t) * vocab..][..vocab];
            let earlier = &targets[b * len..b * len + t];
            let max = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
            let weighted: Vec<f64> = row
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    let weight = if earlier.contains(&(i as i64)) {
                        1.0
                    } else {
                        gamma
                    };
                    weight * (f64::from(x) - max).exp()
                })
                .collect();
            let total: f64 = weighted.iter().sum();
            let target = targets[b * len + t] as usize;
            loss -= (weighted[target] / total).ln() / count;
            let out = &mut grad[(b * len + t) * vocab..][..vocab];
            for (i, g) in out.iter_mut().enumerate() {
                let onehot = if i == target { 1.0 } else { 0.0 };
                *g = (weighted[i] / total - onehot) / count;
            }
        }
    }
    (loss, grad)
}

/// A small deterministic generator (Knuth's MMIX LCG) for the check's inputs, so every
/// backend sees the same numbers and no RNG dependency is needed for 70 000 values.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Uniform in `[-1, 1)`.
    fn uniform(&mut self) -> f32 {
        (self.next() as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_reference_gradient_sums_to_zero_per_position() {
        // p~ and the one-hot target both sum to 1 over the vocabulary.
        let [batch, len, vocab] = LOGITS_SHAPE;
        let mut rng = Lcg(1);
        let logits: Vec<f32> = (0..batch * len * vocab).map(|_| rng.uniform()).collect();
        let targets: Vec<i64> = (0..batch * len).map(|i| (i % 5) as i64).collect();
        let (loss, grad) = scalegrad_reference(&logits, &targets, GAMMA);
        assert!(loss.is_finite() && loss > 0.0, "loss={loss}");
        for row in grad.chunks(vocab) {
            let sum: f64 = row.iter().sum();
            assert!(sum.abs() < 1e-15, "gradient row sums to {sum}");
        }
    }

    #[test]
    fn gamma_one_reference_is_cross_entropy() {
        // With gamma 1 every weight is 1, so p~ = softmax and the loss is mean -log p_y.
        let logits = vec![0.0f32; LOGITS_SHAPE.iter().product()];
        let targets = vec![3i64; LOGITS_SHAPE[0] * LOGITS_SHAPE[1]];
        let (loss, _) = scalegrad_reference(&logits, &targets, 1.0);
        let expected = (LOGITS_SHAPE[2] as f64).ln();
        assert!(
            (loss - expected).abs() < 1e-12,
            "loss={loss}, ln(V)={expected}"
        );
    }
}
