//! The Hugging Face hub and its local cache.
//!
//! Files live in the standard cache layout that `huggingface_hub` (Python), `hf-hub`
//! (Rust) and `huggingface-cli download` share:
//!
//! ```text
//! <cache>/models--distilbert--distilgpt2/refs/main            (holds the commit sha)
//! <cache>/models--distilbert--distilgpt2/snapshots/<sha>/config.json
//! <cache>/datasets--Salesforce--wikitext/snapshots/<sha>/wikitext-2-raw-v1/test-00000-of-00001.parquet
//! ```
//!
//! where `<cache>` is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`. Snapshot entries
//! are usually symlinks into `blobs/`; plain files work too.
//!
//! Reading the cache needs no network and no cargo feature. Downloading needs the `hub`
//! feature (on by default) and is skipped when `HF_HUB_OFFLINE` is set (to `1`, `true`,
//! `yes` or `on`) or [`HubConfig::offline`] is true. When the hub cannot be reached, a
//! filled cache is used exactly as in offline mode; when the cache lacks the files too,
//! the error ([`Error::NotCached`]) says how to fill it on another machine.
//!
//! `HF_ENDPOINT` replaces `https://huggingface.co`; `HF_TOKEN` (else the `token` file
//! next to the cache, as written by `huggingface-cli login`) is sent for gated repos.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The default hub address.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Configuration files a model directory may hold; all optional.
pub const MODEL_CONFIG_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

/// Weight files, in order of preference: the first one the repo has is used.
pub const MODEL_WEIGHT_FILES: &[&str] = &["model.safetensors", "pytorch_model.bin"];

/// Where the hub is and where its files are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// The cache's `hub` folder (holding `models--*` and `datasets--*`).
    pub cache_dir: PathBuf,
    /// The hub address (`HF_ENDPOINT`).
    pub endpoint: String,
    /// Access token for gated or private repos (`HF_TOKEN`).
    pub token: Option<String>,
    /// Never touch the network; read the cache only (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Show download progress bars.
    pub progress: bool,
}

impl HubConfig {
    /// The configuration the environment asks for (see the module docs for the
    /// variables and their precedence).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(dirs::cache_dir)
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN").or_else(|| {
            std::fs::read_to_string(hf_home.join("token"))
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        Self {
            cache_dir,
            endpoint: var("HF_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
            progress: true,
        }
    }

    /// A configuration with an explicit cache folder (the `hub` folder), online, with
    /// the default endpoint and no token.
    pub fn with_cache_dir(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token: None,
            offline: false,
            progress: true,
        }
    }

    /// Sets offline mode.
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Sets the endpoint.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_string();
        self
    }

    /// Shows or hides download progress bars.
    pub fn progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Why the network will not be used, if it will not.
    fn offline_reason(&self) -> Option<String> {
        if self.offline {
            Some("offline mode: HF_HUB_OFFLINE is set or --offline was given".to_string())
        } else if !cfg!(feature = "hub") {
            Some("scalegrad-data was built without its `hub` feature".to_string())
        } else {
            None
        }
    }
}

fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// The kind of a hub repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoType {
    /// A model repository.
    Model,
    /// A dataset repository.
    Dataset,
}

impl RepoType {
    fn prefix(self) -> &'static str {
        match self {
            Self::Model => "models",
            Self::Dataset => "datasets",
        }
    }

    fn cli_flag(self) -> &'static str {
        match self {
            Self::Model => "",
            Self::Dataset => " --repo-type dataset",
        }
    }
}

/// The cache folder of a repository: `<cache>/models--org--name`.
pub fn repo_folder(cache_dir: &Path, repo_type: RepoType, repo_id: &str) -> PathBuf {
    cache_dir.join(format!(
        "{}--{}",
        repo_type.prefix(),
        repo_id.replace('/', "--")
    ))
}

