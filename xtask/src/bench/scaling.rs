//! `cargo xtask bench --scaling FILE.png`: how an epoch's cost grows with batch size,
//! layer width and vocabulary size, drawn as three small panels.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::workloads::{self, Workload};
use crate::plot::{PALETTE, drawing};

/// One panel: what varies, the workload it varies, and the measured points.
struct Panel {
    title: &'static str,
    x_label: &'static str,
    points: Vec<(f64, f64)>,
}

/// Measures the three sweeps (one warm-up and one timed epoch per point, one thread)
/// and draws them into `png` (with the numbers printed to stdout).
pub fn run(png: &Path) -> anyhow::Result<()> {
    crate::plot::fonts::ensure()?;
    let sweep = |title, x_label, xs: &[usize], build: &dyn Fn(usize) -> anyhow::Result<Workload>| {
        let mut points = Vec::new();
        for &x in xs {
            let mut w = build(x)?;
            let secs = super::time_epochs(&mut w, 2)?[1];
            println!("{title:<40} {x_label:<18} {x:>6}  {secs:>7.3} s/epoch");
            points.push((x as f64, secs));
        }
        anyhow::Ok(Panel { title, x_label, points })
    };
    let panels = [
        sweep("W1 (784-512-10): batch size", "batch size", &[32, 64, 128, 256, 512], &|b| {
            workloads::mnist_like(&[512], false, b)
        })?,
        sweep("784-H-10, batch 128: width H", "hidden units H", &[64, 128, 256, 512, 1024, 2048], &|h| {
            workloads::mnist_like(&[h], false, 128)
        })?,
        sweep(
            "W2 (V-16-16-1), batch 512: vocabulary V",
            "vocabulary V",
            &[2_000, 5_000, 10_000, 20_000, 50_000],
            &|v| workloads::imdb_like(&[16, 16], v),
        )?,
    ];
    let root = BitMapBackend::new(png, (1500, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    for (area, panel) in root.split_evenly((1, 3)).iter().zip(&panels) {
        draw(area, panel)?;
    }
    root.present().map_err(drawing).with_context(|| format!("writing {}", png.display()))?;
    eprintln!("wrote {}", png.display());
    Ok(())
}

/// One panel (linear axes, y from zero) with points joined by a line.
fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, panel: &Panel) -> anyhow::Result<()> {
    let x1 = panel.points[panel.points.len() - 1].0;
    let y1 = panel.points.iter().map(|p| p.1).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x1 * 1.05, 0.0..y1 * 1.15)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc("seconds per epoch")
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| if y1 < 0.1 { format!("{v:.3}") } else { format!("{v:.2}") })
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(drawing)?;
    let color = PALETTE[0];
    chart.draw_series(LineSeries::new(panel.points.clone(), color.stroke_width(2))).map_err(drawing)?;
    chart.draw_series(panel.points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(drawing)?;
    Ok(())
}
