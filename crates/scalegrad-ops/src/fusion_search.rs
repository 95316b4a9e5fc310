//! How burn's kernel fusion searches for kernels, set once for the process.
//!
//! burn's fusion (on its CubeCL backends, wgpu and CUDA) queues operations and groups
//! them into kernels. Its search keeps up to `max_blocks` groups of operations open at a
//! time (burn's default: 5) so that it can fuse operations of independent chains that
//! arrive interleaved. In a backward pass the chains are many and short (a LayerNorm's
//! gradient alone is some twenty small operations with several dependencies); the search
//! then reaches its limit, cannot put the groups back in an order that respects the
//! dependencies, and runs the whole segment as single operations (`[repair] falling back
//! to unfused stream order` in burn's `BURN_FUSION_LOG=full` output). With one group at a
//! time it fuses in stream order, which those segments allow.
//!
//! Kernel launches a train step (lavapipe, counted as docs/BACKENDS.md describes, same
//! binary, only `max_blocks` changed): GPT-2 of 2 layers 338-344 with burn's 5, 241 with
//! 1 (3: 269-276; 8: 408; 20: 497); 6 layers 848.5 against 576.9; BERT2BERT of 2+2 layers
//! 872.7 against 711.4. Greedy decoding is unchanged (35.7 against 36.0 a token). The
//! un-fused element-wise kernels of the GPT-2 step went from 116 (74 binary, 32 scalar,
//! 10 unary) to 10.

use std::path::{Path, PathBuf};

use burn::BurnConfig;
use burn_std::config::RuntimeConfig;

/// The fusion search's open groups that scalegrad sets (see the module docs).
pub const FUSION_MAX_BLOCKS: usize = 1;

/// Where the process's fusion search settings came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FusionSearch {
    /// scalegrad's: [`FUSION_MAX_BLOCKS`], burn's defaults otherwise (and burn's
    /// `BURN_FUSION_*` environment variables on top).
    Scalegrad,
    /// The user's own `burn.toml` (or `Burn.toml`) in the working directory or above,
    /// which burn reads as it is.
    File(PathBuf),
    /// burn had read its settings before (something ran on a fusing backend first);
    /// they stay as they were.
    AlreadyLoaded,
}

/// Sets burn's fusion search for this process to one open group of operations
/// ([`FUSION_MAX_BLOCKS`]), unless a `burn.toml` in the working directory or above
/// holds the user's own settings. Call it before the first operation on a wgpu or CUDA
/// device (the `scalegrad` binary does so at its start); later calls change nothing.
/// Backends without fusion (flex, ndarray, libtorch) are not affected.
pub fn configure_fusion_search() -> FusionSearch {
    if let Some(file) = std::env::current_dir()
        .ok()
        .and_then(|dir| burn_config_file(&dir))
    {
        return FusionSearch::File(file);
    }
    if BurnConfig::try_set(scalegrad_config().override_from_env()) {
        FusionSearch::Scalegrad
    } else {
        FusionSearch::AlreadyLoaded
    }
}

/// The fusion search's open groups in effect (reading burn's settings, which loads them
/// if nothing did yet).
pub fn fusion_max_blocks() -> usize {
    burn::runtime_config().fusion().beam_search.max_blocks
}

/// burn's default settings with scalegrad's fusion search.
fn scalegrad_config() -> BurnConfig {
    // burn's settings have private fields; every one of them has a serde default, so
    // a document naming only the one key gives burn's defaults for the rest.
    serde_json::from_value(serde_json::json!({
        "fusion": { "beam_search": { "max_blocks": FUSION_MAX_BLOCKS } }
    }))
    .expect("burn's settings take a fusion.beam_search.max_blocks number")
}

/// The settings file burn would read from `dir`: the first of its file names found in
/// `dir` or the nearest directory above it that has one.
fn burn_config_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|dir| {
        BurnConfig::file_names()
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalegrads_settings_change_only_the_fusion_search() {
        let ours = serde_json::to_value(scalegrad_config()).unwrap();
        let mut burns = serde_json::to_value(BurnConfig::default()).unwrap();
        assert_ne!(
            burns["fusion"]["beam_search"]["max_blocks"], FUSION_MAX_BLOCKS,
            "burn's default is another value"
        );
        burns["fusion"]["beam_search"]["max_blocks"] = FUSION_MAX_BLOCKS.into();
        assert_eq!(ours, burns);
    }

    #[test]
    fn a_burn_toml_in_the_directory_or_above_is_found() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("a").join("b");
        std::fs::create_dir_all(&nested).unwrap();
        // `tempdir` lives under the system's temporary directory, which holds no
        // burn.toml of its own on the machines these tests run on.
        assert_eq!(burn_config_file(&nested), None);
        let file = root.path().join("a").join("burn.toml");
        std::fs::write(&file, "[fusion.beam_search]\nmax_blocks = 3\n").unwrap();
        assert_eq!(burn_config_file(&nested), Some(file.clone()));
        // The nearest one wins, as burn reads it.
        let nearer = nested.join("Burn.toml");
        std::fs::write(&nearer, "").unwrap();
        assert_eq!(burn_config_file(&nested), Some(nearer));
        assert_eq!(burn_config_file(root.path()), None);
    }
}
