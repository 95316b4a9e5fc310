//! Loading, building and training tokenizers.
//!
//! [`load_tokenizer`] is what the model crates and the CLI call with a model folder:
//!
//! - with a `tokenizer.json` (distilgpt2 and most repos), that file is loaded as is;
//! - with only a `vocab.txt` (the bert2bert checkpoint, REFERENCE.md §2), the BERT
//!   WordPiece pipeline that HF `BertTokenizerFast` builds (transformers 5,
//!   `models/bert/tokenization_bert.py`) is assembled here from the vocabulary and
//!   `tokenizer_config.json` / `special_tokens_map.json`:
//!   `BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)`,
//!   `BertPreTokenizer`, `WordPiece(unk, "##", max_input_chars_per_word = 100)`, the
//!   `[CLS] $A [SEP]` / `[CLS] $A [SEP] $B [SEP]` template, the special tokens
//!   registered as special (so `decode(.., true)` skips them) and the `WordPiece("##")`
//!   decoder. When the config sets `clean_up_tokenization_spaces` (transformers 5
//!   defaults it to false), the Python-side clean-up (`" ." -> "."`, `" ' " -> "'"`,
//!   `" n't" -> "n't"`, ...) is appended to the decoder as `Fuse` + `Replace` steps, so
//!   the returned [`Tokenizer`] decodes exactly like `tokenizer.decode(ids,
//!   skip_special_tokens=True)` with no Python-side step left over.
//!
//! Special-token ids come from the vocabulary: `[PAD]` = 0, `[UNK]` = 100, `[CLS]` = 101,
//! `[SEP]` = 102, `[MASK]` = 103 for bert-base-uncased and its relatives.
//!
//! The trainers ([`train_bpe_tokenizer`], [`train_wordpiece_tokenizer`]) build the same
//! pipelines as GPT-2's and BERT's and return tokenizers that save as `tokenizer.json`.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::ModelWrapper;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::tokenizer::{
    NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
};
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

/// The builder of the dynamic `tokenizers::Tokenizer` pipeline.
type Builder = TokenizerBuilder<
    ModelWrapper,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

use crate::error::{Error, Result};

/// GPT-2's end-of-text token.
pub const GPT2_EOS: &str = "<|endoftext|>";

/// The Python-side clean-up of `PreTrainedTokenizerBase.clean_up_tokenization`, in order.
pub const CLEAN_UP_REPLACEMENTS: &[(&str, &str)] = &[
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
];

/// The settings of a BERT WordPiece tokenizer, as `tokenizer_config.json` and
/// `special_tokens_map.json` give them (defaults are `BertTokenizerFast`'s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BertTokenizerConfig {
    /// Lower-case the input (`do_lower_case`, default true).
    pub do_lower_case: bool,
    /// Strip accents (`strip_accents`); `None` follows `do_lower_case`.
    pub strip_accents: Option<bool>,
    /// Put spaces around CJK characters (`tokenize_chinese_chars`, default true).
    pub tokenize_chinese_chars: bool,
    /// The unknown token (`[UNK]`).
    pub unk_token: String,
    /// The separator token (`[SEP]`).
    pub sep_token: String,
    /// The padding token (`[PAD]`).
    pub pad_token: String,
    /// The classifier / start token (`[CLS]`).
    pub cls_token: String,
    /// The mask token (`[MASK]`).
    pub mask_token: String,
    /// Apply the Python-side decode clean-up (`clean_up_tokenization_spaces`; default
    /// false, as in transformers 5).
    pub clean_up_tokenization_spaces: bool,
}

