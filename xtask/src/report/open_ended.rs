//! The open-ended section of the report: next-token and continuation tables per
//! decoding strategy with the human reference, the paper's direction of each effect
//! beside ours, and the loss, seq-rep-4 and gamma figures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use scalegrad_results::{ContinuationSection, ObjectiveRecord, OpenEndedMetrics};

use super::{Run, loss_figure, num, samples_table, seq_reps};
use crate::plot::{self, Bar, Series};

pub(super) fn open_ended_section(md: &mut String, runs: &[Run], figures: &Path) -> Result<()> {
    writeln!(md, "## Open-ended generation (GPT-2 on WikiText)\n")?;
    let first = runs[0].open_ended();
    let nt = &first.next_token;
    let (prefix_len, new_tokens) = first
        .continuations
        .first()
        .map_or(("–".to_string(), "–".to_string()), |c| {
            (c.prefix_len.to_string(), c.new_tokens.to_string())
        });
    writeln!(
        md,
        "Next-token metrics on teacher-forced, non-overlapping test windows of {} tokens \
         (stride {}; {} windows). Perplexity is exp(mean NLL); acc counts ties as hits; \
         rep/wrep/uniq follow Welleck et al. with l = 128. Continuations: {prefix_len}-token \
         prefixes, {new_tokens} new tokens; seq-rep-n and uniq-seq on token ids.\n",
        nt.window, nt.stride, nt.windows,
    )?;
    let decodings: Vec<&str> = first
        .continuations
        .iter()
        .map(|c| c.decoding.as_str())
        .collect();
    for &decoding in &decodings {
        writeln!(md, "### Decoding: {decoding}\n")?;
        writeln!(
            md,
            "| run | ppl ↓ | acc ↑ | rep/128 ↓ | wrep/128 ↓ | uniq ↑ | seq-rep-1 | seq-rep-2 | seq-rep-3 | seq-rep-4 ↓ | uniq-seq ↑ |"
        )?;
        writeln!(
            md,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        let mut human = None;
        for r in runs {
            let o = r.open_ended();
            let Some(c) = o.continuation(decoding) else {
                continue;
            };
            let nt = &o.next_token.metrics;
            let rep = nt.rep_at(128);
            let [r1, r2, r3, r4] = seq_reps(&c.token);
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {r1} | {r2} | {r3} | **{r4}** | {} |",
                r.label(),
                num(Some(o.next_token.perplexity), 2),
                num(Some(nt.acc), 3),
                num(rep.map(|r| r.rep), 3),
                num(rep.map(|r| r.wrep), 3),
                nt.uniq,
                c.token.uniq_seq,
            )?;
            human.get_or_insert((nt, &c.human_token));
        }
        if let Some((nt, h)) = human {
            writeln!(
                md,
                "| human | – | – | {} | – | {} | {} | {} |",
                num(nt.rep_at(128).map(|r| r.human_rep), 3),
                nt.human_uniq,
                seq_reps(h).join(" | "),
                h.uniq_seq,
            )?;
        }
        writeln!(
            md,
            "\nWord level (tokeniser `\\w+|[^\\w\\s]|\\n`, continuations of ≤ 3 words dropped):\n"
        )?;
        writeln!(md, "| run | seq-rep-4 ↓ | uniq-seq ↑ | scored |")?;
        writeln!(md, "|---|---:|---:|---:|")?;
        let mut human_word = None;
        for r in runs {
            let Some(c) = r.open_ended().continuation(decoding) else {
                continue;
            };
            writeln!(
                md,
                "| {} | {} | {} | {} |",
                r.label(),
                num(c.word.seq_rep_4, 3),
                c.word.uniq_seq,
                c.word.continuations
            )?;
            human_word.get_or_insert(&c.human_word);
        }
        if let Some(h) = human_word {
            writeln!(
                md,
                "| human | {} | {} | {} |",
                num(h.seq_rep_4, 3),
                h.uniq_seq,
                h.continuations
            )?;
        }
        writeln!(md)?;
    }

    if let Some(&decoding) = decodings.first() {
        direction_table(md, runs, decoding)?;
    }
    loss_figure(runs, &figures.join("open-ended-loss"), "open-ended")?;
    writeln!(
        md,
        "![training and validation NLL](figures/open-ended-loss.png)\n"
    )?;
    if let Some(&decoding) = decodings.first() {
        let bars: Vec<Bar> = runs
            .iter()
            .filter_map(|r| {
                Some(Bar {
                    label: r.label(),
                    value: r.open_ended().continuation(decoding)?.token.seq_rep_4?,
                    interval: None,
                })
            })
            .collect();
        plot::bars(
            &figures.join("open-ended-seq-rep-4"),
            &plot::Bars {
                title: &format!("seq-rep-4 of {decoding} continuations (lower is less repetitive)"),
                y_label: "seq-rep-4",
                bars: &bars,
            },
        )?;
        writeln!(
            md,
            "![seq-rep-4 by run](figures/open-ended-seq-rep-4.png)\n"
        )?;
        gamma_figure(md, runs, decoding, figures)?;
    }
    samples_table(md, runs, "prefix", "Greedy continuations side by side")?;
    Ok(())
}

