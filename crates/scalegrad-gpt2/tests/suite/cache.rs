//! Incremental decoding with the key/value cache computes what the full forward pass
//! computes, for unpadded, left-padded and right-padded batches.

use crate::common;

use burn::tensor::{Device, Tensor};
use common::*;
use scalegrad_gpt2::{GenerationConfig, Gpt2, PaddingSide, generate};

fn text_ids() -> Vec<u32> {
    u32s(&expected("tiny-gpt2")["single"]["input_ids"])
}

fn last_logits(model: &Gpt2, hidden: Tensor<3>) -> Vec<f32> {
    let [batch, len, width] = hidden.dims();
    to_vec(model.lm_head(hidden.slice([0..batch, len - 1..len, 0..width])))
}

/// Prefill of a prefix, then one token at a time: each step's logits equal the full
/// forward pass's logits at that position, with the CPU's cached passes, the device
/// route's, and the fused one's (`Execution::Fused`: parameter rows, written-out
/// LayerNorms).
#[test]
fn cached_steps_match_the_full_forward_pass_at_every_position() {
    use scalegrad_ops::Execution;
    let device = Device::flex();
    let host = load("tiny-gpt2-odd");
    let ids = text_ids();
    let full = to_vec(host.forward(ids_tensor(std::slice::from_ref(&ids), &device), None));
    for execution in [Execution::Host, Execution::Device, Execution::Fused] {
        let model = load("tiny-gpt2-odd").with_execution(execution);
        cached_steps_match(&model, &ids, &full);
    }
}

fn cached_steps_match(model: &Gpt2, ids: &[u32], full: &[f32]) {
    let device = Device::flex();
    let vocab = model.config().vocab_size;
    let prefix = 5;
    let mut cache = model.new_cache(1, ids.len());
    let hidden = model
        .forward_cached(
            ids_tensor(&[ids[..prefix].to_vec()], &device),
            &[true; 5],
            &mut cache,
        )
        .expect("prefill");
    let prefill = to_vec(model.lm_head(hidden));
    assert_close(
        "prefill logits",
        &prefill,
        &full[..prefix * vocab],
        LOGITS_TOLERANCE,
    );
    for t in prefix..ids.len() {
        let hidden = model
            .forward_cached(ids_tensor(&[vec![ids[t]]], &device), &[true], &mut cache)
            .expect("step");
        assert_close(
            &format!("cached step at position {t}"),
            &last_logits(model, hidden),
            &full[t * vocab..(t + 1) * vocab],
            LOGITS_TOLERANCE,
        );
    }
    assert_eq!(cache.len(), ids.len());
    assert_eq!(cache.real_lengths(), &[ids.len()]);
}

