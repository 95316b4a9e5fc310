//! Device allocation failures and lost devices as errors.
//!
//! burn's GPU backends report a failed allocation by panicking deep inside an operation
//! ("can't allocate buffer of size: ...", "out of memory"), with no `Result` to return
//! through, or, where a caller reads a tensor with `try_into_data`, by an error whose
//! cause chain ends in that text. A run that reaches that point has usually done hours of
//! work, and the panic and its backtrace say nothing about which setting to change.
//! [`guard`] runs a piece of work, catches such a panic (and only such a panic: any other
//! keeps unwinding with its own message), and turns it into one message that names the
//! keys to lower and what was kept; [`explain`] gives the same message for an error's
//! text. A device lost under the run (a driver reset, an Xid error, a removed GPU) also
//! panics inside burn; it becomes a message that says so and what to do after it.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

/// Serialises the swaps of the process-wide panic hook.
static HOOK: Mutex<()> = Mutex::new(());

/// Whether a panic message is a device allocation failure.
pub fn is_allocation_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // The host's own ENOMEM ("Cannot allocate memory (os error 12)") is not the device's.
    if m.contains("os error") {
        return false;
    }
    m.contains("can't allocate")
        || m.contains("cannot allocate")
        || m.contains("out of memory")
        || m.contains("out of device memory")
        || m.contains("outofmemory")
        || m.contains("allocation failed")
        || m.contains("failed to allocate")
}

/// Whether a panic message is a lost device (wgpu's `DeviceLost`, CUDA's fatal launch
/// and address errors, after which the context is unusable).
pub fn is_device_lost(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("device lost")
        || m.contains("devicelost")
        || m.contains("device is lost")
        || m.contains("lost device")
        // CubeCL's error for a device that failed for good (a sticky CUDA fault, wgpu's
        // device loss): "The device is poisoned", "The device was poisoned during launch".
        || m.contains("device is poisoned")
        || m.contains("device was poisoned")
        || m.contains("cuda_error_launch_failed")
        || m.contains("cuda_error_illegal_address")
        || m.contains("cuda_error_ecc_uncorrectable")
}