impl Default for BertTokenizerConfig {
    fn default() -> Self {
        Self {
            do_lower_case: true,
            strip_accents: None,
            tokenize_chinese_chars: true,
            unk_token: "[UNK]".into(),
            sep_token: "[SEP]".into(),
            pad_token: "[PAD]".into(),
            cls_token: "[CLS]".into(),
            mask_token: "[MASK]".into(),
            clean_up_tokenization_spaces: false,
        }
    }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A token setting: a plain string or an `AddedToken` object with a `content` field.
fn token_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map.get("content").and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

impl BertTokenizerConfig {
    /// Reads `tokenizer_config.json` and `special_tokens_map.json` from `model_dir`
    /// (both optional; `tokenizer_config.json` wins where both set a token).
    pub fn from_dir(model_dir: &Path) -> Result<Self> {
        let mut config = Self::default();
        let special = read_json(&model_dir.join("special_tokens_map.json"))?;
        let tokenizer = read_json(&model_dir.join("tokenizer_config.json"))?;
        for source in [special.as_ref(), tokenizer.as_ref()].into_iter().flatten() {
            let path = model_dir.display();
            let get_bool = |key: &str| -> Result<Option<bool>> {
                match source.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Bool(b)) => Ok(Some(*b)),
                    Some(other) => Err(Error::Config(format!(
                        "{path}: `{key}` must be true, false or null, got {other}"
                    ))),
                }
            };
            if let Some(b) = get_bool("do_lower_case")? {
                config.do_lower_case = b;
            }
            if source.get("strip_accents").is_some() {
                config.strip_accents = get_bool("strip_accents")?;
            }
            if let Some(b) = get_bool("tokenize_chinese_chars")? {
                config.tokenize_chinese_chars = b;
            }
            if let Some(b) = get_bool("clean_up_tokenization_spaces")? {
                config.clean_up_tokenization_spaces = b;
            }
            for (key, slot) in [
                ("unk_token", &mut config.unk_token),
                ("sep_token", &mut config.sep_token),
                ("pad_token", &mut config.pad_token),
                ("cls_token", &mut config.cls_token),
                ("mask_token", &mut config.mask_token),
            ] {
                if let Some(token) = source.get(key).and_then(token_value) {
                    *slot = token;
                }
            }
        }
        Ok(config)
    }
}

/// The tokenizer of a model folder: `tokenizer.json` when present, else the BERT
/// WordPiece tokenizer built from `vocab.txt` (see the module docs). Errors name the
/// folder and the files looked for.
pub fn load_tokenizer(model_dir: &Path) -> Result<Tokenizer> {
    let json = model_dir.join("tokenizer.json");
    if json.is_file() {
        let mut tokenizer = Tokenizer::from_file(&json)
            .map_err(|e| Error::tokenizer(format!("loading {}", json.display()), e))?;
        // A WordPiece tokenizer.json decodes like BertTokenizerFast only with the
        // configured Python-side clean-up; GPT-2's BPE skips it (transformers 5).
        if matches!(tokenizer.get_model(), ModelWrapper::WordPiece(_))
            && BertTokenizerConfig::from_dir(model_dir)?.clean_up_tokenization_spaces
        {
            let decoder = tokenizer
                .get_decoder()
                .cloned()
                .unwrap_or_else(|| WordPieceDecoder::default().into());
            tokenizer.with_decoder(Some(with_clean_up(decoder)?));
        }
        return Ok(tokenizer);
    }
    let vocab = model_dir.join("vocab.txt");
    if vocab.is_file() {
        let config = BertTokenizerConfig::from_dir(model_dir)?;
        return bert_tokenizer_from_vocab(&vocab, &config);
    }
    if !model_dir.is_dir() {
        return Err(Error::io(
            model_dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such model directory"),
        ));
    }
    Err(Error::tokenizer(
        format!("in {}", model_dir.display()),
        "neither tokenizer.json nor vocab.txt found (a GPT-2 repo ships tokenizer.json, a \
         BERT repo at least vocab.txt)"
            .into(),
    ))
}

/// Appends the Python-side clean-up to a decoder: `Fuse` joins the tokens into one
/// string, then one `Replace` per [`CLEAN_UP_REPLACEMENTS`] entry, in order, like
/// Python's chained `str.replace` calls.
fn with_clean_up(decoder: DecoderWrapper) -> Result<DecoderWrapper> {
    let mut steps = vec![decoder, Fuse::new().into()];
    for (from, to) in CLEAN_UP_REPLACEMENTS {
        let replace = Replace::new(*from, *to)
            .map_err(|e| Error::tokenizer("building the decode clean-up", e))?;
        steps.push(DecoderWrapper::Replace(replace));
    }
    Ok(DecoderSequence::new(steps).into())
}

/// The BERT template processor: `[CLS] $A [SEP]` and `[CLS] $A [SEP] $B [SEP]` (type
/// ids 0, then 1 for the second sequence), with the special ids of `tokenizer`.
fn bert_template(cls: (&str, u32), sep: (&str, u32)) -> Result<TemplateProcessing> {
    let (cls_token, sep_token) = (cls.0, sep.0);
    TemplateProcessing::builder()
        .try_single(format!("{cls_token}:0 $A:0 {sep_token}:0"))
        .and_then(|b| {
            b.try_pair(format!(
                "{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1"
            ))
        })
        .map_err(|e| Error::tokenizer("building the BERT template", e.into()))?
        .special_tokens(vec![
            (cls_token.to_string(), cls.1),
            (sep_token.to_string(), sep.1),
        ])
        .build()
        .map_err(|e| Error::tokenizer("building the BERT template", e.to_string().into()))
}

