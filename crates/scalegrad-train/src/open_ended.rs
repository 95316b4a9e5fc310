//! The open-ended experiment: GPT-2 language modelling on WikiText, evaluated with
//! next-token metrics on teacher-forced windows and with continuation metrics on
//! decoded text (REFERENCE.md §2).

use burn::tensor::{Device, Int, Tensor, TensorData, Transaction};
use scalegrad_data::{BatchSampler, LmBatch, LmWindows, collate_lm};
use scalegrad_gpt2::{GenerationConfig, Gpt2, Strategy, generate};
use scalegrad_metrics::{
    ContinuationAccumulator, NextTokenAccumulator, Perplexity, WindowPredictions,
    WordContinuationAccumulator, WordTokenizer,
};
pub use scalegrad_results::{
    ContinuationSample, ContinuationSection, NextTokenSection, OpenEndedMetrics,
};
use tokenizers::Tokenizer;

use crate::config::DecodingSpec;
use crate::log::Progress;
use crate::task::{Task, TaskData, Validation, objective_in_chunks};

/// The training side: seeded batches of training windows, validation windows.
pub type LmTask<'a> = TaskData<LmWindows<'a>>;

/// Tensors of an LM batch on `device`: inputs, an attention mask when any position is
/// padding, and targets.
pub fn lm_tensors(
    batch: &LmBatch,
    device: &Device,
) -> (Tensor<2, Int>, Option<Tensor<2, Int>>, Tensor<2, Int>) {
    let shape = [batch.batch_size, batch.seq_len];
    let ids = Tensor::from_data(TensorData::new(batch.input_ids.clone(), shape), device);
    let targets = Tensor::from_data(TensorData::new(batch.targets.clone(), shape), device);
    let mask = batch
        .attention_mask
        .contains(&0)
        .then(|| Tensor::from_data(TensorData::new(batch.attention_mask.clone(), shape), device));
    (ids, mask, targets)
}

impl Task for TaskData<LmWindows<'_>> {
    type Model = Gpt2;
    type Batch = LmBatch;

    fn sampler(&self) -> &BatchSampler {
        &self.sampler
    }

    fn collate(&self, indices: Vec<usize>) -> LmBatch {
        collate_lm(&self.train, indices)
    }

    fn hidden(
        &self,
        model: &Gpt2,
        batch: &LmBatch,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>) {
        let (ids, mask, targets) = lm_tensors(batch, device);
        (model.forward_hidden(ids, mask), targets)
    }

    fn head(&self, model: &Gpt2, hidden: Tensor<3>) -> Tensor<3> {
        model.lm_head(hidden)
    }

    fn vocab_size(&self, model: &Gpt2) -> usize {
        model.config().vocab_size
    }

    fn validate(&self, model: &Gpt2, chunk_bytes: usize) -> Result<Validation, String> {
        let device = model.device();
        Validation::over_batches(
            self.valid_examples(self.valid.len()),
            self.batch_size,
            "the validation split has no windows; lower data.block_size",
            |indices| {
                let batch = collate_lm(&self.valid, indices);
                objective_in_chunks(self, model, &self.objective, &batch, &device, chunk_bytes)
            },
        )
    }

    fn save_best(&self, model: &Gpt2, dir: &std::path::Path) -> Result<(), String> {
        scalegrad_fs::replace_dir(
            dir,
            |staged| {
                model
                    .save_pretrained(staged, Some(&self.tokenizer_dir))
                    .map_err(|e| format!("saving the best model to {}: {e}", staged.display()))
            },
            |e| format!("replacing the best model {}: {e}", dir.display()),
        )
    }
}

/// Settings of the open-ended evaluation.
pub struct OpenEndedEval<'a> {
    /// The test token stream.
    pub tokens: &'a scalegrad_data::cache::TokenArray,
    /// Window length for the next-token metrics.
    pub window: usize,
    /// At most this many windows.
    pub max_windows: Option<usize>,
    /// Prefix length of continuations.
    pub prefix_len: usize,
    /// New tokens per continuation.
    pub continuation_len: usize,
    /// At most this many continuations.
    pub max_continuations: Option<usize>,
    /// Strategies.
    pub decoding: &'a [DecodingSpec],
    /// Rows per batch.
    pub batch_size: usize,
    /// Sampling seed.
    pub seed: u64,
    /// For decoding ids to text.
    pub tokenizer: &'a Tokenizer,
    /// Continuations kept as samples per strategy.
    pub samples: usize,
    /// Bytes of f32 logits the next-token metrics compute at once (`evaluation.chunk_mib`).
    pub chunk_bytes: usize,
}

