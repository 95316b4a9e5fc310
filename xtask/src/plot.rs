//! Figures for the report, each written as PNG and SVG with plotters.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (the `dejavu` crate), so the
//! PNGs render the same on machines without system fonts, such as CI.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// One line of a line chart.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, sorted by x.
    pub points: Vec<(f64, f64)>,
    /// Dashed lines with markers (validation curves) instead of plain lines.
    pub marked: bool,
    /// Index into the palette, so the same run keeps its colour across charts.
    pub color: usize,
}

/// One bar of a bar chart, with an optional interval.
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Lower and upper end of an interval, drawn as an error bar.
    pub interval: Option<(f64, f64)>,
}

const SIZE: (u32, u32) = (960, 540);

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The registration only fails for malformed font data, which is compiled in.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[i % PALETTE.len()]
}

/// Something drawable on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Writes `stem.png` and `stem.svg` of `figure`.
fn both(stem: &Path, figure: &impl Figure) -> Result<()> {
    register_fonts();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    // The PNG encoder writes to a path of its own (its extension picks the format): a
    // hidden sibling, installed over the figure once complete.
    let png_tmp = png.with_file_name(format!(
        ".{}.tmp.png",
        stem.file_name().unwrap_or_default().to_string_lossy()
    ));
    {
        let area = BitMapBackend::new(&png_tmp, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        figure.draw(&area)?;
        area.present()
            .map_err(|e| anyhow!("writing {}: {e:?}", png.display()))?;
    }
    scalegrad_fs::install_file(&png_tmp, &png)
        .map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        figure.draw(&area)?;
        area.present()
            .map_err(|e| anyhow!("drawing {}: {e:?}", svg.display()))?;
    }
    scalegrad_fs::write_atomic(&svg, text.as_bytes())
        .map_err(|e| anyhow!("writing {}: {e}", svg.display()))
}

fn bounds(series: &[Series]) -> Option<((f64, f64), (f64, f64))> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut any = false;
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            any = true;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if !any {
        return None;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    Some(((x0, x1.max(x0 + 1.0)), (y0 - pad, y1 + pad)))
}

/// Draws one line chart panel.
fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let Some(((x0, x1), (y0, y1))) = bounds(series) else {
        return Ok(());
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    for s in series {
        let c = color(s.color);
        let style = if s.marked {
            c.stroke_width(2)
        } else {
            c.mix(0.8).stroke_width(1)
        };
        let drawn = chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(|e| anyhow!("{e:?}"))?;
        drawn
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if s.marked {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// A figure with two line-chart panels side by side (e.g. training and validation loss).
pub struct TwoPanels<'a> {
    /// Left panel: title, x label, y label, series.
    pub left: (&'a str, &'a str, &'a str, &'a [Series]),
    /// Right panel.
    pub right: (&'a str, &'a str, &'a str, &'a [Series]),
}

impl Figure for TwoPanels<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let (a, b) = area.split_horizontally(SIZE.0 / 2);
        let (t, x, y, s) = self.left;
        line_panel(&a, t, x, y, s)?;
        let (t, x, y, s) = self.right;
        line_panel(&b, t, x, y, s)
    }
}

/// Writes a two-panel line figure.
pub fn two_panels(stem: &Path, figure: &TwoPanels<'_>) -> Result<()> {
    both(stem, figure)
}

/// A bar chart with optional intervals.
pub struct Bars<'a> {
    /// Title.
    pub title: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// The bars.
    pub bars: &'a [Bar],
}

impl Figure for Bars<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let bars = self.bars;
        let top = bars
            .iter()
            .map(|b| b.interval.map_or(b.value, |(_, hi)| hi.max(b.value)))
            .fold(0.0f64, f64::max)
            .max(1e-6)
            * 1.15;
        // plotters makes `(0..k).into_segmented()` hold k + 1 segments, one per bar here.
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(self.y_label)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => {
                    bars.get(*i).map(|b| b.label.clone()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let mut rect = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), b.value),
                    ],
                    color(i).mix(0.75).filled(),
                );
                rect.set_margin(0, 0, 12, 12);
                rect
            }))
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
                b.interval.map(|(lo, hi)| {
                    ErrorBar::new_vertical(
                        SegmentValue::CenterOf(i),
                        lo,
                        b.value,
                        hi,
                        BLACK.stroke_width(2),
                        12,
                    )
                })
            }))
            .map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    }
}

/// Writes a bar chart.
pub fn bars(stem: &Path, figure: &Bars<'_>) -> Result<()> {
    both(stem, figure)
}
