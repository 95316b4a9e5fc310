//! The summarisation experiment: BERT2BERT on CNN/DailyMail, evaluated with ROUGE on
//! beam-search summaries, repetition inside summaries and novel n-grams (REFERENCE.md §2).

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_bert2bert::{
    Bert2Bert, Bert2BertConfig, GenerationConfig, generate, save_pretrained,
};
use scalegrad_data::{BatchSampler, Seq2SeqBatch, SummarizationSet, collate_seq2seq};
use scalegrad_metrics::{BootstrapConfig, RougeReport, RougeScorer, SummaryAccumulator};
pub use scalegrad_results::{SummarizationMetrics, SummarySample};
use tokenizers::Tokenizer;

use crate::log::Progress;
use crate::task::{Task, TaskData, Validation, objective_in_chunks};

/// The training side: seeded batches of examples (bucketed by length), validation set.
pub struct SummarizationTask<'a> {
    /// Training and validation pairs, batch order, objective.
    pub data: TaskData<SummarizationSet<'a>>,
    /// `[PAD]`.
    pub pad_id: u32,
    /// The model's config (saved with the best model).
    pub model_config: Bert2BertConfig,
}

/// Tensors of a batch: source ids and mask, decoder ids and mask, labels.
pub fn seq2seq_tensors(batch: &Seq2SeqBatch, device: &Device) -> [Tensor<2, Int>; 5] {
    let src = [batch.batch_size, batch.source_len];
    let tgt = [batch.batch_size, batch.target_len];
    let t = |v: &Vec<i64>, shape: [usize; 2]| {
        Tensor::<2, Int>::from_data(TensorData::new(v.clone(), shape), device)
    };
    [
        t(&batch.input_ids, src),
        t(&batch.attention_mask, src),
        t(&batch.decoder_input_ids, tgt),
        t(&batch.decoder_attention_mask, tgt),
        t(&batch.labels, tgt),
    ]
}

fn collate(set: &SummarizationSet<'_>, indices: Vec<usize>, pad: u32) -> Seq2SeqBatch {
    let examples: Vec<_> = indices.iter().map(|&i| set.get(i)).collect();
    collate_seq2seq(&examples, pad, indices)
}

impl Task for SummarizationTask<'_> {
    type Model = Bert2Bert;
    type Batch = Seq2SeqBatch;

    fn sampler(&self) -> &BatchSampler {
        &self.data.sampler
    }

    fn collate(&self, indices: Vec<usize>) -> Seq2SeqBatch {
        collate(&self.data.train, indices, self.pad_id)
    }

    fn hidden(
        &self,
        model: &Bert2Bert,
        batch: &Seq2SeqBatch,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>) {
        let [ids, mask, dec, dec_mask, labels] = seq2seq_tensors(batch, device);
        (
            model.forward_hidden(ids, Some(mask), dec, Some(dec_mask)),
            labels,
        )
    }

    fn head(&self, model: &Bert2Bert, hidden: Tensor<3>) -> Tensor<3> {
        model.decoder.logits(hidden)
    }

    fn vocab_size(&self, model: &Bert2Bert) -> usize {
        model.decoder.head.bias.dims()[0]
    }

    fn validate(&self, model: &Bert2Bert, chunk_bytes: usize) -> Result<Validation, String> {
        let device = model.device();
        let data = &self.data;
        Validation::over_batches(
            data.valid_examples(data.valid.len()),
            data.batch_size,
            "the validation split has no examples",
            |indices| {
                let batch = collate(&data.valid, indices, self.pad_id);
                objective_in_chunks(self, model, &data.objective, &batch, &device, chunk_bytes)
            },
        )
    }

    fn save_best(&self, model: &Bert2Bert, dir: &Path) -> Result<(), String> {
        save_model_dir(model, &self.model_config, &self.data.tokenizer_dir, dir)
    }
}

/// Writes a Hugging Face directory (config, weights, tokenizer) atomically: in full under
/// a staging name, then installed so that a complete copy exists at every instant.
pub fn save_model_dir(
    model: &Bert2Bert,
    config: &Bert2BertConfig,
    tokenizer_dir: &Path,
    dir: &Path,
) -> Result<(), String> {
    scalegrad_fs::replace_dir(
        dir,
        |staged| {
            save_pretrained(model, config, staged).map_err(|e| e.to_string())?;
            scalegrad_bert2bert::copy_tokenizer_files(tokenizer_dir, staged)
                .map_err(|e| e.to_string())
        },
        |e| format!("replacing the model {}: {e}", dir.display()),
    )
}

