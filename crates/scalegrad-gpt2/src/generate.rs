//! The generation loop: batched prompts, a key/value cache, one device round trip per
//! new token.
//!
//! The prompts are padded into one batch (left by default, see [`PaddingSide`]) and
//! fed at once (prefill). Then, per step, the model runs one position per row with the
//! cache and each row's token is picked from the `[batch, vocab]` logits of that
//! position. How depends on the model's [`Execution`]: on a CPU backend
//! ([`Execution::Host`]) the logits come to the host and the pure functions of
//! [`crate::decoding`] pick; on any other device the same rules run as device operations
//! ([`crate::device_decoding`]) and only the `[batch]` chosen ids come back. Either way
//! that read is the one synchronisation a step needs, to know the token to feed next. A
//! row stops at an EOS token (which it keeps); finished rows ride along as padding until
//! every row is done or `max_new_tokens` is reached.

use burn::tensor::{Int, Tensor, TensorData};
use scalegrad_ops::Execution;
use serde::{Deserialize, Serialize};

use crate::Gpt2Error;
use crate::decoding::{GenerationConfig, PaddingSide, SplitMix64, next_token};
use crate::device_decoding;
use crate::model::Gpt2;

/// What one prompt produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The new tokens, including the EOS token that ended them, if any.
    pub tokens: Vec<u32>,
    /// Whether an EOS token ended the row (rather than `max_new_tokens`).
    pub stopped_at_eos: bool,
}

/// Continues every prompt (token ids) with the model, as configured.
///
/// # Errors
///
/// For an empty batch or prompt, a token id outside the vocabulary, a prompt plus
/// `max_new_tokens` longer than the model's `n_positions`, or an invalid setting.
pub fn generate(
    model: &Gpt2,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Generation>, Gpt2Error> {
    config.validate()?;
    let model_config = model.config();
    if prompts.is_empty() {
        return Err(Gpt2Error::Generation("no prompts".to_string()));
    }
    for (i, prompt) in prompts.iter().enumerate() {
        if prompt.is_empty() {
            return Err(Gpt2Error::Generation(format!(
                "prompt {i} is empty; GPT-2 needs at least one token to condition on (e.g. its EOS \
                 token <|endoftext|>)"
            )));
        }
        if let Some(&bad) = prompt
            .iter()
            .find(|&&t| t as usize >= model_config.vocab_size)
        {
            return Err(Gpt2Error::Generation(format!(
                "prompt {i} holds token id {bad}, outside the vocabulary of {} tokens",
                model_config.vocab_size
            )));
        }
        if prompt.len() + config.max_new_tokens > model_config.n_positions {
            return Err(Gpt2Error::Generation(format!(
                "prompt {i} has {} tokens; with max_new_tokens = {} that exceeds the model's \
                 n_positions = {} (shorten the prompt or generate fewer tokens)",
                prompt.len(),
                config.max_new_tokens,
                model_config.n_positions
            )));
        }
    }
    // On a CPU backend decoding runs on a worker of the rayon pool, so the matrix
    // products that are split over the pool run one part on this thread instead of
    // waking it up after every one. A device backend keeps the caller's thread (its
    // operations queue on that thread's stream, where the weights were loaded).
    if model.execution().is_host() {
        rayon::scope(|_| decode(model, prompts, config))
    } else {
        decode(model, prompts, config)
    }
}

fn decode(
    model: &Gpt2,
    prompts: &[Vec<u32>],
    config: &GenerationConfig,
) -> Result<Vec<Generation>, Gpt2Error> {
    let batch = prompts.len();
    let width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let pad = config
        .pad_token_id
        .or_else(|| config.eos_token_ids.first().copied())
        .unwrap_or(0);
    let (ids, real) = pad_batch(prompts, width, pad, config.padding_side);
    let device = model.device();
    let mut cache = model.new_cache(batch, width + config.max_new_tokens);

    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, width]), &device);
    let hidden = model.forward_cached(input, &real, &mut cache)?;
    let [_, _, n_embd] = hidden.dims();
    // The logits that matter are those of each row's last real token.
    let last = match config.padding_side {
        PaddingSide::Left => hidden.slice([0..batch, width - 1..width, 0..n_embd]),
        PaddingSide::Right => {
            let index: Vec<i64> = prompts
                .iter()
                .flat_map(|p| std::iter::repeat_n(p.len() as i64 - 1, n_embd))
                .collect();
            let index =
                Tensor::<3, Int>::from_data(TensorData::new(index, [batch, 1, n_embd]), &device);
            hidden.gather(1, index)
        }
    };
    let mut logits = model.lm_head(last);

    let mut contexts: Vec<Vec<u32>> = prompts.to_vec();
    let mut outputs: Vec<Generation> = vec![
        Generation {
            tokens: vec![],
            stopped_at_eos: false,
        };
        batch
    ];
    let mut rngs: Vec<SplitMix64> = (0..batch)
        .map(|b| SplitMix64::for_row(config.seed, b))
        .collect();
    // Steps feed one position per row: weights prepared for such steps, where they pay off.
    let execution = model.execution();
    let fast = (config.max_new_tokens > 1)
        .then(|| model.decode_weights(batch))
        .flatten();
    for step in 0..config.max_new_tokens {
        let chosen = choose(logits, &contexts, config, &mut rngs, execution)?;
        let mut next = vec![pad as i64; batch];
        let mut next_real = vec![false; batch];
        for b in 0..batch {
            if outputs[b].stopped_at_eos {
                continue;
            }
            let token = chosen[b];
            contexts[b].push(token);
            outputs[b].tokens.push(token);
            if config.eos_token_ids.contains(&token) {
                outputs[b].stopped_at_eos = true;
            } else {
                next[b] = token as i64;
                next_real[b] = true;
            }
        }
        if step + 1 == config.max_new_tokens || next_real.iter().all(|r| !r) {
            break;
        }
        let input = Tensor::<2, Int>::from_data(TensorData::new(next, [batch, 1]), &device);
        let hidden = model.forward_cached_with(input, &next_real, &mut cache, fast.as_ref())?;
        logits = model.lm_head(hidden);
    }
    Ok(outputs)
}

