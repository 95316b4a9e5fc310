//! The HF cache layout, offline use, the "not cached" error, and downloads through
//! `hf-hub` from a local mock of the hub's HTTP API (relative and CDN redirects, range
//! requests), followed by offline reads of what was downloaded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use scalegrad_data::hub::{HubConfig, dataset_parquet_files, resolve_model, resolve_model_dir};
use scalegrad_data::reader::read_columns;
use scalegrad_data::{DatasetName, DatasetSource, Error, load_tokenizer};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Puts `content` into the cache as huggingface_hub does: a blob plus a relative
/// symlink from the snapshot, and `refs/main`.
fn cache_file(cache: &Path, repo_folder: &str, rel: &str, content: &[u8]) {
    let repo = cache.join(repo_folder);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), SHA).unwrap();
    let blob = repo.join("blobs").join(format!("blob{}", content.len()));
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, content).unwrap();
    let link = repo.join("snapshots").join(SHA).join(rel);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&blob, &link).unwrap();
}

fn wikitext_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let parquet = std::fs::read(fixtures().join("wikitext-20.parquet")).unwrap();
    let folder = "datasets--Salesforce--wikitext";
    cache_file(
        dir.path(),
        folder,
        "wikitext-2-raw-v1/test-00000-of-00001.parquet",
        &parquet,
    );
    cache_file(
        dir.path(),
        folder,
        "wikitext-2-raw-v1/train-00001-of-00002.parquet",
        &parquet[..],
    );
    cache_file(
        dir.path(),
        folder,
        "wikitext-2-raw-v1/train-00000-of-00002.parquet",
        &parquet,
    );
    cache_file(
        dir.path(),
        folder,
        "wikitext-103-raw-v1/train-00000-of-00001.parquet",
        &parquet,
    );
    dir
}

#[test]
fn offline_dataset_shards_come_from_the_snapshot_in_order() {
    let cache = wikitext_cache();
    let hub = HubConfig::with_cache_dir(cache.path()).offline(true);
    let files = dataset_parquet_files(
        &hub,
        "Salesforce/wikitext",
        "wikitext-2-raw-v1",
        "train",
        None,
    )
    .unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "train-00000-of-00002.parquet",
            "train-00001-of-00002.parquet"
        ]
    );
    // The same through a named source, and the rows are readable through the links.
    let source = DatasetSource::hub(DatasetName::Wikitext, "wikitext-2-raw-v1");
    let split = source.split_files("test", &hub).unwrap();
    assert_eq!(split.origin, "hub");
    assert_eq!(read_columns(&split.files, &["text"]).unwrap()[0].len(), 20);
}

#[test]
fn offline_model_snapshot_resolves_and_loads_its_tokenizer() {
    let cache = tempfile::tempdir().unwrap();
    let folder = "models--mrm8488--bert-small2bert-small-finetuned-cnn_daily_mail-summarization";
    let vocab = std::fs::read(fixtures().join("bert-uncased/vocab.txt")).unwrap();
    cache_file(cache.path(), folder, "vocab.txt", &vocab);
    cache_file(cache.path(), folder, "config.json", b"{}");
    cache_file(cache.path(), folder, "pytorch_model.bin", b"weights");
    let hub = HubConfig::with_cache_dir(cache.path()).offline(true);
    let id = "mrm8488/bert-small2bert-small-finetuned-cnn_daily_mail-summarization";
    let dir = resolve_model_dir(&hub, id, None).unwrap();
    assert!(
        dir.ends_with(format!("snapshots/{SHA}")),
        "{}",
        dir.display()
    );
    let tok = load_tokenizer(&dir).unwrap();
    assert_eq!(tok.token_to_id("[CLS]"), Some(101));
    // A commit sha works as the revision too.
    assert_eq!(resolve_model_dir(&hub, id, Some(SHA)).unwrap(), dir);
    // A local directory passes through untouched.
    let local = fixtures().join("tiny-gpt2");
    assert_eq!(
        resolve_model_dir(&hub, local.to_str().unwrap(), None).unwrap(),
        local
    );
}

#[test]
fn empty_cache_offline_explains_how_to_fill_it() {
    let cache = tempfile::tempdir().unwrap();
    let hub = HubConfig::with_cache_dir(cache.path()).offline(true);
    let err = resolve_model(
        &hub,
        "distilgpt2",
        None,
        &["config.json"],
        &["tokenizer.json"],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotCached { .. }), "{msg}");
    for needle in [
        "model `distilgpt2`",
        "offline mode",
        "scalegrad fetch model distilgpt2",
        "huggingface-cli download distilgpt2",
        "HF_HOME",
        &cache.path().display().to_string(),
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in: {msg}");
    }
    let err = dataset_parquet_files(&hub, "abisee/cnn_dailymail", "3.0.0", "test", None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--repo-type dataset") && err.contains("3.0.0/test-*"),
        "{err}"
    );
}

#[test]
fn unreachable_hub_falls_back_to_the_cache_or_says_both_failed() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let cache = wikitext_cache();
    let hub = HubConfig::with_cache_dir(cache.path())
        .endpoint("http://127.0.0.1:9")
        .progress(false);
    let files = dataset_parquet_files(
        &hub,
        "Salesforce/wikitext",
        "wikitext-2-raw-v1",
        "test",
        None,
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    let err = dataset_parquet_files(&hub, "Salesforce/wikitext", "wikitext-103-v1", "test", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot reach http://127.0.0.1:9"), "{err}");
    assert!(err.contains("scalegrad fetch dataset"), "{err}");
}

#[test]
fn unknown_config_is_rejected_before_any_lookup() {
    let hub = HubConfig::with_cache_dir("/nonexistent").offline(true);
    let err = DatasetSource::hub(DatasetName::CnnDailymail, "2.0.0")
        .split_files("test", &hub)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown cnn_dailymail config `2.0.0`") && err.contains("3.0.0"),
        "{err}"
    );
}