/// The cached snapshot folder of a repository at a revision, if the cache has one.
///
/// A branch or tag name is looked up in `refs/<revision>` (whose content is the commit
/// sha); a commit sha names its snapshot folder directly.
pub fn cached_snapshot(
    cache_dir: &Path,
    repo_type: RepoType,
    repo_id: &str,
    revision: &str,
) -> Option<PathBuf> {
    let folder = repo_folder(cache_dir, repo_type, repo_id);
    let commit = std::fs::read_to_string(folder.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    // A commit sha never contains a path separator; a revision that does (e.g.
    // `refs/convert/parquet`) must have been resolved through its refs/ file.
    if commit.is_empty() || commit.contains(['/', '\\']) {
        return None;
    }
    let snapshot = folder.join("snapshots").join(&commit);
    snapshot.is_dir().then_some(snapshot)
}

/// A model repository's snapshot folder holding the `required` files and whichever of
/// the `optional` files the repository has, downloading what is missing when online.
///
/// Offline (or when the hub cannot be reached) the cached snapshot must hold every
/// required file; optional files are used if present. The returned folder is what the
/// model crates load from.
pub fn resolve_model(
    hub: &HubConfig,
    repo_id: &str,
    revision: Option<&str>,
    required: &[&str],
    optional: &[&str],
) -> Result<PathBuf> {
    let revision = revision.unwrap_or("main");
    let what = format!("model `{repo_id}` (revision {revision})");
    let cached = || -> Result<PathBuf, Vec<String>> {
        let Some(snapshot) = cached_snapshot(&hub.cache_dir, RepoType::Model, repo_id, revision)
        else {
            return Err(required.iter().map(|s| s.to_string()).collect());
        };
        let missing: Vec<String> = required
            .iter()
            .filter(|f| !snapshot.join(f).exists())
            .map(|s| s.to_string())
            .collect();
        if missing.is_empty() {
            Ok(snapshot)
        } else {
            Err(missing)
        }
    };
    let not_cached = |reason: String, missing: Vec<String>| {
        let mut files: Vec<&str> = required.to_vec();
        files.extend(optional.iter().copied());
        Error::NotCached {
            what: if missing.is_empty() {
                what.clone()
            } else {
                format!("{what} (missing: {})", missing.join(", "))
            },
            cache_dir: hub.cache_dir.clone(),
            reason,
            command: format!(
                "scalegrad fetch model {repo_id} --revision {revision}\n    \
                 huggingface-cli download {repo_id} --revision {revision} {}",
                files.join(" ")
            ),
        }
    };
    if let Some(reason) = hub.offline_reason() {
        return cached().map_err(|missing| not_cached(reason, missing));
    }
    #[cfg(feature = "hub")]
    {
        match online::resolve_model(hub, repo_id, revision, required, optional) {
            Ok(dir) => Ok(dir),
            Err(online::OnlineError::Unreachable(reason)) => {
                cached().map_err(|missing| not_cached(reason, missing))
            }
            Err(online::OnlineError::Other(err)) => Err(err),
        }
    }
    #[cfg(not(feature = "hub"))]
    unreachable!("offline_reason is always Some without the hub feature")
}

/// A model folder for `id_or_path`: an existing local directory is returned as is;
/// anything else is a hub repo id, resolved with [`resolve_model`] to a snapshot
/// holding `config.json`, the tokenizer and configuration files the repo has
/// ([`MODEL_CONFIG_FILES`]) and one weights file ([`MODEL_WEIGHT_FILES`], safetensors
/// preferred).
pub fn resolve_model_dir(
    hub: &HubConfig,
    id_or_path: &str,
    revision: Option<&str>,
) -> Result<PathBuf> {
    let path = Path::new(id_or_path);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if path.exists() || id_or_path.starts_with('.') || id_or_path.starts_with('/') {
        return Err(Error::Config(format!(
            "`{id_or_path}` is neither a model directory nor a hub repo id like `distilgpt2` or \
             `org/name`"
        )));
    }
    let offline = hub.offline_reason().is_some();
    // Online, ask for the preferred weights file only when the repo has it; offline, take
    // whichever one the cache holds.
    let mut optional: Vec<&str> = MODEL_CONFIG_FILES.to_vec();
    let weights = if offline {
        let snapshot = cached_snapshot(
            &hub.cache_dir,
            RepoType::Model,
            id_or_path,
            revision.unwrap_or("main"),
        );
        MODEL_WEIGHT_FILES
            .iter()
            .copied()
            .find(|w| snapshot.as_ref().is_some_and(|s| s.join(w).exists()))
            .unwrap_or(MODEL_WEIGHT_FILES[0])
    } else {
        #[cfg(feature = "hub")]
        {
            match online::list_repo_files(hub, RepoType::Model, id_or_path, revision) {
                Ok(files) => MODEL_WEIGHT_FILES
                    .iter()
                    .copied()
                    .find(|w| files.iter().any(|f| f == w))
                    .unwrap_or(MODEL_WEIGHT_FILES[0]),
                Err(_) => MODEL_WEIGHT_FILES[0],
            }
        }
        #[cfg(not(feature = "hub"))]
        MODEL_WEIGHT_FILES[0]
    };
    optional.retain(|f| *f != "config.json");
    let dir = resolve_model(
        hub,
        id_or_path,
        revision,
        &["config.json", weights],
        &optional,
    );
    match dir {
        // Offline or unreachable, a cache holding the other weights format is fine too.
        Err(Error::NotCached { .. }) => {
            for other in MODEL_WEIGHT_FILES.iter().filter(|w| **w != weights) {
                if let Ok(dir) = resolve_model(
                    hub,
                    id_or_path,
                    revision,
                    &["config.json", other],
                    &optional,
                ) {
                    return Ok(dir);
                }
            }
            dir
        }
        other => other,
    }
}

/// Checks a file of an HF cache against its blob name. Large (LFS) files such as
/// parquet shards and weights are stored as `blobs/<sha256 of the content>`; a file that
/// resolves (through its snapshot symlink) to such a blob is hashed and compared, which
/// catches a damaged or partial download that the parquet format itself may not notice
/// (most hub parquet files carry no page checksums). Returns whether a check was made.
pub fn verify_blob(path: &Path) -> Result<bool> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let real = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let in_blobs = real
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "blobs");
    let Some(expected) = real
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| in_blobs && n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Ok(false);
    };
    let mut file = std::fs::File::open(&real).map_err(|e| Error::io(&real, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(&real, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let found = crate::hex::hex(&hasher.finalize());
    if found != expected.to_ascii_lowercase() {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            found,
        });
    }
    Ok(true)
}

