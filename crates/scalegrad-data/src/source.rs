//! Dataset sources by name: the hub, the embedded demo data, or local parquet files.
//!
//! An experiment config says, for example,
//!
//! ```toml
//! [data]
//! dataset = "wikitext"
//! config = "wikitext-103-raw-v1"   # hub: Salesforce/wikitext
//! ```
//!
//! or `config = "demo"` for the generated corpora committed under `datasets/`, or
//! `data_dir = "path/to/dir"` for local parquet files. A local directory may hold
//! `<split>.parquet`, `<split>-*.parquet`, `<config>/<split>-*.parquet` or
//! `<config>/<split>/*.parquet`; a path to a single `.parquet` file is used for every
//! split.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hub::{HubConfig, dataset_parquet_files, is_split_shard};

/// The datasets of the two experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetName {
    /// WikiText (`Salesforce/wikitext`): one `text` column.
    Wikitext,
    /// CNN/DailyMail (`abisee/cnn_dailymail`): `article`, `highlights`, `id`.
    CnnDailymail,
}

impl FromStr for DatasetName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wikitext" | "Salesforce/wikitext" => Ok(Self::Wikitext),
            "cnn_dailymail" | "cnn-dailymail" | "abisee/cnn_dailymail" => Ok(Self::CnnDailymail),
            other => Err(Error::UnknownDataset(format!(
                "unknown dataset `{other}`: expected `wikitext` or `cnn_dailymail`"
            ))),
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl DatasetName {
    /// The short name (`wikitext`, `cnn_dailymail`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Wikitext => "wikitext",
            Self::CnnDailymail => "cnn_dailymail",
        }
    }

    /// The hub dataset repository.
    pub fn hub_repo(self) -> &'static str {
        match self {
            Self::Wikitext => "Salesforce/wikitext",
            Self::CnnDailymail => "abisee/cnn_dailymail",
        }
    }

    /// The hub configs (REFERENCE.md §4).
    pub fn hub_configs(self) -> &'static [&'static str] {
        match self {
            Self::Wikitext => &[
                "wikitext-2-raw-v1",
                "wikitext-2-v1",
                "wikitext-103-raw-v1",
                "wikitext-103-v1",
            ],
            Self::CnnDailymail => &["3.0.0"],
        }
    }

    /// The text columns to read: `text`, or `article` and `highlights`.
    pub fn text_columns(self) -> &'static [&'static str] {
        match self {
            Self::Wikitext => &["text"],
            Self::CnnDailymail => &["article", "highlights"],
        }
    }

    /// The splits every config has.
    pub fn splits(self) -> &'static [&'static str] {
        &["train", "validation", "test"]
    }

    /// The demo corpus folder under `datasets/`.
    pub fn demo_folder(self) -> &'static str {
        match self {
            Self::Wikitext => "wikitext-demo",
            Self::CnnDailymail => "cnn_dailymail-demo",
        }
    }
}

/// The workspace's `datasets/` folder (where the demo corpora are committed), found
/// from this crate's source location; `$SCALEGRAD_DATASETS` overrides it (for an
/// installed binary).
pub fn datasets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCALEGRAD_DATASETS").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    dir.canonicalize().unwrap_or(dir)
}

/// Where a dataset's files come from, as written in a config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSource {
    /// `wikitext` or `cnn_dailymail`.
    pub dataset: DatasetName,
    /// A hub config (e.g. `wikitext-103-raw-v1`, `3.0.0`) or `demo`.
    #[serde(default)]
    pub config: Option<String>,
    /// A local folder or parquet file (takes precedence over `config`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// The hub revision (default `main`).
    #[serde(default)]
    pub revision: Option<String>,
}

/// The files of one split and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitFiles {
    /// The parquet files, in reading order.
    pub files: Vec<PathBuf>,
    /// A label for messages and cache names: `<dataset>-<config>-<split>`.
    pub label: String,
    /// `hub`, `demo` or `local`.
    pub origin: &'static str,
}

impl DatasetSource {
    /// A hub source.
    pub fn hub(dataset: DatasetName, config: impl Into<String>) -> Self {
        Self {
            dataset,
            config: Some(config.into()),
            data_dir: None,
            revision: None,
        }
    }

    /// The embedded demo corpus.
    pub fn demo(dataset: DatasetName) -> Self {
        Self::hub(dataset, "demo")
    }

    /// A local folder or file.
    pub fn local(dataset: DatasetName, path: impl Into<PathBuf>) -> Self {
        Self {
            dataset,
            config: None,
            data_dir: Some(path.into()),
            revision: None,
        }
    }

    /// The parquet files of `split`: downloaded or found in the HF cache for a hub
    /// config, found on disk otherwise.
    pub fn split_files(&self, split: &str, hub: &HubConfig) -> Result<SplitFiles> {
        let config = self.config.as_deref();
        if let Some(dir) = &self.data_dir {
            let files = local_split_files(dir, config, split)?;
            return Ok(SplitFiles {
                files,
                label: format!("{}-{}-{split}", self.dataset, config.unwrap_or("local")),
                origin: "local",
            });
        }
        match config {
            Some("demo") => {
                let dir = datasets_dir().join(self.dataset.demo_folder());
                let files = local_split_files(&dir, None, split)?;
                Ok(SplitFiles {
                    files,
                    label: format!("{}-demo-{split}", self.dataset),
                    origin: "demo",
                })
            }
            Some(config) => {
                if !self.dataset.hub_configs().contains(&config) {
                    return Err(Error::UnknownDataset(format!(
                        "unknown {} config `{config}`: expected one of {}, `demo`, or a local \
                         folder (data_dir / --data-dir)",
                        self.dataset,
                        self.dataset.hub_configs().join(", ")
                    )));
                }
                let files = dataset_parquet_files(
                    hub,
                    self.dataset.hub_repo(),
                    config,
                    split,
                    self.revision.as_deref(),
                )?;
                Ok(SplitFiles {
                    files,
                    label: format!("{}-{config}-{split}", self.dataset),
                    origin: "hub",
                })
            }
            None => Err(Error::Config(format!(
                "dataset `{}` needs a config ({}, or `demo`) or a data_dir",
                self.dataset,
                self.dataset.hub_configs().join(", ")
            ))),
        }
    }
}

/// The parquet files of `split` in a local folder (see the module docs for the
/// layouts), or `path` itself when it is a file.
pub fn local_split_files(path: &Path, config: Option<&str>, split: &str) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such parquet file or folder",
            ),
        ));
    }
    let mut found = Vec::new();
    let parquet_files = |dir: &Path| -> Vec<(PathBuf, String)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
            .filter(|(p, n)| p.is_file() && n.ends_with(".parquet"))
            .collect()
    };
    let mut dirs = vec![path.to_path_buf()];
    if let Some(config) = config {
        dirs.push(path.join(config));
    }
    for dir in &dirs {
        // `<split>.parquet` and `<split>-*.parquet` directly in the folder.
        for (file, name) in parquet_files(dir) {
            if is_split_shard(&format!("c/{name}"), "c", split) {
                found.push(file);
            }
        }
        // Every parquet file of a `<split>/` sub-folder.
        found.extend(parquet_files(&dir.join(split)).into_iter().map(|(f, _)| f));
    }
    found.sort();
    found.dedup();
    if found.is_empty() {
        return Err(Error::NoFiles {
            what: format!("split `{split}` in {}", path.display()),
            hint: format!(
                "expected {split}.parquet or {split}-*.parquet there{}",
                config
                    .map(|c| format!(", or under {c}/"))
                    .unwrap_or_default()
            ),
        });
    }
    Ok(found)
}
