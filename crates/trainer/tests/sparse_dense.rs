//! Multi-hot input trained as CSR equals the same rows trained dense: same weights, same
//! RMSprop velocities (rows without a gradient in a batch still decay, as in Keras).

use kiln_layers::{Activation, Dense};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{CsrMatrix, Matrix, Parallelism, Rng};
use kiln_trainer::{Features, FitOptions, Loss, Metric, Sequential, Verbosity};

const VOCAB: usize = 3_000;

/// 300 multi-hot rows; the first 40 also use the "early" words `0..20`, which later
/// batches never touch, so their velocities must keep decaying with zero gradients.
fn data() -> (CsrMatrix, Matrix) {
    let mut rng = Rng::seed_from_u64(11);
    let mut x = CsrMatrix::with_cols(VOCAB);
    let mut y = Vec::new();
    for i in 0..300 {
        let mut idx: Vec<u32> = (0..30).map(|_| 20 + rng.below(VOCAB as u64 - 20) as u32).collect();
        if i < 40 {
            idx.extend((0..3).map(|_| rng.below(20) as u32));
        }
        idx.sort_unstable();
        idx.dedup();
        y.push(if idx.iter().filter(|&&j| j % 2 == 0).count() * 2 > idx.len() { 1.0 } else { 0.0 });
        x.push_row(&idx, &vec![1.0; idx.len()]).unwrap();
    }
    (x, Matrix::from_vec(300, 1, y).unwrap())
}

/// A 3000-`units`-1 model; a kernel over 1 MiB (units ≥ 88) takes the column-wise path.
fn model(units: usize) -> Sequential {
    let mut m = Sequential::new()
        .seed(5)
        .add(Dense::new(units).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.set_parallelism(Parallelism::Sequential);
    m.compile(Optimizer::new(RMSprop::default(), 1e-3), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
    m
}

fn train(units: usize, x: Features, y: &Matrix) -> Sequential {
    let mut m = model(units);
    // The dense rows go through the dense products (a 1 %-dense matrix would otherwise
    // reach the layer as its non-zero values: the sparse path again).
    m.set_zero_skipping(false);
    // No shuffling: the 40 early rows form the first batch only.
    let opts = FitOptions::default().epochs(3).batch_size(40).shuffle(false).verbose(Verbosity::Silent);
    m.fit(&x, y, opts).unwrap();
    m
}

fn assert_close(what: &str, dense: &[f32], sparse: &[f32]) {
    assert_eq!(dense.len(), sparse.len(), "{what}: lengths");
    for (k, (&d, &s)) in dense.iter().zip(sparse).enumerate() {
        // Summation order differs (faer's GEMM vs the sparse kernels): float rounding only.
        assert!((d - s).abs() <= 1e-6 + 1e-4 * d.abs(), "{what}[{k}]: dense {d} vs sparse {s}");
    }
}

fn check(units: usize) {
    let (x, y) = data();
    let dense = train(units, Features::Dense(x.to_dense()), &y);
    let sparse = train(units, Features::Sparse(x), &y);
    for (d, s) in dense.get_weights().0.iter().zip(&sparse.get_weights().0) {
        assert_close(&d.name, &d.values, &s.values);
    }
    let (od, os) = (dense.optimizer().unwrap(), sparse.optimizer().unwrap());
    let (slots_d, slots_s) = (od.slots(), os.slots());
    assert_eq!(slots_d.len(), slots_s.len());
    for (d, s) in slots_d.iter().zip(&slots_s) {
        assert_close(&format!("{}/{}", d.param, d.slot), d.values, s.values);
    }
    // The early words get a gradient in the first of every 8 batches only, so the
    // comparison above covers velocities decaying under zero gradients; make sure they
    // did get one.
    let kernel_velocity = slots_s.iter().find(|s| s.param.ends_with("/kernel") && s.slot == "velocity").unwrap();
    let early = &kernel_velocity.values[..20 * units];
    assert!(early.iter().any(|&v| v > 0.0), "early words never got a gradient");
}

#[test]
fn sparse_equals_dense_row_wise_kernel() {
    check(16); // 3000×16 kernel: 192 KB, row-wise sparse kernels.
}

#[test]
fn sparse_equals_dense_column_wise_kernel() {
    check(128); // 3000×128 kernel: 1.5 MB, column-wise sparse kernels.
}

/// Sparse rows reach only layers that read them (Dense, Dropout, Flatten, Reshape); any
/// other first layer, built in or written outside kiln, is refused by name before a batch
/// runs, in fit and predict alike, never called with a sparse batch.
#[test]
fn sparse_rows_into_a_layer_that_takes_dense_values_are_refused_by_name() {
    let (x, y) = data();
    for first in [
        Box::new(kiln_layers::LayerNormalization::new()) as Box<dyn kiln_layers::Layer>,
        Box::new(kiln_layers::Normalization::new().with_stats(vec![0.5], vec![0.25])),
    ] {
        let mut m = Sequential::new().input_shape([VOCAB]);
        m.push(first);
        m.push(Box::new(Dense::new(1).activation(Activation::Sigmoid)));
        m.compile("rmsprop", "binary_crossentropy", ["accuracy"]).unwrap();
        let err = m.fit(&x, &y, FitOptions::default().verbose(Verbosity::Silent)).unwrap_err().to_string();
        assert!(err.contains("reads the model's input (sparse (CSR) rows) but takes dense values only"), "{err}");
        let err = m.predict(&x, None).unwrap_err().to_string();
        assert!(err.contains("takes dense values only"), "{err}");
    }
}
