//! Progress of a batched command over a list of inputs (prompts, articles).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// An indicatif bar on a terminal; one plain line per batch when standard error is a
/// file or a pipe (a log keeps rate and ETA without control characters); nothing when
/// not `shown`.
pub(crate) struct ItemProgress {
    bar: ProgressBar,
    unit: &'static str,
    plain: bool,
}

impl ItemProgress {
    /// A bar over `total` items called `unit` (plural, e.g. "prompts").
    pub(crate) fn new(total: usize, unit: &'static str, shown: bool) -> Self {
        let bar = ProgressBar::new(total as u64);
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        if !(shown && terminal) {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}, {{per_sec}}, ETA {{eta}}");
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
        Self {
            bar,
            unit,
            plain: shown && !terminal,
        }
    }

    /// Counts `done` more items.
    pub(crate) fn advance(&self, done: usize) {
        self.bar.inc(done as u64);
        if self.plain {
            eprintln!("{}", self.plain_line());
        }
    }

    /// `"12/40 prompts, 3.10/s, ETA 9 s"`.
    fn plain_line(&self) -> String {
        let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let rate = pos as f64 / self.bar.elapsed().as_secs_f64().max(1e-9);
        let eta = len.saturating_sub(pos) as f64 / rate.max(1e-9);
        format!("{pos}/{len} {}, {rate:.2}/s, ETA {eta:.0} s", self.unit)
    }

    /// Runs `f` with the bar hidden, so that output it prints does not tear the bar.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_counts_items_and_names_the_unit() {
        let progress = ItemProgress::new(40, "articles", false);
        progress.advance(10);
        let line = progress.plain_line();
        assert!(line.starts_with("10/40 articles, "), "{line}");
        assert!(line.ends_with(" s"), "{line}");
        progress.advance(30);
        assert!(progress.plain_line().contains("ETA 0 s"));
    }
}