fn is_device_failure(message: &str) -> bool {
    is_allocation_failure(message) || is_device_lost(message)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// What a lost device leaves behind in a training or evaluation run.
pub const LOST_IN_A_RUN: &str = "The checkpoints and the best model written so far are \
     intact; check the device (nvidia-smi, the kernel log) and rerun with --resume";

/// Runs `work`; a device allocation failure inside it becomes
/// `Err("<what> ran out of device memory (<detail>); <advice>")` instead of a panic, and a
/// lost device an error that ends with [`LOST_IN_A_RUN`]. The panic hook stays quiet for
/// that one panic, so no backtrace is printed; every other panic is reported and resumed
/// unchanged.
pub fn guard<T>(what: &str, advice: &str, work: impl FnOnce() -> T) -> Result<T, String> {
    guard_with(what, advice, LOST_IN_A_RUN, work)
}

/// [`guard`] with `after_loss` as what the message of a lost device tells the user to do.
///
/// Guards do not nest: the panic hook is swapped under a process-wide lock held while
/// `work` runs, so `work` must not call [`guard`] or `guard_with` itself.
pub fn guard_with<T>(
    what: &str,
    advice: &str,
    after_loss: &str,
    work: impl FnOnce() -> T,
) -> Result<T, String> {
    let _serial = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let previous = panic::take_hook();
    let previous = std::sync::Arc::new(previous);
    let forward = previous.clone();
    panic::set_hook(Box::new(move |info| {
        if !is_device_failure(info.payload_as_str().unwrap_or_default()) {
            (forward.as_ref())(info);
        }
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(work));
    let _ = panic::take_hook();
    match std::sync::Arc::try_unwrap(previous) {
        Ok(hook) => panic::set_hook(hook),
        // The closure holding the other reference was just dropped by `take_hook`.
        Err(_) => unreachable!("the temporary hook is gone"),
    }
    match outcome {
        Ok(value) => Ok(value),
        Err(payload) => match explain(what, advice, after_loss, &panic_text(payload.as_ref())) {
            Some(message) => Err(message),
            None => panic::resume_unwind(payload),
        },
    }
}

/// The message for a device failure that `text` (a panic's, or an error's with its
/// causes) describes: `"<what> ran out of device memory (<detail>); <advice>"` (or
/// `"<what> asked for a buffer larger than this device allows in one piece ..."` where
/// the allocation exceeds the device's largest buffer), or
/// `"<what> lost the device (<detail>): ... <after_loss>"`; `None` when it describes
/// neither. `<detail>` is the line of `text` that names the failure (burn's errors carry
/// a long cause chain), with a buffer's size also in MiB.
pub fn explain(what: &str, advice: &str, after_loss: &str, text: &str) -> Option<String> {
    if is_allocation_failure(text) {
        let detail = failure_line(text, is_allocation_failure);
        // CubeCL words an allocation larger than the device's largest buffer ("can't
        // allocate buffer of size", which no amount of free memory satisfies) apart from
        // a device without memory left ("out of device memory allocating").
        if detail
            .to_ascii_lowercase()
            .contains("can't allocate buffer")
        {
            Some(format!(
                "{what} asked for a buffer larger than this device allows in one piece \
                 ({detail}); {advice}. The limit is per buffer, so free memory does not lift \
                 it: if the buffer is one weight (the token embedding, say), the model needs \
                 a device or backend with larger buffers"
            ))
        } else {
            Some(format!(
                "{what} ran out of device memory ({detail}); {advice}"
            ))
        }
    } else if is_device_lost(text) {
        let detail = failure_line(text, is_device_lost);
        Some(format!(
            "{what} lost the device ({detail}): the driver reset it or it went away. {after_loss}"
        ))
    } else {
        None
    }
}

/// The first line of `text` that `names` accepts, trimmed, with the size of a buffer
/// ("size: 154389504", "allocating 154389504 bytes") also given in MiB.
fn failure_line(text: &str, names: fn(&str) -> bool) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| names(l))
        .unwrap_or_else(|| text.trim());
    // burn's read error wraps the chain: `Execution(The device is poisoned ...)`.
    let line = line.trim_start_matches("Execution(");
    // CubeCL's two wordings: "buffer of size: N" and "allocating N bytes".
    let bytes = line
        .rsplit_once("size: ")
        .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        .or_else(|| {
            let (_, rest) = line.rsplit_once("allocating ")?;
            rest.strip_suffix(" bytes")?.trim().parse::<u64>().ok()
        });
    match bytes {
        Some(b) => format!("{line}, {:.0} MiB", b as f64 / (1u64 << 20) as f64),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_failure_becomes_an_error_naming_the_fix() {
        let err = guard("evaluation", "lower evaluation.chunk_mib", || -> u32 {
            panic!("out of device memory allocating 3293642752 bytes")
        })
        .unwrap_err();
        assert!(
            err.starts_with("evaluation ran out of device memory"),
            "{err}"
        );
        assert!(err.contains("3293642752 bytes, 3141 MiB"), "{err}");
        assert!(err.ends_with("lower evaluation.chunk_mib"), "{err}");
        // The H200 run: 3.3 GB of logits above wgpu's 2 GiB limit on one buffer.
        let err = guard("evaluation", "lower evaluation.chunk_mib", || -> u32 {
            panic!("can't allocate buffer of size: 3293642752")
        })
        .unwrap_err();
        assert_eq!(
            err,
            "evaluation asked for a buffer larger than this device allows in one piece \
             (can't allocate buffer of size: 3293642752, 3141 MiB); lower evaluation.chunk_mib. \
             The limit is per buffer, so free memory does not lift it: if the buffer is one \
             weight (the token embedding, say), the model needs a device or backend with \
             larger buffers"
        );
    }

    #[test]
    fn a_lost_device_becomes_an_error_saying_the_checkpoints_are_intact() {
        let err = guard("training", "lower training.chunk_mib", || -> u32 {
            panic!("Parent device is lost: DeviceLost")
        })
        .unwrap_err();
        assert!(err.starts_with("training lost the device"), "{err}");
        assert!(err.contains("intact") && err.contains("--resume"), "{err}");
        assert!(!err.contains("chunk_mib"), "{err}");
    }

    #[test]
    fn other_panics_and_values_pass_through() {
        assert_eq!(guard("x", "y", || 7), Ok(7));
        let caught = std::panic::catch_unwind(|| guard("x", "y", || panic!("index out of bounds")));
        let payload = caught.expect_err("the panic keeps unwinding");
        assert_eq!(panic_text(payload.as_ref()), "index out of bounds");
    }

    #[test]
    fn a_read_error_is_explained_by_the_line_that_names_the_failure() {
        // The shape of burn's error for a read of a tensor whose buffer was never
        // allocated (wgpu on Mesa's software Vulkan, a 147 MiB embedding).
        let text = "Execution(An error happened during execution\nCaused by:\n  Several \
                    failures at once\nCaused by:\n  skipped `MatmulEntry`: it needed memory \
                    ManagedMemoryId { value: 121 }, which carried the failure\nCaused by:\n  \
                    An IO error happened\nCaused by:\n  can't allocate buffer of size: \
                    154389504\nNo backtrace available)";
        let message = explain("decoding", "lower --batch-size", "rerun", text).expect("explained");
        assert!(
            message.starts_with(
                "decoding asked for a buffer larger than this device allows in one piece \
                 (can't allocate buffer of size: 154389504, 147 MiB); lower --batch-size. "
            ),
            "{message}"
        );
        let lost = explain("decoding", "x", "rerun it", "wgpu: Device is lost").expect("lost");
        assert!(lost.ends_with("went away. rerun it"), "{lost}");
        // A device that failed for good comes back from a read as CubeCL's poisoned error.
        let text = "Execution(The device is poisoned\nCaused by:\n  cuLaunchKernel failed with \
                    status 700)";
        let poisoned = explain("decoding", "x", "rerun it", text).expect("poisoned");
        assert!(
            poisoned.starts_with("decoding lost the device (The device is poisoned)"),
            "{poisoned}"
        );
        assert_eq!(explain("decoding", "x", "y", "index 5 out of range"), None);
    }

    #[test]
    fn allocation_messages_of_the_backends_are_recognised() {
        assert!(is_allocation_failure("can't allocate buffer of size: 12"));
        assert!(is_allocation_failure("CUDA error: out of memory"));
        assert!(is_allocation_failure(
            "out of device memory allocating 12 bytes"
        ));
        assert!(is_allocation_failure("Allocation failed: OutOfMemory"));
        assert!(!is_allocation_failure("index 5 out of range"));
        assert!(!is_allocation_failure(
            "writing run/log.jsonl: Cannot allocate memory (os error 12)"
        ));
    }
}
