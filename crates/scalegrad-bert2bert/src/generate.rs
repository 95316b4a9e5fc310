//! The model driver of generation: [`generate`] runs greedy or beam search
//! ([`crate::decoding`]) over the model with its key/value cache. On
//! [`Execution::Device`](scalegrad_ops::Execution::Device) (and `Fused`) the log-softmax, the bans, the
//! running scores and the top candidates are computed on the device and only the chosen
//! ids (greedy) or the `2 * beams` candidates (beam search) are read back per step.

use burn::tensor::{Device, Int, Tensor, TensorData, Transaction};

use scalegrad_ops::decoding::ban_tokens_on_device;

use crate::Error;
use crate::decoding::{Generated, Stepper, beam_search, greedy_search, no_repeat_ngram_bans};
use crate::model::Bert2Bert;
use crate::settings::GenerationConfig;

/// The model plus its cache, as a [`Stepper`].
struct ModelStepper<'a> {
    model: &'a Bert2Bert,
    cache: crate::DecoderCache,
    device: Device,
    vocab: usize,
}

impl Stepper for ModelStepper<'_> {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn step(&mut self, tokens: &[u32]) -> Vec<f32> {
        let ids = token_column(tokens, &self.device);
        let logits = self.model.decoder.step(ids, &mut self.cache);
        logits
            .try_into_vec_as::<f32>()
            .expect("the decoder produces f32 logits")
    }

    fn reorder(&mut self, rows: &[usize]) {
        self.cache.reorder(rows);
    }

    fn greedy_tokens(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        config: &GenerationConfig,
    ) -> Vec<u32> {
        if self.model.execution().is_host() {
            return OnHost(self).greedy_tokens(tokens, histories, config);
        }
        let scores = self.device_scores(tokens, histories, config, false);
        read_ids(scores.argmax(1))
    }

    fn beam_candidates(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        scores: &[f32],
        beams: usize,
        keep: usize,
        config: &GenerationConfig,
    ) -> Vec<Vec<(usize, f32)>> {
        if self.model.execution().is_host() {
            return OnHost(self).beam_candidates(tokens, histories, scores, beams, keep, config);
        }
        let rows = tokens.len();
        let sources = rows / beams;
        let running =
            Tensor::<2>::from_data(TensorData::new(scores.to_vec(), [rows, 1]), &self.device);
        let totals = (self.device_scores(tokens, histories, config, true) + running)
            .reshape([sources, beams * self.vocab]);
        let (values, indices) = totals.topk_with_indices(keep, 1);
        // Both in one read (one synchronisation per step).
        let [values, indices]: [TensorData; 2] = Transaction::default()
            .register(values)
            .register(indices)
            .execute()
            .try_into()
            .expect("two tensors read");
        let values: Vec<f32> = values
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 scores");
        let indices = ids_of(indices);
        values
            .chunks_exact(keep)
            .zip(indices.chunks_exact(keep))
            .map(|(v, i)| {
                i.iter()
                    .map(|&i| i as usize)
                    .zip(v.iter().copied())
                    .collect()
            })
            .collect()
    }
}

impl ModelStepper<'_> {
    /// One decoder step on the device with the processors applied there:
    /// `[rows, vocab]` logits (log-probabilities when `log_probs`), with every n-gram
    /// ban and early EOS as minus infinity. The banned ids come from the host histories,
    /// padded with a spare column so that each row's indices are distinct.
    fn device_scores(
        &mut self,
        tokens: &[u32],
        histories: &[&[u32]],
        config: &GenerationConfig,
        log_probs: bool,
    ) -> Tensor<2> {
        let ids = token_column(tokens, &self.device);
        let logits = self.model.decoder.step(ids, &mut self.cache);
        let mut scores = if log_probs {
            burn::tensor::activation::log_softmax(logits, 1)
        } else {
            logits
        };
        let bans: Vec<Vec<u32>> = histories
            .iter()
            .map(|history| {
                let mut banned = no_repeat_ngram_bans(history, config.no_repeat_ngram_size);
                if history.len() < config.min_length {
                    banned.extend(&config.eos_token_ids);
                }
                banned.retain(|&t| (t as usize) < self.vocab);
                banned
            })
            .collect();
        if bans.iter().any(|b| !b.is_empty()) {
            let spare = Tensor::zeros([tokens.len(), 1], &self.device);
            scores = ban_tokens_on_device(Tensor::cat(vec![scores, spare], 1), &bans)
                .narrow(1, 0, self.vocab);
        }
        scores
    }
}

