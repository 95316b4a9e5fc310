//! What the training loop needs from an experiment: the [`Task`] trait, the data every
//! task holds ([`TaskData`]), validation statistics, and the objective of a micro-batch
//! with the LM head applied in memory-bounded chunks.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use scalegrad_data::BatchSampler;
use scalegrad_loss::{LossOutput, Objective};

/// The data of a task whose examples are of type `S` (LM windows, summarisation pairs):
/// the training and validation sets, the seeded order of the training examples, the
/// objective, validation batching, and the tokenizer folder saved next to models.
pub struct TaskData<S> {
    /// Training examples.
    pub train: S,
    /// Validation examples.
    pub valid: S,
    /// Batch order of the training examples.
    pub sampler: BatchSampler,
    /// The objective (validation reports it beside the NLL).
    pub objective: Objective,
    /// Examples per validation batch.
    pub batch_size: usize,
    /// Validate on at most this many examples.
    pub max_valid: Option<usize>,
    /// Folder whose tokenizer files are copied next to saved models.
    pub tokenizer_dir: PathBuf,
}

impl<S> TaskData<S> {
    /// How many of the `available` validation examples are used (`max_valid`).
    pub fn valid_examples(&self, available: usize) -> usize {
        self.max_valid.map_or(available, |m| m.min(available))
    }
}

/// Validation statistics of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// Mean training objective per scored token.
    pub loss: f64,
    /// Mean negative log-likelihood per scored token.
    pub nll: f64,
}

impl Validation {
    /// Mean objective and negative log-likelihood per scored token over the first `n`
    /// validation examples, in batches of `batch_size`; `batch_loss` gives the
    /// objective's terms for the examples at the given indices. `empty` is the error when
    /// no token is scored.
    pub fn over_batches(
        n: usize,
        batch_size: usize,
        empty: &str,
        mut batch_loss: impl FnMut(Vec<usize>) -> LossOutput,
    ) -> Result<Self, String> {
        let mut batches = Vec::new();
        for start in (0..n).step_by(batch_size.max(1)) {
            let out = batch_loss((start..(start + batch_size).min(n)).collect());
            batches.push(Tensor::cat(
                vec![out.token_loss.sum(), out.nll.sum(), out.count],
                0,
            ));
        }
        if batches.is_empty() {
            return Err(empty.to_string());
        }
        // One host read for the whole validation; the batches' sums add up in f64.
        let sums = Tensor::cat(batches, 0)
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| format!("reading validation sums: {e:?}"))?;
        let (mut loss, mut nll, mut count) = (0.0f64, 0.0f64, 0.0f64);
        for batch in sums.chunks_exact(3) {
            loss += batch[0];
            nll += batch[1];
            count += batch[2];
        }
        if count == 0.0 {
            return Err(empty.to_string());
        }
        Ok(Self {
            loss: loss / count,
            nll: nll / count,
        })
    }
}

/// What the loop needs from a task (open-ended or summarisation).
pub trait Task {
    /// The model.
    type Model: Module + Clone;
    /// A micro-batch on the host.
    type Batch;

    /// The seeded order of the training examples, micro-batch by micro-batch.
    fn sampler(&self) -> &BatchSampler;
    /// The micro-batch of these training examples.
    fn collate(&self, indices: Vec<usize>) -> Self::Batch;
    /// Final hidden states `[B, T, H]` and targets `[B, T]` of a micro-batch: the
    /// hidden state at position `t` predicts `targets[:, t]` through [`head`](Self::head).
    fn hidden(
        &self,
        model: &Self::Model,
        batch: &Self::Batch,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>);
    /// The LM head: vocabulary logits `[b, T, V]` of hidden states `[b, T, H]`.
    fn head(&self, model: &Self::Model, hidden: Tensor<3>) -> Tensor<3>;
    /// The vocabulary size `V` of [`head`](Self::head)'s logits.
    fn vocab_size(&self, model: &Self::Model) -> usize;
    /// Validation statistics of a model (in validation mode, on the plain device), with
    /// the LM head in chunks of at most `chunk_bytes` of logits (see
    /// [`objective_in_chunks`]).
    fn validate(&self, model: &Self::Model, chunk_bytes: usize) -> Result<Validation, String>;
    /// Saves the best model so far (as a Hugging Face directory, say).
    fn save_best(&self, model: &Self::Model, dir: &Path) -> Result<(), String>;
}

/// The objective of a micro-batch, with the LM head applied to groups of rows whose
/// `[rows, T, V]` f32 logits fit in `chunk_bytes` (at least one row per group): no
/// logits buffer grows with the batch (a GPU backend may cap one buffer well below its
/// memory: wgpu at 2 GiB, which distilgpt2's logits pass at 32 x 340 tokens). Rows are
/// independent for every objective here (a context set never crosses rows), so the
/// result is the unchunked one: per-token terms side by side, the mean over all scored
/// tokens. A batch that fits is one chunk, computed exactly as before.
pub fn objective_in_chunks<T: Task>(
    task: &T,
    model: &T::Model,
    objective: &Objective,
    batch: &T::Batch,
    device: &Device,
    chunk_bytes: usize,
) -> LossOutput {
    let (hidden, targets) = task.hidden(model, batch, device);
    head_objective_in_chunks(
        hidden,
        targets,
        task.vocab_size(model),
        |hidden| task.head(model, hidden),
        objective,
        chunk_bytes,
    )
}

/// [`objective_in_chunks`] from a forward pass's final hidden states (`[rows, T, H]`)
/// and targets (`[rows, T]`): `head` turns hidden states into `[rows, T, vocab]` logits.
/// What the trainer's step computes after the model's body, for callers that time or
/// check it without a [`Task`] (the GPU benchmark).
pub fn head_objective_in_chunks(
    hidden: Tensor<3>,
    targets: Tensor<2, Int>,
    vocab: usize,
    head: impl Fn(Tensor<3>) -> Tensor<3>,
    objective: &Objective,
    chunk_bytes: usize,
) -> LossOutput {
    let [rows, len, _] = hidden.dims();
    let row_bytes = len * vocab * std::mem::size_of::<f32>();
    let per_chunk = (chunk_bytes / row_bytes.max(1)).clamp(1, rows.max(1));
    if per_chunk >= rows {
        return objective.forward_detailed(head(hidden), targets);
    }
    let parts: Vec<LossOutput> = (0..rows)
        .step_by(per_chunk)
        .map(|start| {
            let n = per_chunk.min(rows - start);
            let logits = head(hidden.clone().narrow(0, start, n));
            objective.forward_detailed(logits, targets.clone().narrow(0, start, n))
        })
        .collect();
    let count = parts
        .iter()
        .map(|p| p.count.clone())
        .reduce(|a, b| a + b)
        .expect("at least one chunk");
    let token_loss = Tensor::cat(parts.iter().map(|p| p.token_loss.clone()).collect(), 0);
    LossOutput {
        loss: token_loss.clone().sum() / count.clone().clamp_min(1.0),
        token_loss,
        nll: Tensor::cat(parts.iter().map(|p| p.nll.clone()).collect(), 0),
        scored: Tensor::cat(parts.iter().map(|p| p.scored.clone()).collect(), 0),
        novel: Tensor::cat(parts.iter().map(|p| p.novel.clone()).collect(), 0),
        count,
    }
}