/// Whether `rel` (a path inside a dataset repo, with `/` separators) is a parquet shard
/// of `config`/`split`. Accepted layouts: `<config>/<split>-00000-of-00002.parquet`
/// (the main branch of Salesforce/wikitext and abisee/cnn_dailymail),
/// `<config>/<split>/0000.parquet` (the `refs/convert/parquet` branch) and
/// `<config>/<split>.parquet`.
pub fn is_split_shard(rel: &str, config: &str, split: &str) -> bool {
    let Some(rest) = rel.strip_prefix(config).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    let Some(stem) = rest.strip_suffix(".parquet") else {
        return false;
    };
    if stem == split {
        return true;
    }
    if let Some(shard) = stem.strip_prefix(split).and_then(|s| s.strip_prefix('-')) {
        return !shard.contains('/');
    }
    if let Some(file) = stem.strip_prefix(split).and_then(|s| s.strip_prefix('/')) {
        return !file.contains('/');
    }
    false
}

/// The parquet shards of a dataset config's split in a cached snapshot, sorted.
fn cached_dataset_files(
    cache_dir: &Path,
    repo_id: &str,
    config: &str,
    split: &str,
    revision: &str,
) -> Option<Vec<PathBuf>> {
    let snapshot = cached_snapshot(cache_dir, RepoType::Dataset, repo_id, revision)?;
    let mut found = Vec::new();
    for dir in [snapshot.join(config), snapshot.join(config).join(split)] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(&snapshot) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            // `exists` follows the symlink into blobs/, so a dangling link is skipped.
            if is_split_shard(&rel, config, split) && path.exists() {
                found.push(path);
            }
        }
    }
    found.sort();
    (!found.is_empty()).then_some(found)
}

/// The local paths of a dataset config's parquet shards for one split, downloading them
/// into the cache when online.
///
/// Online, the repo's file list comes from the hub API (`/api/datasets/<id>/revision/
/// <rev>`), so shard counts are never hard-coded; offline, the cached snapshot is
/// searched with the same layouts ([`is_split_shard`]).
pub fn dataset_parquet_files(
    hub: &HubConfig,
    repo_id: &str,
    config: &str,
    split: &str,
    revision: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let revision = revision.unwrap_or("main");
    let not_cached = |reason: String| Error::NotCached {
        what: format!(
            "dataset `{repo_id}` config `{config}` split `{split}` (revision {revision})"
        ),
        cache_dir: hub.cache_dir.clone(),
        reason,
        command: format!(
            "scalegrad fetch dataset {repo_id} --config {config} --split {split}\n    \
             huggingface-cli download {repo_id}{} --revision {revision} --include '{config}/{split}-*'",
            RepoType::Dataset.cli_flag()
        ),
    };
    let cached = || cached_dataset_files(&hub.cache_dir, repo_id, config, split, revision);
    if let Some(reason) = hub.offline_reason() {
        return cached().ok_or_else(|| not_cached(reason));
    }
    #[cfg(feature = "hub")]
    {
        match online::dataset_files(hub, repo_id, config, split, revision) {
            Ok(files) => Ok(files),
            Err(online::OnlineError::Unreachable(reason)) => {
                cached().ok_or_else(|| not_cached(reason))
            }
            Err(online::OnlineError::Other(err)) => Err(err),
        }
    }
    #[cfg(not(feature = "hub"))]
    unreachable!("offline_reason is always Some without the hub feature")
}