/// Builds the `BertTokenizerFast` pipeline from a `vocab.txt` (one token per line, the
/// line number is the id, as `WordPiece.read_file` reads it).
pub fn bert_tokenizer_from_vocab(vocab: &Path, config: &BertTokenizerConfig) -> Result<Tokenizer> {
    let context = || format!("building BERT WordPiece from {}", vocab.display());
    let vocab_str = vocab
        .to_str()
        .ok_or_else(|| Error::Config(format!("{}: path is not valid UTF-8", vocab.display())))?;
    let model = WordPiece::from_file(vocab_str)
        .unk_token(config.unk_token.clone())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| Error::tokenizer(context(), e))?;
    let lookup = |token: &str| -> Result<u32> {
        tokenizers::Model::token_to_id(&model, token).ok_or_else(|| {
            Error::Config(format!(
                "{}: special token `{token}` is not in the vocabulary",
                vocab.display()
            ))
        })
    };
    let cls = lookup(&config.cls_token)?;
    let sep = lookup(&config.sep_token)?;
    lookup(&config.unk_token)?;
    let decoder: DecoderWrapper = WordPieceDecoder::new("##".into(), true).into();
    let decoder = if config.clean_up_tokenization_spaces {
        with_clean_up(decoder)?
    } else {
        decoder
    };
    let template = bert_template((&config.cls_token, cls), (&config.sep_token, sep))?;
    let mut tokenizer: Tokenizer = Builder::new()
        .with_model(model.into())
        .with_normalizer(Some(
            BertNormalizer::new(
                true,
                config.tokenize_chinese_chars,
                config.strip_accents,
                config.do_lower_case,
            )
            .into(),
        ))
        .with_pre_tokenizer(Some(BertPreTokenizer.into()))
        .with_post_processor(Some(template.into()))
        .with_decoder(Some(decoder))
        .build()
        .map_err(|e| Error::tokenizer(context(), e))?
        .into();
    let mut specials: Vec<AddedToken> = Vec::new();
    for token in [
        &config.pad_token,
        &config.unk_token,
        &config.cls_token,
        &config.sep_token,
        &config.mask_token,
    ] {
        if !specials.iter().any(|t| &t.content == token) {
            specials.push(AddedToken::from(token.clone(), true));
        }
    }
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| Error::tokenizer(context(), e))?;
    Ok(tokenizer)
}

/// The ids of BERT's special tokens in a tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BertSpecialIds {
    /// `[PAD]`.
    pub pad: u32,
    /// `[UNK]`.
    pub unk: u32,
    /// `[CLS]` (also BERT2BERT's decoder start token).
    pub cls: u32,
    /// `[SEP]` (also BERT2BERT's end-of-sequence token).
    pub sep: u32,
    /// `[MASK]`.
    pub mask: u32,
}

/// Looks up `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]` and `[MASK]`.
pub fn bert_special_ids(tokenizer: &Tokenizer) -> Result<BertSpecialIds> {
    let id = |token: &str| {
        tokenizer.token_to_id(token).ok_or_else(|| {
            Error::Config(format!(
                "the tokenizer has no `{token}` token; is it a BERT tokenizer?"
            ))
        })
    };
    Ok(BertSpecialIds {
        pad: id("[PAD]")?,
        unk: id("[UNK]")?,
        cls: id("[CLS]")?,
        sep: id("[SEP]")?,
        mask: id("[MASK]")?,
    })
}

