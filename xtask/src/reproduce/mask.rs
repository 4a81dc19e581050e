//! The dropout illustration, two ways: the notebook's cell (a 4×5 `np.random.uniform`
//! matrix, a mask `uniform < 1 − 0.2`, the unscaled product) and kiln's real `Dropout(0.2)`
//! layer on the book's 4×4 activation matrix (inverted dropout: kept values scaled by
//! 1/(1 − rate) at training time, so nothing is scaled at test time).

use kiln_layers::{BuildContext, DEFAULT_MAX_WEIGHTS, Dropout, Layer, LayerInput};
use kiln_tensor::{Matrix, Parallelism, Rng, Shape};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::drawing;

/// The book's activation matrix (figure "dropout applied to an activation matrix").
const ACTIVATIONS: [[f32; 4]; 4] =
    [[0.3, 0.2, 1.5, 0.0], [0.6, 0.1, 0.0, 0.3], [0.2, 1.9, 0.3, 1.2], [0.7, 0.5, 1.0, 0.0]];

/// The dropout rate of the illustration.
pub const RATE: f32 = 0.2;

/// The notebook's cell: values, 0/1 mask and their (unscaled) product, each 4×5.
#[derive(Debug, Clone, PartialEq)]
pub struct NotebookCell {
    /// `np.random.uniform(size=(4, 5))`.
    pub values: Matrix,
    /// `np.random.uniform(size=(4, 5)) < 1 − rate`, as 0/1.
    pub mask: Matrix,
    /// `values * mask`.
    pub product: Matrix,
}

/// The notebook's cell with numpy's legacy generator `np.random.seed(seed)`, so it prints
/// what numpy prints for that seed.
pub fn notebook_cell(seed: u32) -> anyhow::Result<NotebookCell> {
    let mut rng = kiln_datasets::random_state::RandomState::new(seed);
    let mut draw = || -> Vec<f32> { (0..20).map(|_| rng.random_sample() as f32).collect() };
    let values = Matrix::from_vec(4, 5, draw())?;
    let keep: Vec<f32> = draw().into_iter().map(|u| f32::from(u8::from(u < 1.0 - RATE))).collect();
    let mask = Matrix::from_vec(4, 5, keep)?;
    let product = Matrix::from_vec(4, 5, values.as_slice().iter().zip(mask.as_slice()).map(|(v, m)| v * m).collect())?;
    Ok(NotebookCell { values, mask, product })
}

/// Input, mask and output of kiln's `Dropout(0.2)` in training mode, each 4×4, beside the
/// notebook's cell.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskDemo {
    /// The notebook's 4×5 cell.
    pub notebook: NotebookCell,
    /// The activations.
    pub input: Matrix,
    /// 0 (dropped) or 1/(1−rate) (kept, rescaled) per value.
    pub mask: Matrix,
    /// `input × mask`.
    pub output: Matrix,
}

/// Runs the real layer once with a fixed seed, so the figure shows what training does.
pub fn demo(seed: u64) -> anyhow::Result<MaskDemo> {
    let input = Matrix::from_rows(&ACTIVATIONS)?;
    let mut layer = Dropout::new(f64::from(RATE)).seed(seed);
    let mut rng = Rng::seed_from_u64(seed);
    layer.build(&Shape::flat(input.cols()), &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS))?;
    layer.forward(LayerInput::Dense(input.view()), true, Parallelism::Sequential);
    let mask = Matrix::from_vec(input.rows(), input.cols(), layer.mask().to_vec())?;
    let notebook = notebook_cell(seed as u32)?;
    Ok(MaskDemo { notebook, output: layer.output().clone(), input, mask })
}

/// The three matrices as the notebook prints them (NumPy-style rows), for the report.
pub fn printed(d: &MaskDemo) -> String {
    let show = |name: &str, m: &Matrix| {
        let rows: Vec<String> = (0..m.rows())
            .map(|i| format!("[{}]", m.row(i).iter().map(|v| format!("{v:4.2}")).collect::<Vec<_>>().join(" ")))
            .collect();
        format!("{name}:\n[{}]\n", rows.join("\n "))
    };
    let n = &d.notebook;
    format!(
        "The notebook's cell:\n{}{}{}\nkiln's Dropout({RATE}) layer:\n{}{}{}",
        show("layer_output = np.random.uniform(size=(4, 5))", &n.values),
        show(&format!("mask = np.random.uniform(size=(4, 5)) < {}", 1.0 - RATE), &n.mask),
        show("layer_output * mask", &n.product),
        show("activations", &d.input),
        show("mask (training)", &d.mask),
        show("output", &d.output)
    )
}