#[cfg(feature = "hub")]
mod online {
    //! The network side, through `hf-hub`'s blocking (`ureq`) API.

    use std::path::PathBuf;

    use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
    use hf_hub::{Cache, Repo};

    use super::{HubConfig, RepoType, is_split_shard};
    use crate::error::Error;

    /// A failure that either allows falling back to the cache or does not.
    pub(super) enum OnlineError {
        /// The hub could not be reached: use the cache if it has the files.
        Unreachable(String),
        /// The hub answered with an error (missing repo or file, no access...).
        Other(Error),
    }

    fn api(hub: &HubConfig) -> Result<Api, OnlineError> {
        ApiBuilder::from_cache(Cache::new(hub.cache_dir.clone()))
            .with_endpoint(hub.endpoint.clone())
            .with_token(hub.token.clone())
            .with_progress(hub.progress)
            .with_retries(3)
            .build()
            .map_err(|e| classify(&hub.endpoint, "", e))
    }

    fn repo(repo_type: RepoType, repo_id: &str, revision: &str) -> Repo {
        let kind = match repo_type {
            RepoType::Model => hf_hub::RepoType::Model,
            RepoType::Dataset => hf_hub::RepoType::Dataset,
        };
        Repo::with_revision(repo_id.to_string(), kind, revision.to_string())
    }

