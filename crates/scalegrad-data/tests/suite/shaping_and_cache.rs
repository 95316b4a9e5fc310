//! From parquet to windows and seq2seq batches, through the token cache; and the
//! committed demo corpora against their generator.

use std::path::{Path, PathBuf};

use scalegrad_data::cache::TokenArray;
use scalegrad_data::reader::{read_columns, write_string_columns};
use scalegrad_data::source::datasets_dir;
use scalegrad_data::tokenize::CacheStatus;
use scalegrad_data::tokenizer::bert_special_ids;
use scalegrad_data::{
    BatchSampler, DatasetName, DatasetSource, HubConfig, LmWindows, SamplerConfig,
    SummarizationConfig, SummarizationSet, TokenizeOptions, TokenizeSpec, WindowConfig, collate_lm,
    collate_seq2seq, load_tokenizer, tokenize_files,
};
use scalegrad_demo::{news_rows, wikitext_rows, write_news_split, write_wikitext_split};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn options(cache: Option<&Path>) -> TokenizeOptions {
    TokenizeOptions {
        cache_dir: cache.map(Path::to_path_buf),
        progress: false,
        batch_rows: 64,
        fast_bpe: true,
    }
}

#[test]
fn committed_demo_data_is_what_the_generator_writes() {
    let hub = HubConfig::with_cache_dir("/nonexistent").offline(true);
    let wiki = DatasetSource::demo(DatasetName::Wikitext)
        .split_files("test", &hub)
        .unwrap();
    assert_eq!(wiki.origin, "demo");
    let rows = read_columns(&wiki.files, &["text"]).unwrap().remove(0);
    assert_eq!(
        rows,
        wikitext_rows(103, 60),
        "rerun `cargo run -p scalegrad-demo --example make_demo_data`"
    );
    let news = DatasetSource::demo(DatasetName::CnnDailymail)
        .split_files("test", &hub)
        .unwrap();
    let cols = read_columns(&news.files, &["article", "highlights", "id"]).unwrap();
    let expected = news_rows(203, 300);
    assert_eq!(cols[0].len(), 300);
    for (i, row) in expected.iter().enumerate() {
        assert_eq!(
            (&cols[0][i], &cols[1][i], &cols[2][i]),
            (&row.article, &row.highlights, &row.id)
        );
    }
    assert!(
        datasets_dir().join("README.md").exists(),
        "datasets/README.md describes them"
    );
    // Byte for byte, as datasets/README.md says (the test splits; the others are
    // written the same way).
    let tmp = tempfile::tempdir().unwrap();
    let written = [
        write_wikitext_split(tmp.path(), "test").unwrap(),
        write_news_split(tmp.path(), "test").unwrap(),
    ];
    for split in written {
        let committed = datasets_dir().join(split.path.strip_prefix(tmp.path()).unwrap());
        assert!(
            std::fs::read(&split.path).unwrap() == std::fs::read(&committed).unwrap(),
            "{} is not what the generator writes: rerun `cargo run -p scalegrad-demo \
             --example make_demo_data`",
            committed.display()
        );
    }
}

#[test]
fn lm_stream_is_the_rows_tokenised_one_by_one_and_concatenated() {
    let tok = load_tokenizer(&fixtures().join("tiny-gpt2")).unwrap();
    let files = vec![datasets_dir().join("wikitext-demo/validation.parquet")];
    let (split, status) = tokenize_files(
        &files,
        &tok,
        &TokenizeSpec::lm_text(),
        &options(None),
        "demo-val",
    )
    .unwrap();
    assert_eq!(status, CacheStatus::Disabled);
    let rows = read_columns(&files, &["text"]).unwrap().remove(0);
    let mut expected = Vec::new();
    for row in &rows {
        expected.extend_from_slice(tok.encode(row.as_str(), false).unwrap().get_ids());
    }
    let text = split.column("text").unwrap();
    assert!(
        matches!(text.rows.tokens, TokenArray::U16(_)),
        "vocab 1000 packs into u16"
    );
    assert_eq!(text.rows.tokens.to_vec(0..text.rows.tokens.len()), expected);
    assert_eq!(text.rows.num_rows(), rows.len());
    assert_eq!(text.rows.row_len(0), 0, "the first WikiText row is blank");
    // The ids-only BPE path and tokenizers' full pipeline give the same split.
    let mut full = options(None);
    full.fast_bpe = false;
    let (slow, _) =
        tokenize_files(&files, &tok, &TokenizeSpec::lm_text(), &full, "demo-val").unwrap();
    assert_eq!(slow, split);

    let block = 64;
    let windows = LmWindows::new(&text.rows.tokens, WindowConfig::new(block)).unwrap();
    assert_eq!(windows.len(), (expected.len() - (block + 1)) / block + 1);
    let w1 = windows.get(1);
    let want: Vec<u32> = expected[block..2 * block].to_vec();
    assert_eq!(w1.input_ids, want);
    assert_eq!(w1.targets[block - 1], expected[2 * block] as i64);

    let sampler = BatchSampler::new(windows.len(), SamplerConfig::shuffled(4, 7)).unwrap();
    let (_, idx) = sampler.batches_from(Default::default()).next().unwrap();
    let batch = collate_lm(&windows, idx.clone());
    assert_eq!((batch.batch_size, batch.seq_len), (4, block));
    assert_eq!(batch.input_ids.len(), 4 * block);
    assert_eq!(
        batch.input_ids[block],
        windows.get(idx[1]).input_ids[0] as i64
    );
}