/// Teacher-forced predictions of a batch of windows, row-major `[batch * window]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// Logits strictly greater than the target's (0: a hit; ties count as hits).
    pub ranks: Vec<u32>,
    /// The arg-max prediction.
    pub argmax: Vec<u32>,
    /// Negative log-likelihood of the target, in nats.
    pub nll: Vec<f32>,
}

/// Next-token predictions of `inputs` against `targets` (both `[batch, window]` ids):
/// one forward pass to the final hidden states, then the LM head and the statistics over
/// chunks of positions whose `[positions, vocab]` f32 logits fit in `chunk_bytes`, so no
/// buffer grows with the batch (a GPU backend may cap one buffer well below its memory:
/// wgpu at 2 GiB). Every position's numbers are those of the unchunked computation.
pub fn next_token_predictions(
    model: &Gpt2,
    inputs: TensorData,
    targets: TensorData,
    chunk_bytes: usize,
) -> Result<Predictions, String> {
    let device = model.device();
    let (b, window) = (inputs.shape()[0], inputs.shape()[1]);
    let ids = Tensor::<2, Int>::from_data(inputs, &device);
    let targets = Tensor::<2, Int>::from_data(targets, &device).reshape([1, b * window]);
    let hidden = model.forward_hidden(ids, None);
    let width = hidden.dims()[2];
    let hidden = hidden.reshape([1, b * window, width]);
    let vocab = model.config().vocab_size;
    let rows = b * window;
    let chunk = (chunk_bytes / (vocab * 4)).clamp(1, rows);
    let (mut ranks, mut argmax, mut nll) = (Vec::new(), Vec::new(), Vec::new());
    for start in (0..rows).step_by(chunk) {
        let len = chunk.min(rows - start);
        let logits = model.lm_head(hidden.clone().narrow(1, start, len));
        let target = targets.clone().narrow(1, start, len).reshape([1, len, 1]);
        let target_logit = logits.clone().gather(2, target);
        // Entries strictly greater than the target's logit: 0 is a hit (ties count).
        ranks.push(
            logits
                .clone()
                .greater(target_logit.clone().expand([1, len, vocab]))
                .int()
                .sum_dim(2)
                .reshape([len]),
        );
        argmax.push(logits.clone().argmax(2).reshape([len]));
        let log_norm = {
            let max = logits.clone().max_dim(2);
            (logits - max.clone()).exp().sum_dim(2).log() + max
        };
        nll.push((log_norm - target_logit).reshape([len]));
    }
    // The three in one read (one synchronisation per batch).
    let read = Transaction::default()
        .register(Tensor::cat(ranks, 0))
        .register(Tensor::cat(argmax, 0))
        .register(Tensor::cat(nll, 0))
        .try_execute()
        .map_err(|e| format!("reading the next-token statistics: {e:?}"))?;
    let [ranks, argmax, nll]: [TensorData; 3] = read
        .try_into()
        .map_err(|_| "the read returned other than three tensors".to_string())?;
    Ok(Predictions {
        ranks: int_values(ranks)?,
        argmax: int_values(argmax)?,
        nll: nll
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?,
    })
}

