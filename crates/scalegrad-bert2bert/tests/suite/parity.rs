//! Parity with transformers 5.24 on the tiny random checkpoints of `fixtures/`
//! (made by `fixtures/make_fixtures.py`): encoder states, teacher-forced logits with
//! padded sources and targets, `generate()` outputs for greedy and beam search, and the
//! generation defaults transformers derives from the checkpoint's files.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_bert2bert::{
    Bert2Bert, Bert2BertConfig, EarlyStopping, GenerationConfig, GenerationSettings, LoadedModel,
    generate, load_pretrained, load_weights,
};
use scalegrad_ops::Execution;
use serde_json::Value;

/// Largest absolute difference allowed between our floats and PyTorch's.
const TOLERANCE: f32 = 1e-4;

/// Every execution policy: the CPU fast paths, burn's operations, and the routes arranged
/// for kernel fusion (LayerNorm rows, ended kernels), which must compute the same.
const EXECUTIONS: [Execution; 3] = [Execution::Host, Execution::Device, Execution::Fused];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(value: &Value, device: &Device) -> Tensor<2, Int> {
    let rows: Vec<Vec<i64>> = serde_json::from_value(value.clone()).unwrap();
    let (b, t) = (rows.len(), rows[0].len());
    Tensor::from_data(
        TensorData::new(rows.into_iter().flatten().collect::<Vec<_>>(), [b, t]),
        device,
    )
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths differ");
    let (worst, at) = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0.0f32, 0),
            |(m, at), (i, d)| if d > m { (d, i) } else { (m, at) },
        );
    assert!(
        worst <= TOLERANCE,
        "{what}: max |diff| {worst} at {at}: rust={}, python={}",
        ours[at],
        theirs[at]
    );
}