/// One token per row as `[rows, 1]` ids: a decoding step's input.
fn token_column(tokens: &[u32], device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(ids, [tokens.len(), 1]), device)
}

/// The chosen ids of a device tensor (the step's one read back).
fn read_ids<const D: usize>(ids: Tensor<D, Int>) -> Vec<u32> {
    ids_of(ids.into_data())
}

/// Ids read from the device, whatever integer type the backend keeps them in.
fn ids_of(data: TensorData) -> Vec<u32> {
    data.convert::<i64>()
        .try_to_vec::<i64>()
        .expect("integer ids")
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

/// A stepper seen with the trait's default (host) searches, for a stepper that
/// overrides them but takes the host route on some devices.
struct OnHost<'a, S>(&'a mut S);

impl<S: Stepper> Stepper for OnHost<'_, S> {
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn step(&mut self, tokens: &[u32]) -> Vec<f32> {
        self.0.step(tokens)
    }
    fn reorder(&mut self, rows: &[usize]) {
        self.0.reorder(rows)
    }
}

/// Generates one sequence per source with transformers' `generate()` semantics.
///
/// `source_ids` is `[B, S]`; `source_mask` (1 = token, 0 = padding) marks padded
/// positions of shorter sources (`None`: no padding). The encoder runs once per source;
/// beam search keeps the decoder's keys and values in a cache, so every step feeds one
/// token per beam.
pub fn generate(
    model: &Bert2Bert,
    source_ids: Tensor<2, Int>,
    source_mask: Option<Tensor<2, Int>>,
    config: &GenerationConfig,
) -> Result<Vec<Generated>, Error> {
    config.validate()?;
    let [sources, len] = source_ids.dims();
    if sources == 0 {
        return Ok(Vec::new());
    }
    let max_source = model.encoder.embeddings.max_positions();
    if len == 0 || len > max_source {
        return Err(Error::Generation(format!(
            "source length {len} is outside 1..={max_source} (the encoder's positions); truncate the input"
        )));
    }
    let max_target = model.decoder.embeddings.max_positions();
    config.check_positions(max_target)?;
    if let Some(mask) = &source_mask {
        if mask.dims() != [sources, len] {
            return Err(Error::Generation(format!(
                "source mask shape {:?} differs from the ids' [{sources}, {len}]",
                mask.dims()
            )));
        }
        let tokens: Vec<i64> = mask
            .clone()
            .sum_dim(1)
            .try_into_vec_as::<i64>()
            .map_err(|e| Error::Generation(format!("reading the source mask: {e}")))?;
        if let Some(row) = tokens.iter().position(|&n| n == 0) {
            return Err(Error::Generation(format!(
                "source {row} is empty (all padding)"
            )));
        }
    }
    let device = source_ids.device();
    let vocab = model.decoder.head.bias.dims()[0];
    let states = model.encoder.forward(source_ids, source_mask.clone());
    let cache = model.decoder.init_cache(
        states,
        source_mask,
        config.num_beams,
        (config.max_length + 1).min(max_target),
    );
    let mut stepper = ModelStepper {
        model,
        cache,
        device,
        vocab,
    };
    Ok(if config.num_beams == 1 {
        greedy_search(&mut stepper, sources, config)
    } else {
        beam_search(&mut stepper, sources, config)
    })
}