/// Puts one sentence per line, the usual preparation before ROUGE-Lsum (which otherwise
/// equals ROUGE-L): a sentence ends at `.`, `!` or `?` followed by whitespace, except
/// after abbreviations written with inner periods or a single letter (`u.s.`, `j.`).
pub fn one_sentence_per_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c.is_whitespace() {
            word.clear();
            continue;
        }
        word.push(c);
        let ends = matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace());
        let abbreviation =
            c == '.' && (word[..word.len() - 1].contains('.') || word.chars().count() <= 2);
        if ends && !abbreviation {
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
            }
            out.push('\n');
            word.clear();
        }
    }
    out
}

/// Inputs of the summarisation evaluation.
pub struct SummarizationEval<'a> {
    /// Test examples (token ids).
    pub test: &'a SummarizationSet<'a>,
    /// Raw articles, highlights and ids of the test split, in the same order.
    pub articles: &'a [String],
    /// Reference highlights.
    pub highlights: &'a [String],
    /// Example ids.
    pub ids: &'a [String],
    /// At most this many examples.
    pub max_examples: Option<usize>,
    /// Generation settings.
    pub generation: &'a GenerationConfig,
    /// Articles per generation batch.
    pub batch_size: usize,
    /// `[PAD]`.
    pub pad_id: u32,
    /// Decoding ids to text.
    pub tokenizer: &'a Tokenizer,
    /// ROUGE with the stemmer.
    pub stemmer: bool,
    /// Bootstrap settings.
    pub bootstrap: BootstrapConfig,
    /// Summaries kept as samples.
    pub samples: usize,
}

/// Summarises the test articles and scores the summaries.
pub fn evaluate(
    model: &Bert2Bert,
    eval: &SummarizationEval<'_>,
) -> Result<(SummarizationMetrics, Vec<SummarySample>), String> {
    let device = model
        .encoder
        .embeddings
        .word_embeddings
        .weight
        .val()
        .device();
    let n = eval
        .max_examples
        .map_or(eval.test.len(), |m| m.min(eval.test.len()));
    if n == 0 {
        return Err("the test split has no examples".into());
    }
    let mut predictions = Vec::with_capacity(n);
    let mut samples = Vec::new();
    let mut progress = Progress::new("summarize", n as u64, 0);
    for start in (0..n).step_by(eval.batch_size) {
        let indices: Vec<usize> = (start..(start + eval.batch_size).min(n)).collect();
        let batch = collate(eval.test, indices.clone(), eval.pad_id);
        let [ids, mask, ..] = seq2seq_tensors(&batch, &device);
        let generated =
            generate(model, ids, Some(mask), eval.generation).map_err(|e| e.to_string())?;
        for (&i, g) in indices.iter().zip(generated) {
            let text = eval
                .tokenizer
                .decode(&g.tokens, true)
                .map_err(|e| format!("decoding summary {i}: {e}"))?;
            if samples.len() < eval.samples {
                samples.push(SummarySample {
                    id: eval.ids.get(i).cloned().unwrap_or_default(),
                    article: eval.articles[i].chars().take(600).collect(),
                    reference: eval.highlights[i].clone(),
                    summary: text.clone(),
                    summary_ids: g.tokens.clone(),
                });
            }
            predictions.push(text);
        }
        progress.advance(indices.len() as u64, "");
    }
    progress.finish();

    let split: Vec<String> = predictions
        .iter()
        .map(|p| one_sentence_per_line(p))
        .collect();
    let references: Vec<&str> = eval.highlights[..n].iter().map(String::as_str).collect();
    let predicted: Vec<&str> = split.iter().map(String::as_str).collect();
    let scorer = RougeScorer::new(eval.stemmer);
    let rouge = RougeReport::compute(&scorer, &predicted, &references, &eval.bootstrap)
        .map_err(|e| e.to_string())?;
    let mut summaries = SummaryAccumulator::new();
    let mut refs = SummaryAccumulator::new();
    for ((article, prediction), reference) in
        eval.articles.iter().zip(&predictions).zip(eval.highlights)
    {
        summaries.add(article, prediction);
        refs.add(article, reference);
    }
    Ok((
        SummarizationMetrics {
            examples: n,
            generation: serde_json::to_value(eval.generation).map_err(|e| e.to_string())?,
            prediction_sentence_split: "after . ! ? followed by whitespace (references keep their newline-separated highlights)".into(),
            rouge,
            summaries: summaries.report(),
            references: refs.report(),
        },
        samples,
    ))
}

#[cfg(test)]
mod tests {
    use super::one_sentence_per_line;

    #[test]
    fn sentences_are_split_after_terminal_punctuation_only() {
        assert_eq!(
            one_sentence_per_line("the u.s. won. fans cheered! why? 3.5 points"),
            "the u.s. won.\nfans cheered!\nwhy?\n3.5 points"
        );
        assert_eq!(one_sentence_per_line("  one sentence  "), "one sentence");
        assert_eq!(
            one_sentence_per_line("j. smith left. ok ."),
            "j. smith left.\nok ."
        );
    }
}