#[test]
fn summarization_examples_match_hf_truncated_encodings() {
    let tok = load_tokenizer(&fixtures().join("bert-uncased")).unwrap();
    let ids = bert_special_ids(&tok).unwrap();
    let mut config = SummarizationConfig::bert(&ids);
    config.max_source_len = 40;
    config.max_target_len = 12;
    let files = vec![fixtures().join("cnn-20.parquet")];
    let (split, _) = tokenize_files(
        &files,
        &tok,
        &config.tokenize_spec(),
        &options(None),
        "cnn20",
    )
    .unwrap();
    let set = SummarizationSet::new(&split, config).unwrap();
    assert_eq!(set.len(), 20);
    let cols = read_columns(&files, &["article", "highlights"]).unwrap();
    for (i, (article_text, highlights_text)) in cols[0].iter().zip(&cols[1]).enumerate() {
        let e = set.get(i);
        // HF: tokenizer(article, truncation=True, max_length=40)["input_ids"].
        let mut article = tok
            .encode(article_text.as_str(), true)
            .unwrap()
            .get_ids()
            .to_vec();
        if article.len() > 40 {
            article.truncate(39);
            article.push(ids.sep);
        }
        assert_eq!(e.input_ids, article, "row {i}");
        // Labels: highlight ids without [CLS], ending in [SEP], at most 12.
        let h = tok
            .encode(highlights_text.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        let mut labels: Vec<u32> = h.into_iter().take(11).collect();
        labels.push(ids.sep);
        assert_eq!(e.labels, labels, "row {i}");
        assert_eq!(e.decoder_input_ids[0], 101, "decoder start is [CLS]");
        assert_eq!(&e.decoder_input_ids[1..], &labels[..labels.len() - 1]);
    }
    // Bucketed batches pad to their longest member; labels pad with -100.
    let lengths: Vec<usize> = (0..set.len()).map(|i| set.source_len(i)).collect();
    let mut sc = SamplerConfig::shuffled(4, 1);
    sc.bucket_batches = Some(5);
    let sampler = BatchSampler::with_lengths(lengths, sc).unwrap();
    for batch in sampler.epoch(0) {
        let examples: Vec<_> = batch.iter().map(|&i| set.get(i)).collect();
        let b = collate_seq2seq(&examples, ids.pad, batch.clone());
        let longest = examples.iter().map(|e| e.input_ids.len()).max().unwrap();
        assert_eq!(b.source_len, longest);
        let pads = b.labels.iter().filter(|&&l| l == -100).count();
        let real: usize = examples.iter().map(|e| e.labels.len()).sum();
        assert_eq!(pads + real, b.batch_size * b.target_len);
    }
}

#[test]
fn cache_hits_misses_invalidation_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let data = dir.path().join("train.parquet");
    let rows: Vec<String> = wikitext_rows(5, 3);
    write_string_columns(&data, &[("text", &rows)], 100).unwrap();
    let gpt = load_tokenizer(&fixtures().join("tiny-gpt2")).unwrap();
    let spec = TokenizeSpec::lm_text();
    let opts = options(Some(&cache));
    let files = vec![data.clone()];

    let (built, s1) = tokenize_files(&files, &gpt, &spec, &opts, "demo-train").unwrap();
    let path = match &s1 {
        CacheStatus::Built(p) => p.clone(),
        other => panic!("first run builds: {other:?}"),
    };
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("demo-train-")
    );
    let (hit, s2) = tokenize_files(&files, &gpt, &spec, &opts, "demo-train").unwrap();
    assert_eq!(s2, CacheStatus::Hit(path.clone()));
    assert_eq!(hit, built);

    // Another tokenizer, other settings, or changed data: another cache file.
    let bert = load_tokenizer(&fixtures().join("bert-uncased")).unwrap();
    let (_, s3) = tokenize_files(&files, &bert, &spec, &opts, "demo-train").unwrap();
    let mut truncated = spec.clone();
    truncated.columns[0].max_tokens = Some(5);
    let (t, s4) = tokenize_files(&files, &gpt, &truncated, &opts, "demo-train").unwrap();
    assert!(t.column("text").unwrap().rows.row_len(1) <= 5);
    let more: Vec<String> = wikitext_rows(5, 4);
    write_string_columns(&data, &[("text", &more)], 100).unwrap();
    let (changed, s5) = tokenize_files(&files, &gpt, &spec, &opts, "demo-train").unwrap();
    assert!(changed.num_rows() > built.num_rows());
    let paths: Vec<_> = [&s3, &s4, &s5]
        .iter()
        .map(|s| s.path().unwrap().to_path_buf())
        .collect();
    for (i, p) in paths.iter().enumerate() {
        assert!(matches!([&s3, &s4, &s5][i], CacheStatus::Built(_)));
        assert_ne!(p, &path);
    }

    // A damaged cache file is rebuilt (with a warning) and gives the same tokens.
    let p5 = paths[2].clone();
    let bytes = std::fs::read(&p5).unwrap();
    std::fs::write(&p5, &bytes[..bytes.len() - 3]).unwrap();
    let (rebuilt, s6) = tokenize_files(&files, &gpt, &spec, &opts, "demo-train").unwrap();
    match s6 {
        CacheStatus::Rebuilt { path, reason } => {
            assert_eq!(path, p5);
            assert!(reason.contains("truncated"), "{reason}");
        }
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(rebuilt, changed);
    assert_eq!(
        std::fs::read(&p5).unwrap().len(),
        bytes.len(),
        "rewritten whole"
    );
}
