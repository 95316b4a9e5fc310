//! Parity with transformers' GPT2LMHeadModel on the fixture checkpoints
//! (`fixtures/make_fixtures.py`): logits, losses and greedy continuations.

use crate::common;

use burn::module::Param;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::*;
use scalegrad_gpt2::{GenerationConfig, Gpt2, PaddingSide, generate, shift_for_next_token};
use scalegrad_loss::ScaleGradConfig;
use scalegrad_ops::Execution;
use serde_json::Value;

fn single_logits(model: &Gpt2, expected: &Value) -> Vec<f32> {
    let ids = u32s(&expected["single"]["input_ids"]);
    to_vec(model.forward(ids_tensor(&[ids], &Device::flex()), None))
}

/// Under every execution policy: the CPU routes, the device ones, and the fused ones
/// (`Execution::Fused`: bias and LayerNorm rows, written-out LayerNorms).
const EXECUTIONS: [Execution; 3] = [Execution::Host, Execution::Device, Execution::Fused];

#[test]
fn logits_match_transformers_for_every_fixture_checkpoint() {
    for (name, execution) in MODELS.iter().flat_map(|n| EXECUTIONS.map(|e| (n, e))) {
        let model = load(name).with_execution(execution);
        let expected = expected(name);
        assert_close(
            &format!("{name} single-sequence logits, {execution}"),
            &single_logits(&model, &expected),
            &f32s(&expected["single"]["logits"]),
            LOGITS_TOLERANCE,
        );
    }
}

/// Left- and right-padded batches with an attention mask: every real token's logits
/// equal transformers' (with position ids counted over real tokens).
#[test]
fn padded_batch_logits_match_transformers_at_real_tokens() {
    let device = Device::flex();
    for (name, execution) in MODELS.iter().flat_map(|n| EXECUTIONS.map(|e| (n, e))) {
        let model = load(name).with_execution(execution);
        let expected = expected(name);
        for batch in expected["batches"].as_array().expect("batches") {
            let side = batch["padding_side"].as_str().expect("side");
            let ids = rows_u32(&batch["input_ids"]);
            let mask = rows_u32(&batch["attention_mask"]);
            let logits = model.forward(ids_tensor(&ids, &device), Some(ids_tensor(&mask, &device)));
            let [_, len, vocab] = logits.dims();
            let all = to_vec(logits);
            let mut real = Vec::new();
            for (b, row) in mask.iter().enumerate() {
                for (t, &m) in row.iter().enumerate() {
                    if m == 1 {
                        real.extend_from_slice(
                            &all[(b * len + t) * vocab..(b * len + t + 1) * vocab],
                        );
                    }
                }
            }
            assert_close(
                &format!("{name} {side}-padded batch logits, {execution}"),
                &real,
                &f32s(&batch["valid_logits"]),
                LOGITS_TOLERANCE,
            );
        }
    }
}

/// `GPT2LMHeadModel(input_ids, labels=input_ids).loss`: cross-entropy of shifted
/// logits, computed here with the workspace's loss at gamma = 1.
#[test]
fn lm_loss_matches_transformers() {
    let device = Device::flex();
    for name in MODELS {
        let model = load(name);
        let expected = expected(name);

        let ids = ids_tensor(&[u32s(&expected["single"]["input_ids"])], &device);
        let (logits, targets) = shift_for_next_token(model.forward(ids.clone(), None), ids);
        let loss = ScaleGradConfig::new(1.0)
            .init()
            .forward(logits, targets)
            .into_scalar::<f32>() as f64;
        let python = expected["single"]["loss"].as_f64().expect("loss");
        assert!(
            (loss - python).abs() < LOSS_TOLERANCE,
            "{name}: rust={loss}, python={python}"
        );

        // A right-padded batch with padding labelled -100, as the HF collators do.
        let batch = &expected["batch_loss"];
        let ids = rows_u32(&batch["input_ids"]);
        let mask = rows_u32(&batch["attention_mask"]);
        let labels: Vec<i64> = ids
            .iter()
            .zip(&mask)
            .flat_map(|(r, m)| {
                r.iter()
                    .zip(m)
                    .map(|(&t, &m)| if m == 1 { t as i64 } else { -100 })
            })
            .collect();
        let labels = Tensor::<2, Int>::from_data(
            TensorData::new(labels, [ids.len(), ids[0].len()]),
            &device,
        );
        let logits = model.forward(ids_tensor(&ids, &device), Some(ids_tensor(&mask, &device)));
        let (logits, targets) = shift_for_next_token(logits, labels);
        let loss = ScaleGradConfig::new(1.0)
            .with_ignore_index(Some(-100))
            .init()
            .forward(logits, targets)
            .into_scalar::<f32>() as f64;
        let python = batch["loss"].as_f64().expect("loss");
        assert!(
            (loss - python).abs() < LOSS_TOLERANCE,
            "{name} batch: rust={loss}, python={python}"
        );
    }
}