/// Draws the notebook's cell (top row) and kiln's layer (bottom row), each as input, mask
/// and output grids side by side.
pub fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, d: &MaskDemo) -> anyhow::Result<()> {
    let title = format!(
        "Dropout (rate {RATE}) applied to an activation matrix at training time \
         (red: dropped by the mask; grey: already 0 before dropout)"
    );
    let body = area.titled(&title, ("sans-serif", 20)).map_err(drawing)?;
    let panels = body.split_evenly((2, 3));
    let n = &d.notebook;
    let captions = [
        "Notebook: np.random.uniform((4, 5))".to_string(),
        format!("Mask: uniform < {} (0 or 1)", 1.0 - RATE),
        "Product (unscaled)".into(),
        "kiln Dropout: activations".into(),
        format!("Mask (0 or 1/(1−{RATE}) = {:.2})", 1.0 / (1.0 - RATE)),
        "Output (scaled at training time)".into(),
    ];
    // Each grid with the mask that says which of its zeros were dropped (none for inputs).
    let matrices = [
        (&n.values, None),
        (&n.mask, Some(&n.mask)),
        (&n.product, Some(&n.mask)),
        (&d.input, None),
        (&d.mask, Some(&d.mask)),
        (&d.output, Some(&d.mask)),
    ];
    for ((panel, caption), (m, dropped)) in panels.iter().zip(captions).zip(matrices) {
        grid(panel, &caption, m, dropped)?;
    }
    Ok(())
}

/// Cells the mask dropped.
const DROPPED: RGBColor = RGBColor(250, 190, 190);
/// Zeros that were zero before dropout (a ReLU's output), kept by the mask.
const ALREADY_ZERO: RGBColor = RGBColor(215, 215, 215);

/// One matrix as a grid of shaded, labelled cells: red where `mask` (0 = dropped) dropped
/// the value, grey where a value is 0 without being dropped.
fn grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    m: &Matrix,
    mask: Option<&Matrix>,
) -> anyhow::Result<()> {
    let (rows, cols) = (m.rows(), m.cols());
    let mut c = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(18)
        .build_cartesian_2d(0.0..cols as f64, 0.0..rows as f64)
        .map_err(drawing)?;
    let top = m.as_slice().iter().copied().fold(1e-6f32, f32::max);
    let centred = ("sans-serif", 18).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
    for i in 0..rows {
        for j in 0..cols {
            let v = m.get(i, j);
            let dropped = mask.is_some_and(|mask| mask.get(i, j) == 0.0);
            let shade = match (dropped, v == 0.0) {
                (true, _) => DROPPED,
                (false, true) => ALREADY_ZERO,
                (false, false) => blend(v / top),
            };
            // Row 0 at the top, as the matrix is printed.
            let (x, y) = (j as f64, (rows - i - 1) as f64);
            let cell = [(x, y), (x + 1.0, y + 1.0)];
            c.draw_series([Rectangle::new(cell, shade.filled()), Rectangle::new(cell, BLACK.stroke_width(1))])
                .map_err(drawing)?;
            c.draw_series(std::iter::once(Text::new(format!("{v:.2}"), (x + 0.5, y + 0.5), centred.clone())))
                .map_err(drawing)?;
        }
    }
    Ok(())
}

/// White to light blue by `t` in [0, 1].
fn blend(t: f32) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: f32, b: f32| (a + (b - a) * t) as u8;
    RGBColor(mix(255.0, 120.0), mix(255.0, 170.0), mix(255.0, 230.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_input_times_mask_and_masks_are_zero_or_rescaled() {
        let d = demo(1).unwrap();
        let keep = 1.0 / (1.0 - RATE);
        for ((x, k), y) in d.input.as_slice().iter().zip(d.mask.as_slice()).zip(d.output.as_slice()) {
            assert!(*k == 0.0 || (*k - keep).abs() < 1e-6);
            assert!((x * k - y).abs() < 1e-6);
        }
        assert_eq!(demo(1).unwrap(), d);
    }

    #[test]
    fn the_notebook_cell_is_numpys_for_the_seed() {
        // np.random.seed(0); np.random.uniform(size=(4, 5))[0, :3] and the mask drawn next.
        let c = notebook_cell(0).unwrap();
        for (got, numpy) in
            c.values.row(0)[..3].iter().zip([0.548_813_521_862_03, 0.715_189_366_372_419_6, 0.602_763_376_071_644_4])
        {
            assert_eq!(*got, numpy as f32);
        }
        let numpy_mask = [0., 1., 1., 1., 1., 1., 1., 0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 1.];
        assert_eq!(c.mask.as_slice(), numpy_mask);
        for ((v, m), p) in c.values.as_slice().iter().zip(c.mask.as_slice()).zip(c.product.as_slice()) {
            assert!(*m == 0.0 || *m == 1.0);
            assert_eq!(v * m, *p);
        }
    }
}