/// Trains a GPT-2 style byte-level BPE tokenizer: byte-level pre-tokenizer (GPT-2's
/// regex, no prefix space), BPE with the 256-byte initial alphabet, byte-level
/// post-processor and decoder, and `<|endoftext|>` as the last id (as in GPT-2, where it
/// is 50256). `vocab_size` counts `<|endoftext|>`; the result is smaller when the text
/// runs out of merges. Pairs seen fewer than `min_frequency` times are not merged.
pub fn train_bpe_tokenizer<I, S>(
    texts: I,
    vocab_size: usize,
    min_frequency: u64,
) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    if vocab_size < 257 {
        return Err(Error::Config(format!(
            "a byte-level BPE needs a vocabulary of at least 257 (256 bytes + {GPT2_EOS}), got \
             {vocab_size}"
        )));
    }
    let context = "training a byte-level BPE";
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size - 1)
        .min_frequency(min_frequency)
        .show_progress(false)
        .initial_alphabet(alphabet)
        .build()
        .into();
    let mut tokenizer: Tokenizer = Builder::new()
        .with_model(BPE::default().into())
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true).into()))
        .with_post_processor(Some(ByteLevel::new(true, false, true).into()))
        .with_decoder(Some(ByteLevelDecoder::new(true, true, true).into()))
        .build()
        .map_err(|e| Error::tokenizer(context, e))?
        .into();
    tokenizer
        .train(&mut trainer, texts)
        .map_err(|e| Error::tokenizer(context, e))?;
    tokenizer
        .add_special_tokens([AddedToken::from(GPT2_EOS, true)])
        .map_err(|e| Error::tokenizer(context, e))?;
    Ok(tokenizer)
}

/// Trains a BERT-style uncased WordPiece tokenizer: `[PAD]` = 0, `[UNK]` = 1, `[CLS]` =
/// 2, `[SEP]` = 3, `[MASK]` = 4, then the learned pieces (`##` continuations), with the
/// same normaliser, pre-tokenizer, template and decoder as [`bert_tokenizer_from_vocab`].
/// `vocab_size` counts the special tokens.
pub fn train_wordpiece_tokenizer<I, S>(
    texts: I,
    vocab_size: usize,
    min_frequency: u64,
) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let context = "training a WordPiece";
    let config = BertTokenizerConfig::default();
    let specials: Vec<AddedToken> = [
        &config.pad_token,
        &config.unk_token,
        &config.cls_token,
        &config.sep_token,
        &config.mask_token,
    ]
    .into_iter()
    .map(|t| AddedToken::from(t.clone(), true))
    .collect();
    if vocab_size <= specials.len() {
        return Err(Error::Config(format!(
            "a WordPiece vocabulary needs more than the {} special tokens, got {vocab_size}",
            specials.len()
        )));
    }
    let normalizer = BertNormalizer::new(true, true, None, true);
    let word_counts = deterministic_word_counts(texts, |text| {
        let mut normalized = NormalizedString::from(text);
        normalizer.normalize(&mut normalized)?;
        let mut words = PreTokenizedString::from(normalized);
        BertPreTokenizer.pre_tokenize(&mut words)?;
        Ok(words
            .get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(word, _, _)| word.to_owned())
            .collect())
    })
    .map_err(|e| Error::tokenizer(context, e))?;
    // What `WordPieceTrainer` does (BPE merges over "##"-prefixed continuations, read
    // as a WordPiece vocabulary), on word counts in a fixed order; see
    // `deterministic_word_counts` for why the trainer itself is not used.
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .show_progress(false)
        .special_tokens(specials)
        .continuing_subword_prefix("##".into())
        .build();
    let mut bpe = BPE::default();
    let specials = trainer
        .do_train(&word_counts, &mut bpe)
        .map_err(|e| Error::tokenizer(context, e))?;
    let model = WordPiece::builder()
        .vocab(
            bpe.get_vocab()
                .into_iter()
                .collect::<ahash::AHashMap<_, _>>(),
        )
        .unk_token(config.unk_token.clone())
        .continuing_subword_prefix("##".into())
        .build()
        .map_err(|e| Error::tokenizer(context, e))?;
    let mut tokenizer: Tokenizer = Builder::new()
        .with_model(model.into())
        .with_normalizer(Some(normalizer.into()))
        .with_pre_tokenizer(Some(BertPreTokenizer.into()))
        .with_decoder(Some(WordPieceDecoder::new("##".into(), true).into()))
        .build()
        .map_err(|e| Error::tokenizer(context, e))?
        .into();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| Error::tokenizer(context, e))?;
    let ids = bert_special_ids(&tokenizer)?;
    let template = bert_template(("[CLS]", ids.cls), ("[SEP]", ids.sep))?;
    tokenizer.with_post_processor(Some(template));
    Ok(tokenizer)
}