/// Padding inside the cache, on either side and between steps, is invisible: a row of
/// a padded batch gets its unpadded logits at every step.
#[test]
fn padded_rows_in_the_cache_match_their_unpadded_runs() {
    let device = Device::flex();
    let model = load("tiny-gpt2");
    let ids = text_ids();
    let vocab = model.config().vocab_size;
    let short = ids[..4].to_vec();
    let long = ids[..9].to_vec();
    let alone = |row: &[u32]| to_vec(model.forward(ids_tensor(&[row.to_vec()], &device), None));
    let (short_full, long_full) = (alone(&ids[..8]), alone(&ids[..13]));

    for side in [PaddingSide::Left, PaddingSide::Right] {
        let pad = |row: &[u32]| -> (Vec<u32>, Vec<bool>) {
            let fill = long.len() - row.len();
            let mut padded = row.to_vec();
            let mut real = vec![true; row.len()];
            match side {
                PaddingSide::Left => {
                    padded.splice(0..0, std::iter::repeat_n(0, fill));
                    real.splice(0..0, std::iter::repeat_n(false, fill));
                }
                PaddingSide::Right => {
                    padded.extend(std::iter::repeat_n(0, fill));
                    real.extend(std::iter::repeat_n(false, fill));
                }
            }
            (padded, real)
        };
        let (short_ids, short_real) = pad(&short);
        let (long_ids, long_real) = pad(&long);
        let mut cache = model.new_cache(2, 20);
        let real: Vec<bool> = short_real.iter().chain(&long_real).copied().collect();
        let hidden = model
            .forward_cached(
                ids_tensor(&[short_ids, long_ids], &device),
                &real,
                &mut cache,
            )
            .expect("prefill");
        let prefill = to_vec(model.lm_head(hidden));
        let width = long.len();
        let short_last = match side {
            PaddingSide::Left => width - 1,
            PaddingSide::Right => short.len() - 1,
        };
        assert_close(
            &format!("{side:?}: short row after prefill"),
            &prefill[short_last * vocab..(short_last + 1) * vocab],
            &short_full[(short.len() - 1) * vocab..short.len() * vocab],
            LOGITS_TOLERANCE,
        );
        // Four steps; at the second, the long row feeds padding (as a finished row does).
        let mut long_pos = long.len();
        for (step, short_pos) in (short.len()..short.len() + 4).enumerate() {
            let long_real = step != 1;
            let step_ids = vec![
                vec![ids[short_pos]],
                vec![if long_real { ids[long_pos] } else { 0 }],
            ];
            let hidden = model
                .forward_cached(
                    ids_tensor(&step_ids, &device),
                    &[true, long_real],
                    &mut cache,
                )
                .expect("step");
            let logits = to_vec(model.lm_head(hidden));
            assert_close(
                &format!("{side:?}: short row, step {step}"),
                &logits[..vocab],
                &short_full[short_pos * vocab..(short_pos + 1) * vocab],
                LOGITS_TOLERANCE,
            );
            if long_real {
                assert_close(
                    &format!("{side:?}: long row, step {step}"),
                    &logits[vocab..],
                    &long_full[long_pos * vocab..(long_pos + 1) * vocab],
                    LOGITS_TOLERANCE,
                );
                long_pos += 1;
            }
        }
        assert_eq!(cache.real_lengths(), &[short.len() + 4, long.len() + 3]);
    }
}

/// Each row of a batch decodes exactly as it does alone, whichever side is padded
/// (five rows: the steps also take the transposed-weights path of small batches).
#[test]
fn batched_greedy_rows_equal_their_single_prompt_runs() {
    let model = load("tiny-gpt2-odd");
    let ids = text_ids();
    let prompts = vec![
        ids[..3].to_vec(),
        ids[2..12].to_vec(),
        ids[5..6].to_vec(),
        ids[7..15].to_vec(),
        ids[1..5].to_vec(),
    ];
    let config = GenerationConfig::greedy(12)
        .with_repetition_penalty(1.2)
        .with_no_repeat_ngram_size(3);
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            generate(&model, std::slice::from_ref(p), &config).expect("alone")[0]
                .tokens
                .clone()
        })
        .collect();
    for side in [PaddingSide::Left, PaddingSide::Right] {
        let batched =
            generate(&model, &prompts, &config.clone().with_padding_side(side)).expect("batch");
        let batched: Vec<Vec<u32>> = batched.into_iter().map(|g| g.tokens).collect();
        assert_eq!(batched, alone, "{side:?} padding");
    }
}

/// The device decoding path (processors, arg-max and draws as device operations, only
/// the chosen ids read back) decodes what the host path decodes, for one row and for a
/// padded batch of five, greedy with penalties and seeded top-k / top-p sampling.
#[test]
fn device_decoding_equals_host_decoding() {
    use scalegrad_gpt2::Strategy;
    use scalegrad_ops::Execution;
    let host = load("tiny-gpt2-odd");
    let devices = [Execution::Device, Execution::Fused]
        .map(|execution| load("tiny-gpt2-odd").with_execution(execution));
    let ids = text_ids();
    let five = vec![
        ids[..3].to_vec(),
        ids[2..12].to_vec(),
        ids[5..6].to_vec(),
        ids[7..15].to_vec(),
        ids[1..5].to_vec(),
    ];
    let greedy = GenerationConfig::greedy(12)
        .with_repetition_penalty(1.2)
        .with_no_repeat_ngram_size(3);
    let configs = [
        GenerationConfig::greedy(12),
        greedy.clone(),
        greedy
            .clone()
            .with_strategy(Strategy::top_k(5))
            .with_seed(3),
        greedy.with_strategy(Strategy::top_p(0.8)).with_seed(4),
    ];
    for prompts in [vec![ids[..6].to_vec()], five] {
        for config in &configs {
            let a = generate(&host, &prompts, config).expect("host");
            for device in &devices {
                let b = generate(device, &prompts, config).expect("device");
                assert_eq!(
                    a,
                    b,
                    "{} rows, {config:?}, {}",
                    prompts.len(),
                    device.execution()
                );
            }
        }
    }
}