/// transformers' `generate(do_sample=False)`: plain, with repetition penalty and
/// no-repeat n-grams, and a left-padded batch; identical tokens.
#[test]
fn greedy_continuations_match_transformers_generate() {
    let model = load("tiny-gpt2");
    let expected = expected("tiny-gpt2");
    let eos = model.config().eos_token_ids();
    for case in expected["greedy"].as_array().expect("greedy") {
        let name = case["name"].as_str().expect("name");
        let prompts = rows_u32(&case["prompts"]);
        let config = GenerationConfig::greedy(20)
            .with_eos(eos.clone())
            .with_repetition_penalty(case["repetition_penalty"].as_f64().expect("penalty"))
            .with_no_repeat_ngram_size(case["no_repeat_ngram_size"].as_u64().expect("n") as usize);
        let want = rows_u32(&case["new_ids"]);
        for side in [PaddingSide::Left, PaddingSide::Right] {
            let got = generate(&model, &prompts, &config.clone().with_padding_side(side))
                .expect("generates");
            let got: Vec<Vec<u32>> = got.into_iter().map(|g| g.tokens).collect();
            assert_eq!(
                got, want,
                "{name} ({side:?} padding): rust vs python tokens"
            );
        }
    }
}

/// The trap the loader avoids: transposing the square `[E, E]` Conv1D weights (as a
/// PyTorch `nn.Linear` adapter would) passes every shape check; only logits catch it.
#[test]
fn transposed_conv1d_weights_are_caught_by_the_parity_check() {
    let mut model = load("tiny-gpt2");
    let expected = expected("tiny-gpt2");
    for block in &mut model.blocks {
        let weight = block.attn.proj.weight.val();
        block.attn.proj.weight = Param::from_tensor(weight.transpose());
    }
    let rust = single_logits(&model, &expected);
    let python = f32s(&expected["single"]["logits"]);
    let worst = rust
        .iter()
        .zip(&python)
        .map(|(r, p)| (r - p).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst > 100.0 * LOGITS_TOLERANCE,
        "transposed projections changed the logits by only {worst}"
    );
}

/// Greedy decoding with half-precision products gives transformers' (f32) ids wherever
/// the f32 choice is clear: a row may leave the f32 sequence only at a step whose f32
/// top-2 logit margin is below the precision's rounding budget (bf16: 8 mantissa bits,
/// 0.1 logits; f16: 11 bits, 0.02). Before that step every id must be equal.
#[test]
fn half_precision_greedy_ids_equal_f32_where_the_top2_margin_allows() {
    use scalegrad_ops::Precision;
    let model = load("tiny-gpt2");
    let expected = expected("tiny-gpt2");
    let eos = model.config().eos_token_ids();
    let device = Device::flex();
    let mut compared = 0;
    let cases = [(Precision::Bf16, 0.1f32), (Precision::F16, 0.02)]
        .into_iter()
        .flat_map(|case| EXECUTIONS.map(|execution| (case, execution)));
    for ((precision, margin), execution) in cases {
        let half = load("tiny-gpt2")
            .with_precision(precision)
            .with_execution(execution);
        for case in expected["greedy"].as_array().expect("greedy") {
            if case["repetition_penalty"].as_f64() != Some(1.0)
                || case["no_repeat_ngram_size"].as_u64() != Some(0)
            {
                continue; // processors reshape the logits the margin is measured on
            }
            let config = GenerationConfig::greedy(20).with_eos(eos.clone());
            for (prompt, want) in rows_u32(&case["prompts"])
                .iter()
                .zip(rows_u32(&case["new_ids"]))
            {
                let got = generate(&half, std::slice::from_ref(prompt), &config)
                    .expect("generates")
                    .remove(0)
                    .tokens;
                let Some(i) = got.iter().zip(&want).position(|(g, w)| g != w) else {
                    compared += want.len();
                    continue;
                };
                compared += i;
                // The f32 model's logits at the step that diverged.
                let context: Vec<u32> = prompt.iter().chain(&want[..i]).copied().collect();
                let logits = to_vec(
                    model.forward(ids_tensor(std::slice::from_ref(&context), &device), None),
                );
                let vocab = model.config().vocab_size;
                let last = &logits[(context.len() - 1) * vocab..context.len() * vocab];
                let mut sorted = last.to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let gap = sorted[0] - sorted[1];
                assert!(
                    gap < margin,
                    "{precision} ({execution}) left the f32 ids at step {i} of {:?} where \
                     f32's top-2 margin is {gap} (>= {margin}): {got:?} vs {want:?}",
                    case["name"]
                );
            }
        }
    }
    eprintln!("{compared} ids equal before any divergence");
    assert!(compared >= 3 * 40, "only {compared} ids compared");
}