/// One open-ended metric of a run under a decoding strategy.
type Metric = fn(&OpenEndedMetrics, &ContinuationSection) -> Option<f64>;

/// The paper's direction of each effect against ours (the first decoding, the first
/// ScaleGrad run against MLE).
fn direction_table(md: &mut String, runs: &[Run], decoding: &str) -> Result<()> {
    let trained = |kind: fn(&ObjectiveRecord) -> bool| {
        runs.iter()
            .find(|r| kind(&r.metrics.objective) && !r.metrics.is_initial())
    };
    let mle = trained(|o| matches!(o, ObjectiveRecord::Mle));
    let sg = trained(|o| matches!(o, ObjectiveRecord::ScaleGrad { .. }));
    let (Some(mle), Some(sg)) = (mle, sg) else {
        return Ok(());
    };
    writeln!(
        md,
        "### ScaleGrad against MLE: the paper's direction and ours ({decoding})\n"
    )?;
    writeln!(
        md,
        "| metric | paper (Lin et al. 2021, Table 1) | MLE | {} | same direction |",
        sg.label()
    )?;
    writeln!(md, "|---|---|---:|---:|:---:|")?;
    let rows: [(&str, &str, Metric, bool); 4] = [
        (
            "seq-rep-4",
            "lower (about an order of magnitude)",
            |_, c| c.token.seq_rep_4,
            false,
        ),
        (
            "uniq-seq",
            "higher",
            |_, c| Some(c.token.uniq_seq as f64),
            true,
        ),
        (
            "perplexity",
            "slightly higher",
            |o, _| Some(o.next_token.perplexity),
            true,
        ),
        (
            "uniq (next token)",
            "higher",
            |o, _| Some(o.next_token.metrics.uniq as f64),
            true,
        ),
    ];
    for (name, paper, metric, higher) in rows {
        let get = |r: &Run| {
            let o = r.open_ended();
            metric(o, o.continuation(decoding)?)
        };
        let (a, b) = (get(mle), get(sg));
        let agree = match (a, b) {
            (Some(a), Some(b)) if (b > a) == higher && a != b => "yes",
            (Some(_), Some(_)) => "no",
            _ => "–",
        };
        writeln!(
            md,
            "| {name} | {paper} | {} | {} | {agree} |",
            num(a, 3),
            num(b, 3)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn gamma_figure(md: &mut String, runs: &[Run], decoding: &str, figures: &Path) -> Result<()> {
    let mut points: Vec<(f64, f64, f64)> = runs
        .iter()
        .filter(|r| !r.metrics.is_initial())
        .filter_map(|r| {
            let o = r.open_ended();
            Some((
                r.metrics.objective.gamma()?,
                o.continuation(decoding)?.token.seq_rep_4?,
                o.next_token.perplexity,
            ))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if points.len() < 3 {
        return Ok(());
    }
    let rep = [Series {
        label: "seq-rep-4".into(),
        points: points.iter().map(|p| (p.0, p.1)).collect(),
        marked: true,
        color: 1,
    }];
    let ppl = [Series {
        label: "perplexity".into(),
        points: points.iter().map(|p| (p.0, p.2)).collect(),
        marked: true,
        color: 0,
    }];
    plot::two_panels(
        &figures.join("open-ended-gamma"),
        &plot::TwoPanels {
            left: ("seq-rep-4 against gamma", "gamma", "seq-rep-4", &rep),
            right: ("perplexity against gamma", "gamma", "perplexity", &ppl),
        },
    )?;
    writeln!(
        md,
        "![seq-rep-4 and perplexity against gamma](figures/open-ended-gamma.png)\n"
    )?;
    Ok(())
}