/// Counts the words `split` makes of `texts` (in parallel) and returns them in a map
/// whose iteration order is fixed: the words inserted in sorted order into a hash map
/// with constant seeds.
///
/// Why not `WordPieceTrainer`: `tokenizers` (0.23) collects word counts in an
/// `AHashMap` with per-process random seeds and hands out the ids of "##" continuation
/// pieces while iterating it; merges of equal frequency are then ordered by those ids,
/// so two trainings on the same text pick different merges (the summarization demo's
/// vocabulary, and its ROUGE, changed between fresh output folders). Fed this map,
/// the same trainer code (`BpeTrainer::do_train`) is deterministic: every other step
/// of it sorts or breaks ties by id.
fn deterministic_word_counts<I, S>(
    texts: I,
    split: impl Fn(&str) -> tokenizers::Result<Vec<String>> + Sync,
) -> tokenizers::Result<ahash::AHashMap<compact_str::CompactString, u64>>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    use rayon::iter::{ParallelBridge, ParallelIterator};
    use std::collections::HashMap;
    let counts = texts
        .par_bridge()
        .map(|text| -> tokenizers::Result<HashMap<String, u64>> {
            let mut counts = HashMap::new();
            for word in split(text.as_ref())? {
                *counts.entry(word).or_default() += 1;
            }
            Ok(counts)
        })
        .try_reduce(HashMap::new, |mut acc, part| {
            for (word, n) in part {
                *acc.entry(word).or_default() += n;
            }
            Ok(acc)
        })?;
    let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
    sorted.sort_unstable();
    let mut map = ahash::AHashMap::with_capacity_and_hasher(
        sorted.len(),
        ahash::RandomState::with_seeds(1, 2, 3, 4),
    );
    for (word, n) in sorted {
        map.insert(compact_str::CompactString::from(word), n);
    }
    Ok(map)
}

/// A stable fingerprint of a tokenizer: the SHA-256 of its `tokenizer.json`
/// serialisation (vocabulary, merges, pipeline, added tokens). Token caches are keyed
/// by it.
pub fn tokenizer_fingerprint(tokenizer: &Tokenizer) -> Result<String> {
    let json = tokenizer
        .to_string(false)
        .map_err(|e| Error::tokenizer("serialising for the fingerprint", e))?;
    Ok(crate::hex::hex(&Sha256::digest(json.as_bytes())))
}

/// Saves a tokenizer as `tokenizer.json` at `path`, atomically.
pub fn save_tokenizer(tokenizer: &Tokenizer, path: &Path) -> Result<()> {
    let json = tokenizer
        .to_string(true)
        .map_err(|e| Error::tokenizer(format!("serialising to {}", path.display()), e))?;
    scalegrad_fs::write_atomic(path, json.as_bytes()).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_vocab(dir: &Path, tokens: &[&str]) {
        std::fs::write(dir.join("vocab.txt"), tokens.join("\n") + "\n").unwrap();
    }

    #[test]
    fn config_reads_added_token_objects_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"do_lower_case": false, "strip_accents": null, "unk_token": {"content": "<unk>",
               "__type": "AddedToken"}, "clean_up_tokenization_spaces": true}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("special_tokens_map.json"),
            r#"{"unk_token": "[UNK]", "cls_token": "<s>"}"#,
        )
        .unwrap();
        let config = BertTokenizerConfig::from_dir(dir.path()).unwrap();
        assert!(!config.do_lower_case);
        assert_eq!(config.strip_accents, None);
        assert_eq!(config.unk_token, "<unk>", "tokenizer_config wins");
        assert_eq!(config.cls_token, "<s>");
        assert!(config.clean_up_tokenization_spaces);
    }

    #[test]
    fn wordpiece_from_vocab_splits_and_merges_continuations() {
        let dir = tempfile::tempdir().unwrap();
        write_vocab(
            dir.path(),
            &[
                "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", ",", ".",
            ],
        );
        let tok = load_tokenizer(dir.path()).unwrap();
        let enc = tok.encode("Unaffable, unaff. xyz", true).unwrap();
        assert_eq!(enc.get_ids(), &[2, 5, 6, 7, 8, 5, 6, 9, 1, 3]);
        let text = tok.decode(enc.get_ids(), true).unwrap();
        // `[UNK]` is a special token, so HF skips it too when skipping special tokens.
        assert_eq!(text, "unaffable, unaff.");
    }

    #[test]
    fn missing_files_name_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_tokenizer(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("neither tokenizer.json nor vocab.txt"),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn special_token_missing_from_vocab_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_vocab(dir.path(), &["[PAD]", "[UNK]", "[SEP]", "a"]);
        let err = load_tokenizer(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`[CLS]` is not in the vocabulary"), "{err}");
    }
}