/// A row stops at EOS (keeping it); the others go on to max_new_tokens.
#[test]
fn rows_stop_at_eos_and_keep_it() {
    let model = load("tiny-gpt2");
    let ids = text_ids();
    let prompts = vec![ids[..6].to_vec(), ids[..3].to_vec()];
    let free = generate(&model, &prompts, &GenerationConfig::greedy(10)).expect("generates");
    // Make the third token of row 0 an end token.
    let stop = free[0].tokens[2];
    let stopped = generate(
        &model,
        &prompts,
        &GenerationConfig::greedy(10).with_eos(vec![stop]),
    )
    .expect("generates");
    assert_eq!(
        stopped[0].tokens,
        free[0].tokens[..3].to_vec(),
        "row 0 ends at its first EOS"
    );
    assert!(stopped[0].stopped_at_eos);
    let first_stop_in_row1 = free[1].tokens.iter().position(|&t| t == stop);
    match first_stop_in_row1 {
        Some(i) => assert_eq!(stopped[1].tokens, free[1].tokens[..=i].to_vec()),
        None => {
            assert_eq!(stopped[1].tokens, free[1].tokens, "row 1 is unaffected");
            assert!(!stopped[1].stopped_at_eos);
        }
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_depends_on_the_seed() {
    let model = load("tiny-gpt2");
    let prompts = vec![text_ids()[..4].to_vec(); 2];
    let config = GenerationConfig::greedy(15).with_strategy(scalegrad_gpt2::Strategy::top_k(50));
    let run = |seed| -> Vec<Vec<u32>> {
        generate(&model, &prompts, &config.clone().with_seed(seed))
            .expect("samples")
            .into_iter()
            .map(|g| g.tokens)
            .collect()
    };
    let a = run(7);
    assert_eq!(a, run(7), "same seed, same tokens");
    assert_ne!(a, run(8), "another seed, other tokens");
    assert_ne!(a[0], a[1], "rows draw from their own streams");
}

#[test]
fn generation_requests_the_model_cannot_serve_are_errors() {
    let model = load("tiny-gpt2");
    let config = GenerationConfig::greedy(10);
    let cases: Vec<(Vec<Vec<u32>>, GenerationConfig, &str)> = vec![
        (vec![], config.clone(), "no prompts"),
        (vec![vec![]], config.clone(), "prompt 0 is empty"),
        (
            vec![vec![1, 100_000]],
            config.clone(),
            "outside the vocabulary",
        ),
        (vec![vec![1; 60]], config.clone(), "n_positions = 64"),
        (
            vec![vec![1]],
            config
                .clone()
                .with_strategy(scalegrad_gpt2::Strategy::top_p(1.5)),
            "top_p must be in (0, 1]",
        ),
        (
            vec![vec![1]],
            config
                .clone()
                .with_strategy(scalegrad_gpt2::Strategy::top_k(5).with_temperature(0.0)),
            "temperature must be a positive number",
        ),
        (
            vec![vec![1]],
            config.clone().with_repetition_penalty(0.0),
            "repetition_penalty",
        ),
    ];
    for (prompts, config, message) in cases {
        let err = generate(&model, &prompts, &config)
            .expect_err(message)
            .to_string();
        assert!(err.contains(message), "expected `{message}` in: {err}");
    }
    let mut cache = model.new_cache(1, 2);
    let err = model
        .forward_cached(
            ids_tensor(&[vec![1, 2, 3]], &Device::flex()),
            &[true; 3],
            &mut cache,
        )
        .expect_err("cache too small")
        .to_string();
    assert!(err.contains("do not fit in a KV cache of 2"), "{err}");
}
