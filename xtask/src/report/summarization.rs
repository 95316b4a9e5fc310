//! The summarisation section of the report: ROUGE with bootstrap intervals, repetition
//! and novel n-grams beside the reference highlights, and the loss and ROUGE-2 figures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use scalegrad_results::TypeReport;

use super::{Run, loss_figure, num, pct, samples_table};
use crate::plot::{self, Bar};

pub(super) fn summarization_section(md: &mut String, runs: &[Run], figures: &Path) -> Result<()> {
    writeln!(md, "## Summarization (BERT2BERT on CNN/DailyMail)\n")?;
    let first = runs[0].summarization();
    let bootstrap = &first.rouge.bootstrap;
    writeln!(
        md,
        "Beam-search summaries of {} test articles with the generation settings `{}`. ROUGE \
         F1 × 100 as Google's rouge_score computes it (stemmer {}, ROUGE-Lsum on \
         newline-split sentences), mean over articles with the bootstrap {}% interval \
         [low, high] ({} resamples, seeded). Repetition and novel n-grams are measured on \
         rouge_score tokens without stemming.\n",
        first.examples,
        first.generation,
        if first.rouge.use_stemmer { "on" } else { "off" },
        bootstrap.confidence_interval * 100.0,
        bootstrap.n_samples,
    )?;
    writeln!(
        md,
        "| run | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum | seq-rep-4 ↓ | novel 1-grams | novel 2-grams | novel 3-grams |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let cell = |t: &TypeReport| {
        format!(
            "{} [{}, {}]",
            pct(t.fmeasure),
            pct(t.low.fmeasure),
            pct(t.high.fmeasure)
        )
    };
    for r in runs {
        let s = r.summarization();
        let rouge = &s.rouge;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label(),
            cell(&rouge.rouge1),
            cell(&rouge.rouge2),
            cell(&rouge.rouge_l),
            cell(&rouge.rouge_lsum),
            num(s.summaries.seq_rep[3], 3),
            num(s.summaries.novel[0], 3),
            num(s.summaries.novel[1], 3),
            num(s.summaries.novel[2], 3),
        )?;
    }
    let refs = &first.references;
    writeln!(
        md,
        "| human (reference highlights) | – | – | – | – | {} | {} | {} | {} |\n",
        num(refs.seq_rep[3], 3),
        num(refs.novel[0], 3),
        num(refs.novel[1], 3),
        num(refs.novel[2], 3),
    )?;
    writeln!(
        md,
        "Paper (Lin et al. 2021, Table 4, CNN/DM): ScaleGrad raises ROUGE slightly over MLE and \
         makes summaries less repetitive.\n"
    )?;
    loss_figure(runs, &figures.join("summarization-loss"), "summarization")?;
    writeln!(
        md,
        "![training and validation NLL](figures/summarization-loss.png)\n"
    )?;
    let bars: Vec<Bar> = runs
        .iter()
        .map(|r| {
            let t = &r.summarization().rouge.rouge2;
            Bar {
                label: r.label(),
                value: t.fmeasure * 100.0,
                interval: Some((t.low.fmeasure * 100.0, t.high.fmeasure * 100.0)),
            }
        })
        .collect();
    let title = format!(
        "ROUGE-2 F1 with bootstrap {}% intervals",
        bootstrap.confidence_interval * 100.0
    );
    plot::bars(
        &figures.join("summarization-rouge2"),
        &plot::Bars {
            title: &title,
            y_label: "ROUGE-2 F1 x 100",
            bars: &bars,
        },
    )?;
    writeln!(md, "![ROUGE-2 by run](figures/summarization-rouge2.png)\n")?;
    samples_table(md, runs, "reference", "Summaries side by side")?;
    Ok(())
}
