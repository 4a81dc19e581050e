//! `cargo xtask bench --crossover`: where skipping zero inputs starts to pay. A 784→512
//! Dense layer (W1's first layer) runs forward and backward on batches of 128 rows at a
//! sweep of densities, fed once as dense rows and once as the same rows with their zeros
//! dropped (CSR, as `fit` gathers them from a sparse-enough data set), plus real MNIST
//! digits at their own density.

use kiln_layers::{Activation, Dense, GradOf, Layer, LayerInput};
use kiln_tensor::{CsrMatrix, Matrix, Parallelism, Rng};
use kiln_trainer::Sequential;

/// Rows per batch (W1's).
const BATCH: usize = 128;
/// Timed repetitions per point (after one warm-up).
const REPS: usize = 40;

/// Prints, per density, the milliseconds per batch of the dense and the zero-skipping
/// first layer (forward + kernel gradient) and their ratio.
pub fn run() -> anyhow::Result<()> {
    for units in [512, 96, 16] {
        sweep(units)?;
    }
    Ok(())
}

/// The sweep for a 784→`units` layer.
fn sweep(units: usize) -> anyhow::Result<()> {
    let mut model = Sequential::new().add(Dense::new(units).activation(Activation::Relu));
    model.build(784)?;
    let layer = &mut model.layers_mut()[0];
    let mut rng = Rng::seed_from_u64(9);
    let grad_values: Vec<f32> = (0..BATCH * units).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let mut grad = Matrix::from_vec(BATCH, units, grad_values)?;
    println!("784→{units} Dense, batch {BATCH}, forward + kernel gradient, 1 thread, median of {REPS}:");
    println!("  {:>8}  {:>9}  {:>9}  {:>7}", "density", "dense ms", "sparse ms", "ratio");
    let mut points: Vec<(String, Matrix)> = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]
        .iter()
        .map(|&d| {
            let values = (0..BATCH * 784).map(|_| if rng.uniform() < d { rng.uniform() + 1e-3 } else { 0.0 }).collect();
            (format!("{d:.2}"), Matrix::from_vec(BATCH, 784, values).expect("shape"))
        })
        .collect();
    points.push(("MNIST".into(), mnist_batch()?));
    for (label, x) in &points {
        let csr = to_csr(x);
        let dense = time(|| pass(layer.as_mut(), LayerInput::Dense(x.view()), &mut grad));
        let sparse = time(|| pass(layer.as_mut(), LayerInput::Sparse(&csr), &mut grad));
        let fwd_dense = time(|| layer.forward(LayerInput::Dense(x.view()), true, Parallelism::Sequential));
        let fwd_sparse = time(|| layer.forward(LayerInput::Sparse(&csr), true, Parallelism::Sequential));
        let label = if label == "MNIST" { format!("{:.3} (MNIST)", csr.density()) } else { label.clone() };
        println!(
            "  {label:>8}  {:>9.3}  {:>9.3}  {:>6.2}×   forward alone {:.3} / {:.3} ms",
            dense * 1e3,
            sparse * 1e3,
            dense / sparse,
            fwd_dense * 1e3,
            fwd_sparse * 1e3
        );
    }
    Ok(())
}

/// One forward (training) and backward pass of the first layer.
fn pass(layer: &mut dyn Layer, x: LayerInput<'_>, grad: &mut Matrix) {
    layer.forward(x, true, Parallelism::Sequential);
    layer.backward(x, grad, GradOf::Logits, None, Parallelism::Sequential);
}

/// Median seconds of `f` over [`REPS`] runs after a warm-up.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    super::median_seconds(REPS, || {}, f)
}

/// The non-zero entries of `x`.
fn to_csr(x: &Matrix) -> CsrMatrix {
    let mut m = CsrMatrix::with_cols(x.cols());
    for i in 0..x.rows() {
        let (ind, val): (Vec<u32>, Vec<f32>) =
            x.row(i).iter().enumerate().filter(|&(_, &v)| v != 0.0).map(|(j, &v)| (j as u32, v)).unzip();
        m.push_row(&ind, &val).expect("increasing columns");
    }
    m
}

/// The first 128 bundled MNIST digits, scaled by 1/255.
fn mnist_batch() -> anyhow::Result<Matrix> {
    let loader = kiln_datasets::Loader::from_env();
    let set = loader.mnist(&kiln_datasets::Source::Bundled, kiln_datasets::Split::Train)?.data;
    let idx: Vec<usize> = (0..BATCH).collect();
    let mut out = Matrix::default();
    set.images.gather_scaled_into(&idx, 255.0, &mut out);
    Ok(out)
}
