//! Device allocation failures and lost devices as errors.
//!
//! burn's GPU backends report a failed allocation by panicking deep inside an operation
//! ("can't allocate buffer of size: ...", "out of memory"), with no `Result` to return
//! through. A run that reaches that point has usually done hours of work, and the panic
//! and its backtrace say nothing about which setting to change. [`guard`] runs a piece of
//! work, catches such a panic (and only such a panic: any other keeps unwinding with its
//! own message), and turns it into one message that names the keys to lower and what was
//! kept. A device lost under the run (a driver reset, an Xid error, a removed GPU) also
//! panics inside burn; it becomes a message that says so and that the checkpoints are
//! intact.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

/// Serialises the swaps of the process-wide panic hook.
static HOOK: Mutex<()> = Mutex::new(());

/// Whether a panic message is a device allocation failure.
pub fn is_allocation_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("can't allocate")
        || m.contains("cannot allocate")
        || m.contains("out of memory")
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

/// Runs `work`; a device allocation failure inside it becomes
/// `Err("<what> ran out of device memory (<detail>); <advice>")` instead of a panic. The
/// panic hook stays quiet for that one panic, so no backtrace is printed; every other
/// panic is reported and resumed unchanged.
pub fn guard<T>(what: &str, advice: &str, work: impl FnOnce() -> T) -> Result<T, String> {
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
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            if is_allocation_failure(&text) {
                Err(format!(
                    "{what} ran out of device memory ({}); {advice}",
                    text.trim()
                ))
            } else if is_device_lost(&text) {
                Err(format!(
                    "{what} lost the device ({}): the driver reset it or it went away. \
                     The checkpoints and the best model written so far are intact; check \
                     the device (nvidia-smi, the kernel log) and rerun with --resume",
                    text.trim()
                ))
            } else {
                panic::resume_unwind(payload)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_failure_becomes_an_error_naming_the_fix() {
        let err = guard("evaluation", "lower evaluation.chunk_mib", || -> u32 {
            panic!("can't allocate buffer of size: 3293642752")
        })
        .unwrap_err();
        assert!(
            err.starts_with("evaluation ran out of device memory"),
            "{err}"
        );
        assert!(err.contains("3293642752"), "{err}");
        assert!(err.ends_with("lower evaluation.chunk_mib"), "{err}");
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
    fn allocation_messages_of_the_backends_are_recognised() {
        assert!(is_allocation_failure("can't allocate buffer of size: 12"));
        assert!(is_allocation_failure("CUDA error: out of memory"));
        assert!(is_allocation_failure("Allocation failed: OutOfMemory"));
        assert!(!is_allocation_failure("index 5 out of range"));
    }
}
