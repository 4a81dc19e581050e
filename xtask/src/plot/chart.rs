//! Line charts of seed bands: the mean as a line, the min–max spread shaded behind it.

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordu32;
use plotters::prelude::*;

use super::band::Band;

/// How a curve's points are marked (the notebook tells curves apart by `+` and `o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A plain line.
    None,
    /// A dashed line, no points (the notebook's `"b--"`).
    Dashed,
    /// `+` markers.
    Cross,
    /// `o` markers.
    Circle,
}

/// One curve of a chart.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// The seed band.
    pub band: &'a Band,
    /// Line and band colour.
    pub color: RGBColor,
    /// Point markers.
    pub marker: Marker,
}

/// A chart: title, axis names and curves over epochs.
pub struct Chart<'a> {
    /// Caption above the plot.
    pub title: String,
    /// Y axis name.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series<'a>>,
    /// Logarithmic y axis (for losses spanning decades, like lr 1's).
    pub log_y: bool,
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
}

impl<'a> Chart<'a> {
    /// A linear chart with the legend top right.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>, series: Vec<Series<'a>>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            series,
            log_y: false,
            legend: SeriesLabelPosition::UpperRight,
        }
    }
}

/// The palette: matplotlib's first colours, so the figures look like the notebook's.
pub const PALETTE: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];

/// Turns a plotters error (generic over the backend) into an `anyhow` error.
pub fn drawing<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Draws `chart` on `area`.
pub fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart<'_>) -> anyhow::Result<()> {
    let epochs = chart.series.iter().map(|s| s.band.mean.len()).max().unwrap_or(1).max(2);
    let lo = chart
        .series
        .iter()
        .flat_map(|s| s.band.min.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = chart
        .series
        .iter()
        .flat_map(|s| s.band.max.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 0.5, lo + 0.5) };

    // A footnote under every chart says what the lines and the shading are.
    let (_, height) = area.dim_in_pixel();
    let (area, foot) = area.split_vertically(height.saturating_sub(FOOTNOTE_HEIGHT));
    let grey = ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90));
    foot.draw(&Text::new(footnote(chart), (14, 2), grey)).map_err(drawing)?;

    let mut builder = ChartBuilder::on(&area);
    builder.caption(&chart.title, ("sans-serif", 20)).margin(14).x_label_area_size(42).y_label_area_size(62);
    let x = 1u32..epochs as u32;
    if chart.log_y {
        let lo = lo.max(1e-4);
        let c = builder.build_cartesian_2d(x, (lo * 0.8..hi * 1.25).log_scale()).map_err(drawing)?;
        curves(c, chart, epochs)
    } else {
        let pad = (hi - lo) * 0.05;
        let c = builder.build_cartesian_2d(x, (lo - pad)..(hi + pad)).map_err(drawing)?;
        curves(c, chart, epochs)
    }
}

/// Pixels under a chart for its footnote.
const FOOTNOTE_HEIGHT: u32 = 20;

/// What the lines and bands are: `mean of 3 seeds; shaded: min–max over the seeds`, and
/// the log scale when there is one.
pub fn footnote(chart: &Chart<'_>) -> String {
    let seeds = chart.series.iter().map(|s| s.band.seeds).max().unwrap_or(1);
    let what = if seeds == 1 {
        "Lines: one seed".to_string()
    } else {
        format!("Lines: mean of {seeds} seeds; shaded band: min–max over the seeds")
    };
    if chart.log_y { format!("{what}. The y axis is logarithmic.") } else { format!("{what}.") }
}

/// Mesh, bands, mean lines, markers and legend on a built chart (linear or log y).
fn curves<'b, DB, Y>(
    mut c: ChartContext<'b, DB, Cartesian2d<RangedCoordu32, Y>>,
    chart: &Chart<'_>,
    epochs: usize,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'b,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let y_desc = if chart.log_y { format!("{} (log scale)", chart.y_label) } else { chart.y_label.clone() };
    c.configure_mesh()
        .x_desc("Epochs")
        .y_desc(&y_desc)
        .x_labels(epochs.min(20))
        .y_label_formatter(&|v| {
            if v.abs() >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
        })
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(drawing)?;

    for s in &chart.series {
        let n = s.band.mean.len();
        let at = |values: &[f64], e: usize| (e as u32 + 1, values[e]);
        let outline: Vec<(u32, f64)> =
            (0..n).map(|e| at(&s.band.min, e)).chain((0..n).rev().map(|e| at(&s.band.max, e))).collect();
        c.draw_series(std::iter::once(Polygon::new(outline, s.color.mix(0.18).filled()))).map_err(drawing)?;
        let mean: Vec<(u32, f64)> = (0..n).map(|e| at(&s.band.mean, e)).collect();
        let color = s.color;
        let drawn = if s.marker == Marker::Dashed {
            c.draw_series(DashedLineSeries::new(mean.clone(), 8, 5, color.stroke_width(2)))
        } else {
            c.draw_series(LineSeries::new(mean.clone(), color.stroke_width(2)))
        };
        // Two segments either way (one element type), with a gap when the line is dashed.
        let gap = if s.marker == Marker::Dashed { 5 } else { 0 };
        drawn.map_err(drawing)?.label(&s.label).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (9, 0)], color.stroke_width(2))
                + PathElement::new(vec![(9 + gap, 0), (22, 0)], color.stroke_width(2))
        });
        match s.marker {
            Marker::None | Marker::Dashed => {}
            Marker::Cross => {
                c.draw_series(mean.iter().map(|&p| Cross::new(p, 4, color.stroke_width(2)))).map_err(drawing)?;
            }
            Marker::Circle => {
                c.draw_series(mean.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(drawing)?;
            }
        }
    }
    c.configure_series_labels()
        .position(chart.legend.clone())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(drawing)?;
    Ok(())
}