fn load(name: &str) -> LoadedModel {
    load_pretrained(&fixtures().join(name), &Device::flex())
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn check_states_and_logits(name: &str) {
    let loaded = load(name);
    for execution in EXECUTIONS {
        check_states_and_logits_under(name, loaded.model.clone().with_execution(execution));
    }
}

fn check_states_and_logits_under(name: &str, model: Bert2Bert) {
    let device = Device::flex();
    let e = expected();
    let want = &e["models"][name];
    let label = format!("{name} ({})", model.execution());
    let src = ids(&e["source_ids"], &device);
    let mask = ids(&e["source_mask"], &device);
    let tgt = ids(&e["target_ids"], &device);
    let tgt_mask = ids(&e["target_mask"], &device);

    let states = model.encoder.forward(src.clone(), Some(mask.clone()));
    let shape: Vec<usize> = serde_json::from_value(want["encoder_hidden_shape"].clone()).unwrap();
    assert_eq!(states.dims().to_vec(), shape);
    let states = states.try_into_vec_as::<f32>().unwrap();
    assert_close(
        &format!("{label} encoder states"),
        &states,
        &floats(&want["encoder_hidden"]),
    );

    let logits = model.forward(src, Some(mask), tgt, Some(tgt_mask));
    let shape: Vec<usize> = serde_json::from_value(want["logits_shape"].clone()).unwrap();
    assert_eq!(logits.dims().to_vec(), shape);
    let logits = logits.try_into_vec_as::<f32>().unwrap();
    assert_close(
        &format!("{label} decoder logits"),
        &logits,
        &floats(&want["logits"]),
    );
}

#[test]
fn bin_checkpoint_encoder_states_and_logits_match_transformers() {
    check_states_and_logits("tiny-bin");
}

#[test]
fn safetensors_checkpoint_encoder_states_and_logits_match_transformers() {
    check_states_and_logits("tiny-st");
}

/// The `tiny-bin` model with every dropout probability set to 0, on `device`.
fn without_dropout(device: &Device) -> Bert2Bert {
    let dir = fixtures().join("tiny-bin");
    let mut config = Bert2BertConfig::from_file(&dir.join("config.json")).unwrap();
    for side in [&mut config.encoder, &mut config.decoder] {
        side.hidden_dropout_prob = 0.0;
        side.attention_probs_dropout_prob = 0.0;
    }
    load_weights(&config, &dir.join("pytorch_model.bin"), device).unwrap()
}

/// The training path (autodiff device: explicit attention scores, causal and padding
/// biases, dropout layers) computes the same logits as transformers when dropout is 0.
#[test]
fn autodiff_training_path_logits_match_transformers_without_dropout() {
    let device = Device::flex().autodiff();
    let e = expected();
    let loaded = without_dropout(&device);
    for execution in EXECUTIONS {
        let model = loaded.clone().with_execution(execution);
        let logits = model.forward(
            ids(&e["source_ids"], &device),
            Some(ids(&e["source_mask"], &device)),
            ids(&e["target_ids"], &device),
            Some(ids(&e["target_mask"], &device)),
        );
        let logits = logits.try_into_vec_as::<f32>().unwrap();
        assert_close(
            &format!("tiny-bin logits on the autodiff path ({execution})"),
            &logits,
            &floats(&e["models"]["tiny-bin"]["logits"]),
        );
    }
}

/// The generation knobs of one fixture case, on top of the special tokens the script
/// passes to `generate()` (start 101, EOS 102, pad 0).
fn case_config(kwargs: &Value) -> GenerationConfig {
    let early = match kwargs.get("early_stopping") {
        Some(Value::Bool(true)) => EarlyStopping::True,
        Some(Value::String(s)) if s == "never" => EarlyStopping::Never,
        _ => EarlyStopping::Heuristic,
    };
    let count = |key: &str| kwargs[key].as_u64().unwrap() as usize;
    GenerationConfig {
        num_beams: count("num_beams"),
        min_length: count("min_length"),
        no_repeat_ngram_size: count("no_repeat_ngram_size"),
        length_penalty: kwargs
            .get("length_penalty")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        early_stopping: early,
        pad_token_id: Some(0),
        ..GenerationConfig::greedy(count("max_length"), 101, Some(102))
    }
}

/// Compares our sequence with a row of transformers' padded output. transformers fills
/// the tail of finished rows: greedy with the pad token, beam search with
/// `pad_token_id or eos_token_id` where a pad id of 0 is falsy, hence with EOS.
fn assert_same_sequence(what: &str, ours: &[u32], row: &[u32], fill: u32) {
    let mut full = vec![101];
    full.extend_from_slice(ours);
    assert!(
        row.len() >= full.len() && row[..full.len()] == full[..],
        "{what}: rust={full:?}, python={row:?}"
    );
    assert!(
        row[full.len()..].iter().all(|&t| t == fill),
        "{what}: rust={full:?}, python={row:?} (tail should be {fill})"
    );
}

fn check_generation(name: &str) {
    let device = Device::flex();
    let e = expected();
    let loaded = load(name);
    let src = ids(&e["source_ids"], &device);
    let mask = ids(&e["source_mask"], &device);
    let cases = e["models"][name]["generate"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for execution in EXECUTIONS {
        let model = loaded.model.clone().with_execution(execution);
        for case in cases {
            let case_name = case["name"].as_str().unwrap();
            let config = case_config(&case["kwargs"]);
            let out = generate(&model, src.clone(), Some(mask.clone()), &config).unwrap();
            let rows: Vec<Vec<u32>> = serde_json::from_value(case["sequences"].clone()).unwrap();
            let fill = if config.num_beams == 1 { 0 } else { 102 };
            for (i, (g, row)) in out.iter().zip(&rows).enumerate() {
                let what = format!("{name} ({execution}) {case_name} row {i}");
                assert_same_sequence(&what, &g.tokens, row, fill);
            }
        }
    }
}

#[test]
fn bin_checkpoint_generate_matches_transformers_for_greedy_and_beam_cases() {
    check_generation("tiny-bin");
}

#[test]
fn safetensors_checkpoint_generate_matches_transformers_for_greedy_and_beam_cases() {
    check_generation("tiny-st");
}

#[test]
fn generation_defaults_come_from_config_json_as_in_transformers() {
    let device = Device::flex();
    let e = expected();
    for name in ["tiny-bin", "tiny-st"] {
        let loaded = load(name);
        let hf = &e["models"][name]["hf_generation_config"];
        let ours = loaded.generation.resolve().unwrap();
        assert_eq!(
            ours.max_length as u64,
            hf["max_length"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.min_length as u64,
            hf["min_length"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.num_beams as u64,
            hf["num_beams"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.no_repeat_ngram_size as u64,
            hf["no_repeat_ngram_size"].as_u64().unwrap()
        );
        assert_eq!(ours.length_penalty, hf["length_penalty"].as_f64().unwrap());
        assert_eq!(ours.early_stopping, EarlyStopping::True);
        assert_eq!(ours.eos_token_ids, vec![102]);
        assert_eq!(ours.decoder_start_token_id, 101);
        assert_eq!(ours.pad_token_id, Some(0));

        // generate() without arguments uses exactly these defaults.
        let src = ids(&e["source_ids"], &device);
        let mask = ids(&e["source_mask"], &device);
        let out = generate(&loaded.model, src, Some(mask), &ours).unwrap();
        let rows: Vec<Vec<u32>> =
            serde_json::from_value(e["models"][name]["generate_defaults"].clone()).unwrap();
        for (i, (g, row)) in out.iter().zip(&rows).enumerate() {
            assert_same_sequence(&format!("{name} defaults row {i}"), &g.tokens, row, 102);
        }
    }
}

#[test]
fn generation_config_json_replaces_config_json_settings_as_in_transformers() {
    let e = expected();
    let case = &e["generation_config_file"];
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("tiny-st/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        case["generation_config_json"].to_string(),
    )
    .unwrap();
    let settings = GenerationSettings::from_model_dir(dir.path()).unwrap();
    let hf = &case["hf_generation_config"];
    let opt = |v: &Value| v.as_u64().map(|n| n as usize);
    assert_eq!(settings.max_length, opt(&hf["max_length"]));
    assert_eq!(settings.num_beams, opt(&hf["num_beams"]));
    assert_eq!(
        settings.min_length,
        opt(&hf["min_length"]),
        "config.json's min_length is ignored"
    );
    assert_eq!(
        settings.no_repeat_ngram_size,
        opt(&hf["no_repeat_ngram_size"])
    );
    assert_eq!(settings.length_penalty, hf["length_penalty"].as_f64());
    assert_eq!(settings.pad_token_id, None);
    let resolved = settings.resolve().unwrap();
    assert_eq!(resolved.early_stopping, EarlyStopping::Heuristic);
    assert_eq!(resolved.pad_token_id, Some(102), "pad falls back to EOS");
}

/// Greedy decoding with bf16 and f16 products gives the f32 ids (which equal
/// transformers' on these fixtures, above) wherever f32's top-2 logit margin at the step
/// is at least 0.1 (bf16) or 0.02 (f16): a divergence is allowed only where the f32
/// choice was that close. EOS is off, so each row decodes 19 tokens.
#[test]
fn half_precision_greedy_ids_equal_f32_where_the_top2_margin_allows() {
    use scalegrad_ops::Precision;
    let device = Device::flex();
    let e = expected();
    let model = load("tiny-st").model;
    let src = ids(&e["source_ids"], &device);
    let mask = ids(&e["source_mask"], &device);
    let config = GenerationConfig {
        pad_token_id: Some(0),
        ..GenerationConfig::greedy(20, 101, None)
    };
    let want = generate(&model, src.clone(), Some(mask.clone()), &config).unwrap();
    let mut compared = 0;
    for (precision, margin) in [(Precision::Bf16, 0.1f32), (Precision::F16, 0.02)] {
        for execution in EXECUTIONS {
            let half = model
                .clone()
                .with_precision(precision)
                .with_execution(execution);
            let got = generate(&half, src.clone(), Some(mask.clone()), &config).unwrap();
            for (row, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(w.tokens.len(), 19);
                let Some(i) = g.tokens.iter().zip(&w.tokens).position(|(a, b)| a != b) else {
                    assert_eq!(g.tokens.len(), w.tokens.len());
                    compared += w.tokens.len();
                    continue;
                };
                compared += i;
                // f32's logits at the diverging step: the decoder fed the start token
                // and f32's ids before it.
                let prefix: Vec<i64> = std::iter::once(101)
                    .chain(w.tokens[..i].iter().map(|&t| t as i64))
                    .collect();
                let len = prefix.len();
                let decoder =
                    Tensor::<2, Int>::from_data(TensorData::new(prefix, [1, len]), &device);
                let logits = model.forward(
                    src.clone().narrow(0, row, 1),
                    Some(mask.clone().narrow(0, row, 1)),
                    decoder,
                    None,
                );
                let mut last = logits
                    .narrow(1, len - 1, 1)
                    .try_into_vec_as::<f32>()
                    .unwrap();
                last.sort_by(|a, b| b.total_cmp(a));
                let gap = last[0] - last[1];
                assert!(
                    gap < margin,
                    "{precision} ({execution}) left the f32 ids of row {row} at step {i} where \
                     f32's top-2 margin is {gap} (>= {margin}): {:?} vs {:?}",
                    g.tokens,
                    w.tokens
                );
            }
        }
    }
    eprintln!("{compared} ids equal before any divergence");
    assert!(compared >= 2 * 3 * 3 * 15, "only {compared} ids compared");
}

/// The training path (autodiff, explicit attention with an f32 softmax) with half
/// products: logits within the half type's rounding of f32's, and not f32's exactly.
#[test]
fn half_precision_training_logits_stay_within_rounding_of_f32() {
    use scalegrad_ops::Precision;
    let device = Device::flex().autodiff();
    let e = expected();
    let model = without_dropout(&device);
    let logits = |model: &Bert2Bert| {
        model
            .forward(
                ids(&e["source_ids"], &device),
                Some(ids(&e["source_mask"], &device)),
                ids(&e["target_ids"], &device),
                Some(ids(&e["target_mask"], &device)),
            )
            .try_into_vec_as::<f32>()
            .unwrap()
    };
    let exact = logits(&model);
    let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (precision, tolerance) in [(Precision::Bf16, 0.03f32), (Precision::F16, 0.004)] {
        let got = logits(&model.clone().with_precision(precision));
        let worst = got
            .iter()
            .zip(&exact)
            .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
        assert!(worst > 0.0, "{precision}: the products were not rounded");
        assert!(
            worst <= tolerance * scale,
            "{precision}: max |diff| {worst} against logits up to {scale}"
        );
    }
}
