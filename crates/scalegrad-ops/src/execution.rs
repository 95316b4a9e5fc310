//! The execution policy: which of this crate's routes an operation takes on a device.

use serde::{Deserialize, Serialize};

/// How scalegrad computes on a device: with this crate's CPU fast paths, or with burn's
/// own operations only.
///
/// The command line resolves its `--backend` into one value once and hands it to
/// training, the models, the optimiser and decoding; nothing else guesses the kind of
/// device. The fast paths read and write host memory directly (a dropout mask drawn on
/// the host, products split over the rayon pool, weights copied into another layout,
/// an optimiser pass over host buffers): right for backends whose tensors live in host
/// memory, and a device round trip per call anywhere else.
///
/// The default is [`Execution::Device`], which is correct and fast on every backend;
/// CPU users of the library crates opt into [`Execution::Host`] (the `scalegrad`
/// binary does it for `flex` and `ndarray`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// A backend whose tensors live in host memory (burn's `flex`, `ndarray`): the fast
    /// paths of this crate, the fused host AdamW update, host-side decoding rules.
    Host,
    /// Any other device (libtorch; correct on wgpu and CUDA too, where
    /// [`Fused`](Self::Fused) launches fewer kernels): burn's operations only, with the
    /// device's own random generator for dropout, and no read back to the host inside
    /// a forward pass.
    #[default]
    Device,
    /// A device of burn's CubeCL backends (wgpu, CUDA), whose fusion joins element-wise
    /// work to the kernels around it: [`Device`](Self::Device)'s rules, plus the routes
    /// whose operations are arranged for that fusion, which would cost more kernels on a
    /// backend that runs each operation as it comes (libtorch, whose LayerNorm is one
    /// kernel where the fused route writes it out).
    Fused,
}

impl Execution {
    /// Whether the CPU fast paths are taken.
    pub fn is_host(self) -> bool {
        self == Self::Host
    }

    /// Whether the device's backend fuses kernels ([`Fused`](Self::Fused)).
    pub fn is_fused(self) -> bool {
        self == Self::Fused
    }
}

impl std::fmt::Display for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Host => "host",
            Self::Device => "device",
            Self::Fused => "fused",
        })
    }
}