fn decode(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String, String> {
    tokenizer
        .decode(ids, false)
        .map_err(|e| format!("decoding {} ids: {e}", ids.len()))
}

/// Evaluates `model` (in validation mode) on the test stream.
pub fn evaluate(
    model: &Gpt2,
    eval: &OpenEndedEval<'_>,
) -> Result<(OpenEndedMetrics, Vec<ContinuationSample>), String> {
    let n_tokens = eval.tokens.len();
    if n_tokens < eval.window + 1 {
        return Err(format!(
            "the test split has {n_tokens} tokens, fewer than one evaluation window of {} + 1",
            eval.window
        ));
    }
    // Non-overlapping windows of `window` inputs and their shifted targets; the partial
    // tail is dropped so every window has the same length.
    let all_windows = (n_tokens - 1) / eval.window;
    let windows = eval.max_windows.map_or(all_windows, |m| m.min(all_windows));

    let mut perplexity = Perplexity::new();
    let mut next_token = NextTokenAccumulator::default();
    let mut progress = Progress::new("next-token", windows as u64, 0);
    for start in (0..windows).step_by(eval.batch_size) {
        let rows: Vec<usize> = (start..(start + eval.batch_size).min(windows)).collect();
        let b = rows.len();
        let mut inputs = Vec::with_capacity(b * eval.window);
        let mut targets = Vec::with_capacity(b * eval.window);
        for &w in &rows {
            let span = eval
                .tokens
                .to_vec(w * eval.window..w * eval.window + eval.window + 1);
            inputs.extend(span[..eval.window].iter().map(|&t| t as i64));
            targets.extend(span[1..].iter().map(|&t| t as i64));
        }
        let predictions = next_token_predictions(
            model,
            TensorData::new(inputs, [b, eval.window]),
            TensorData::new(targets.clone(), [b, eval.window]),
            eval.chunk_bytes,
        )?;
        let (ranks, argmax, nll) = (predictions.ranks, predictions.argmax, predictions.nll);
        perplexity.add_nlls(&nll);
        for r in 0..b {
            let range = r * eval.window..(r + 1) * eval.window;
            let t: Vec<u32> = targets[range.clone()].iter().map(|&t| t as u32).collect();
            next_token
                .add_window(&WindowPredictions {
                    targets: &t,
                    predictions: &argmax[range.clone()],
                    target_ranks: &ranks[range],
                })
                .map_err(|e| e.to_string())?;
        }
        progress.advance(b as u64, "");
    }
    progress.finish();
    let next_token = NextTokenSection {
        window: eval.window,
        stride: eval.window,
        windows,
        perplexity: perplexity.perplexity().ok_or("no scored test positions")?,
        metrics: next_token.report().map_err(|e| e.to_string())?,
    };

    // Continuations: each evaluated window is cut into consecutive prefixes; the human
    // continuation of a prefix is the text that follows it.
    let span = windows * eval.window;
    let mut prefixes: Vec<(usize, Vec<u32>)> = Vec::new();
    for start in (0..span).step_by(eval.prefix_len) {
        if start + eval.prefix_len + eval.continuation_len > n_tokens {
            break;
        }
        prefixes.push((start, eval.tokens.to_vec(start..start + eval.prefix_len)));
    }
    if let Some(max) = eval.max_continuations {
        prefixes.truncate(max);
    }
    if prefixes.is_empty() {
        return Err("the test split is too short for one prefix and its continuation".into());
    }
    let word_tokenizer = WordTokenizer::default();
    let mut human_token = ContinuationAccumulator::new();
    let mut human_word = WordContinuationAccumulator::new(word_tokenizer);
    let mut human_texts = Vec::with_capacity(prefixes.len());
    for (start, _) in &prefixes {
        let ids = eval
            .tokens
            .to_vec(start + eval.prefix_len..start + eval.prefix_len + eval.continuation_len);
        human_token.add(&ids);
        let text = decode(eval.tokenizer, &ids)?;
        human_word.add(&text);
        human_texts.push(text);
    }

    let mut sections = Vec::new();
    let mut samples = Vec::new();
    for spec in eval.decoding {
        let strategy = match *spec {
            DecodingSpec::Greedy => Strategy::Greedy,
            DecodingSpec::TopK { k } => Strategy::top_k(k),
            DecodingSpec::TopP { p } => Strategy::top_p(p),
        };
        // No stop token: every continuation has exactly `continuation_len` tokens, as
        // in the reference evaluation.
        let config = GenerationConfig::greedy(eval.continuation_len)
            .with_strategy(strategy)
            .with_seed(eval.seed);
        let mut token = ContinuationAccumulator::new();
        let mut word = WordContinuationAccumulator::new(word_tokenizer);
        let mut progress = Progress::new(
            &format!("continue ({})", spec.label()),
            prefixes.len() as u64,
            0,
        );
        for (chunk_index, chunk) in prefixes.chunks(eval.batch_size).enumerate() {
            let prompts: Vec<Vec<u32>> = chunk.iter().map(|(_, p)| p.clone()).collect();
            let outputs = generate(model, &prompts, &config).map_err(|e| e.to_string())?;
            for (i, (prompt, out)) in prompts.iter().zip(outputs).enumerate() {
                token.add(&out.tokens);
                let text = decode(eval.tokenizer, &out.tokens)?;
                word.add(&text);
                let index = chunk_index * eval.batch_size + i;
                if samples.len() < (sections.len() + 1) * eval.samples && index < eval.samples {
                    samples.push(ContinuationSample {
                        decoding: spec.label(),
                        prefix: decode(eval.tokenizer, prompt)?,
                        continuation: text,
                        reference: human_texts[index].clone(),
                        prefix_ids: prompt.clone(),
                        continuation_ids: out.tokens,
                    });
                }
            }
            progress.advance(chunk.len() as u64, "");
        }
        progress.finish();
        sections.push(ContinuationSection {
            decoding: spec.label(),
            prefix_len: eval.prefix_len,
            new_tokens: eval.continuation_len,
            count: prefixes.len(),
            token: token.report(),
            word: word.report(),
            human_token: human_token.report(),
            human_word: human_word.report(),
        });
    }
    Ok((
        OpenEndedMetrics {
            next_token,
            continuations: sections,
        },
        samples,
    ))
}

fn int_values(data: TensorData) -> Result<Vec<u32>, String> {
    let v: Vec<i64> = data
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| format!("{e:?}"))?;
    Ok(v.into_iter().map(|x| x as u32).collect())
}