/// Each row's next token from the step's `[batch, 1, vocab]` logits: on the host for
/// [`Execution::Host`], on the device otherwise. Finished rows get a token too, which
/// the caller ignores.
fn choose(
    logits: Tensor<3>,
    contexts: &[Vec<u32>],
    config: &GenerationConfig,
    rngs: &mut [SplitMix64],
    execution: Execution,
) -> Result<Vec<u32>, Gpt2Error> {
    let [batch, _, vocab] = logits.dims();
    if !execution.is_host() {
        return device_decoding::next_tokens(
            logits.reshape([batch, vocab]),
            contexts,
            config,
            rngs,
        );
    }
    let mut host = to_host(logits)?;
    Ok(host
        .chunks_mut(vocab)
        .zip(contexts)
        .zip(rngs)
        .map(|((row, context), rng)| next_token(row, context, config, rng))
        .collect())
}

/// Pads prompts to `width`: the ids (`pad` at padding) and the realness flags, both
/// `[batch, width]` row-major.
fn pad_batch(
    prompts: &[Vec<u32>],
    width: usize,
    pad: u32,
    side: PaddingSide,
) -> (Vec<i64>, Vec<bool>) {
    let mut ids = Vec::with_capacity(prompts.len() * width);
    let mut real = Vec::with_capacity(prompts.len() * width);
    for prompt in prompts {
        let fill = width - prompt.len();
        if side == PaddingSide::Left {
            ids.extend(std::iter::repeat_n(pad as i64, fill));
            real.extend(std::iter::repeat_n(false, fill));
        }
        ids.extend(prompt.iter().map(|&t| t as i64));
        real.extend(std::iter::repeat_n(true, prompt.len()));
        if side == PaddingSide::Right {
            ids.extend(std::iter::repeat_n(pad as i64, fill));
            real.extend(std::iter::repeat_n(false, fill));
        }
    }
    (ids, real)
}

/// `[batch, 1, vocab]` logits to a host vector (the step's synchronisation point).
fn to_host(logits: Tensor<3>) -> Result<Vec<f32>, Gpt2Error> {
    Ok(logits
        .try_into_data()
        .map_err(Gpt2Error::decoding_read)?
        .try_into_vec_as::<f32>()
        .expect("float logits convert to f32"))
}