    /// Sorts an `hf-hub` error into "cannot reach the hub" and "the hub said no".
    fn classify(endpoint: &str, repo_id: &str, err: ApiError) -> OnlineError {
        let status = match &err {
            ApiError::RequestError(e) => match e.as_ref() {
                ureq::Error::StatusCode(code) => Some(*code),
                _ => None,
            },
            ApiError::TooManyRetries(inner) => match inner.as_ref() {
                ApiError::RequestError(e) => match e.as_ref() {
                    ureq::Error::StatusCode(code) => Some(*code),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        match status {
            Some(code @ (401 | 403 | 404)) => OnlineError::Other(Error::Hub {
                repo: repo_id.to_string(),
                message: format!(
                    "HTTP {code} from {endpoint}: check the repo id, file name and revision; \
                     gated or private repos need HF_TOKEN"
                ),
            }),
            Some(code) if code < 500 => OnlineError::Other(Error::Hub {
                repo: repo_id.to_string(),
                message: format!("HTTP {code} from {endpoint}"),
            }),
            _ => match err {
                ApiError::RequestError(_) | ApiError::TooManyRetries(_) => {
                    OnlineError::Unreachable(format!("cannot reach {endpoint}: {err}"))
                }
                other => OnlineError::Other(Error::Hub {
                    repo: repo_id.to_string(),
                    message: other.to_string(),
                }),
            },
        }
    }

    /// The repo's file names at a revision, from the hub API.
    pub(super) fn list_repo_files(
        hub: &HubConfig,
        repo_type: RepoType,
        repo_id: &str,
        revision: Option<&str>,
    ) -> Result<Vec<String>, OnlineError> {
        let api = api(hub)?;
        let info = api
            .repo(repo(repo_type, repo_id, revision.unwrap_or("main")))
            .info()
            .map_err(|e| classify(&hub.endpoint, repo_id, e))?;
        Ok(info.siblings.into_iter().map(|s| s.rfilename).collect())
    }

    /// The snapshot folder a downloaded file lies in: strip the file's own components.
    fn snapshot_of(path: PathBuf, filename: &str) -> PathBuf {
        let depth = filename.split('/').count();
        let mut dir = path;
        for _ in 0..depth {
            dir.pop();
        }
        dir
    }

    pub(super) fn resolve_model(
        hub: &HubConfig,
        repo_id: &str,
        revision: &str,
        required: &[&str],
        optional: &[&str],
    ) -> Result<PathBuf, OnlineError> {
        let files = list_repo_files(hub, RepoType::Model, repo_id, Some(revision))?;
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| !files.iter().any(|f| f == r))
            .collect();
        if !missing.is_empty() {
            return Err(OnlineError::Other(Error::Hub {
                repo: repo_id.to_string(),
                message: format!(
                    "revision {revision} has no {} (it has: {})",
                    missing.join(", "),
                    files.join(", ")
                ),
            }));
        }
        let api = api(hub)?;
        let api_repo = api.repo(repo(RepoType::Model, repo_id, revision));
        let mut snapshot = None;
        for name in required
            .iter()
            .chain(optional.iter().filter(|o| files.iter().any(|f| f == *o)))
        {
            let path = api_repo
                .get(name)
                .map_err(|e| classify(&hub.endpoint, repo_id, e))?;
            snapshot.get_or_insert_with(|| snapshot_of(path, name));
        }
        snapshot.ok_or_else(|| {
            OnlineError::Other(Error::Config(format!(
                "no files requested from model `{repo_id}`"
            )))
        })
    }

    pub(super) fn dataset_files(
        hub: &HubConfig,
        repo_id: &str,
        config: &str,
        split: &str,
        revision: &str,
    ) -> Result<Vec<PathBuf>, OnlineError> {
        let files = list_repo_files(hub, RepoType::Dataset, repo_id, Some(revision))?;
        let mut shards: Vec<&String> = files
            .iter()
            .filter(|f| is_split_shard(f, config, split))
            .collect();
        shards.sort();
        if shards.is_empty() {
            let configs: std::collections::BTreeSet<&str> = files
                .iter()
                .filter(|f| f.ends_with(".parquet"))
                .filter_map(|f| f.split('/').next())
                .collect();
            return Err(OnlineError::Other(Error::NoFiles {
                what: format!("dataset `{repo_id}` config `{config}` split `{split}`"),
                hint: format!(
                    "the hub lists no `{config}/{split}-*.parquet` at revision {revision} \
                     (configs with parquet files: {})",
                    configs.into_iter().collect::<Vec<_>>().join(", ")
                ),
            }));
        }
        let api = api(hub)?;
        let api_repo = api.repo(repo(RepoType::Dataset, repo_id, revision));
        shards
            .into_iter()
            .map(|name| {
                api_repo
                    .get(name)
                    .map_err(|e| classify(&hub.endpoint, repo_id, e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_match_the_hub_layouts() {
        let ok = [
            "wikitext-103-raw-v1/train-00000-of-00002.parquet",
            "wikitext-103-raw-v1/train-00001-of-00002.parquet",
            "wikitext-103-raw-v1/train/0000.parquet",
            "wikitext-103-raw-v1/train.parquet",
        ];
        for rel in ok {
            assert!(is_split_shard(rel, "wikitext-103-raw-v1", "train"), "{rel}");
        }
        let bad = [
            "wikitext-103-raw-v1/test-00000-of-00001.parquet",
            "wikitext-103-v1/train-00000-of-00002.parquet",
            "wikitext-103-raw-v1/train-00000-of-00002.arrow",
            "wikitext-103-raw-v1/train/a/0000.parquet",
            "wikitext-103-raw-v1/trainx.parquet",
            "other/wikitext-103-raw-v1/train.parquet",
        ];
        for rel in bad {
            assert!(
                !is_split_shard(rel, "wikitext-103-raw-v1", "train"),
                "{rel}"
            );
        }
    }

    #[test]
    fn repo_folders_follow_the_hf_naming() {
        let cache = Path::new("/c");
        assert_eq!(
            repo_folder(cache, RepoType::Model, "distilbert/distilgpt2"),
            Path::new("/c/models--distilbert--distilgpt2")
        );
        assert_eq!(
            repo_folder(cache, RepoType::Dataset, "Salesforce/wikitext"),
            Path::new("/c/datasets--Salesforce--wikitext")
        );
    }

    #[test]
    fn offline_values_follow_huggingface_hub() {
        for v in ["1", "true", "TRUE", "yes", "on", " 1 "] {
            assert!(is_truthy(v), "{v}");
        }
        for v in ["0", "false", "no", "off", ""] {
            assert!(!is_truthy(v), "{v}");
        }
    }
}