/// A minimal stand-in for the hub: the repo-info API, `resolve` URLs that redirect
/// first to a relative path (as the hub does for renamed repos) and then to a "CDN"
/// path (as it does for LFS/Xet files), which serves byte ranges.
fn mock_hub(files: Vec<(String, Vec<u8>)>, token: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let base2 = base.clone();
    std::thread::spawn(move || {
        // Bounded: a test makes a few dozen requests at most.
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut range = None;
            let mut authorized = false;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                // Header names are case-insensitive (ureq sends them in lower case).
                if h.trim_end().to_ascii_lowercase() == format!("authorization: bearer {token}") {
                    authorized = true;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let (a, b) = v.trim().split_once('-').unwrap();
                    range = Some((a.parse::<usize>().unwrap(), b.parse::<usize>().ok()));
                }
            }
            let respond = |stream: &mut std::net::TcpStream,
                           status: &str,
                           headers: &[(String, String)],
                           body: &[u8]| {
                let mut head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            };
            let repo = "/datasets/org/data";
            if path.starts_with("/api/") && !authorized {
                // A gated repo: the API answers 401 without the right token.
                respond(&mut stream, "401 Unauthorized", &[], b"");
            } else if path == "/api/datasets/org/data/revision/main" {
                let siblings: Vec<String> = files
                    .iter()
                    .map(|(n, _)| format!("{{\"rfilename\": \"{n}\"}}"))
                    .chain(["{\"rfilename\": \"README.md\"}".to_string()])
                    .collect();
                let body = format!(
                    "{{\"sha\": \"{SHA}\", \"siblings\": [{}]}}",
                    siblings.join(",")
                );
                respond(&mut stream, "200 OK", &[], body.as_bytes());
            } else if let Some(name) = path.strip_prefix(&format!("{repo}/resolve/main/")) {
                let to = format!("{repo}/resolve/{SHA}/{name}");
                respond(
                    &mut stream,
                    "307 Temporary Redirect",
                    &[("Location".into(), to)],
                    b"",
                );
            } else if let Some(name) = path.strip_prefix(&format!("{repo}/resolve/{SHA}/")) {
                let headers = [
                    ("Location".to_string(), format!("{base2}/cdn/{name}")),
                    ("X-Repo-Commit".to_string(), SHA.to_string()),
                    (
                        "X-Linked-Etag".to_string(),
                        format!("\"etag-{}\"", name.replace('/', "-")),
                    ),
                ];
                respond(&mut stream, "302 Found", &headers, b"");
            } else if let Some(name) = path.strip_prefix("/cdn/") {
                let Some((_, data)) = files.iter().find(|(n, _)| n == name) else {
                    respond(&mut stream, "404 Not Found", &[], b"");
                    continue;
                };
                let (a, b) = range.unwrap_or((0, None));
                let b = b.unwrap_or(data.len() - 1).min(data.len() - 1);
                let headers = [(
                    "Content-Range".to_string(),
                    format!("bytes {a}-{b}/{}", data.len()),
                )];
                respond(&mut stream, "206 Partial Content", &headers, &data[a..=b]);
            } else {
                respond(&mut stream, "404 Not Found", &[], b"");
            }
            let _ = reader.read(&mut [0u8; 0]);
        }
    });
    base
}

#[test]
fn downloads_through_redirects_land_in_the_cache_and_then_work_offline() {
    let parquet = std::fs::read(fixtures().join("wikitext-20.parquet")).unwrap();
    let files = vec![
        (
            "cfg/test-00000-of-00001.parquet".to_string(),
            parquet.clone(),
        ),
        (
            "cfg/train-00000-of-00001.parquet".to_string(),
            parquet.clone(),
        ),
    ];
    let endpoint = mock_hub(files, "hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let mut online = HubConfig::with_cache_dir(cache.path())
        .endpoint(endpoint)
        .progress(false);
    // Without the token, the gated repo's 401 is a hub error naming HF_TOKEN, not a
    // fallback to the (empty) cache.
    let err = dataset_parquet_files(&online, "org/data", "cfg", "test", None).unwrap_err();
    assert!(matches!(err, Error::Hub { .. }), "{err}");
    assert!(
        err.to_string().contains("HTTP 401") && err.to_string().contains("HF_TOKEN"),
        "{err}"
    );
    online.token = Some("hf_secret".into());
    let got = dataset_parquet_files(&online, "org/data", "cfg", "test", None).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        std::fs::read(&got[0]).unwrap(),
        parquet,
        "downloaded bytes intact"
    );
    let expected = cache.path().join(format!(
        "datasets--org--data/snapshots/{SHA}/cfg/test-00000-of-00001.parquet"
    ));
    assert_eq!(got[0], expected, "standard cache layout");
    assert_eq!(
        std::fs::read_to_string(cache.path().join("datasets--org--data/refs/main")).unwrap(),
        SHA
    );
    // Missing split: the hub's file list says so, with the configs it has.
    let err = dataset_parquet_files(&online, "org/data", "cfg", "validation", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("configs with parquet files: cfg"), "{err}");
    // Offline, the same call finds the downloaded file.
    let offline = HubConfig::with_cache_dir(cache.path()).offline(true);
    assert_eq!(
        dataset_parquet_files(&offline, "org/data", "cfg", "test", None).unwrap(),
        got
    );
    assert_eq!(read_columns(&got, &["text"]).unwrap()[0].len(), 20);
}
