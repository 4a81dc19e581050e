//! A mostly-zero dense input (MNIST digits are 81 % zero pixels) reaches the first Dense
//! layer as its non-zero values alone: `fit`, `evaluate` and `predict` give exactly what
//! the same values given as CSR rows give, and the dense products' numbers up to the
//! order of additions; denser data and narrow layers keep the dense products.

use kiln_layers::{Activation, Dense, NONZERO_INPUT_MAX_DENSITY, NONZERO_INPUT_MIN_UNITS};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{ByteMatrix, CsrMatrix, Matrix, Parallelism, Rng};
use kiln_trainer::{Features, FitOptions, History, Loss, Metric, Sequential, Verbosity};

const ROWS: usize = 240;
const WIDTH: usize = 150;

/// `ROWS × WIDTH` pixels of which a fraction `density` is non-zero, and labels of 10 classes.
fn pixels(density: f64, seed: u64) -> (ByteMatrix, Matrix) {
    pixels_of(ROWS, WIDTH, density, seed)
}

/// `rows × width` pixels of which a fraction `density` is non-zero, and labels of 10 classes.
fn pixels_of(rows: usize, width: usize, density: f64, seed: u64) -> (ByteMatrix, Matrix) {
    let mut rng = Rng::seed_from_u64(seed);
    let values = (0..rows * width)
        .map(|_| if (rng.uniform() as f64) < density { 1 + rng.below(255) as u8 } else { 0 })
        .collect();
    let labels = Matrix::from_vec(rows, 1, (0..rows).map(|_| rng.below(10) as f32).collect()).unwrap();
    (ByteMatrix::from_vec(rows, width, values).unwrap(), labels)
}

/// The same values as CSR rows, each byte divided by 255 as a gathered batch divides it.
fn as_csr(bytes: &ByteMatrix) -> CsrMatrix {
    let mut m = CsrMatrix::with_cols(WIDTH);
    for i in 0..ROWS {
        let (idx, val): (Vec<u32>, Vec<f32>) = bytes
            .row(i)
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b != 0)
            .map(|(j, &b)| (j as u32, b as f32 / 255.0))
            .unzip();
        m.push_row(&idx, &val).unwrap();
    }
    m
}

/// A WIDTH-`hidden`-10 classifier.
fn model(hidden: usize, par: Parallelism, zero_skipping: bool) -> Sequential {
    let mut m = Sequential::new()
        .seed(4)
        .add(Dense::new(hidden).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    m.set_parallelism(par);
    m.set_zero_skipping(zero_skipping);
    m.compile(Optimizer::new(RMSprop::default(), 1e-2), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    m
}

/// `m` built for `WIDTH` inputs.
fn built(mut m: Sequential) -> Sequential {
    m.build(WIDTH).unwrap();
    m
}

/// Trains 3 epochs in batches of 32 with a validation split, then predicts every row.
fn run(m: Sequential, x: &Features, y: &Matrix) -> (History, Vec<Vec<u32>>, Vec<u32>) {
    run_in_batches(m, x, y, 32)
}

/// [`run`] in batches of `batch`.
fn run_in_batches(mut m: Sequential, x: &Features, y: &Matrix, batch: usize) -> (History, Vec<Vec<u32>>, Vec<u32>) {
    let opts =
        FitOptions::default().epochs(3).batch_size(batch).validation_split(0.25).seed(2).verbose(Verbosity::Silent);
    let history = m.fit(x, y, opts).unwrap();
    let weights = m.get_weights().0.iter().map(|t| t.values.iter().map(|v| v.to_bits()).collect()).collect();
    let predictions = m.predict(x, None).unwrap().as_slice().iter().map(|v| v.to_bits()).collect();
    (history, weights, predictions)
}

fn history_bits(h: &History) -> Vec<Vec<u64>> {
    h.keys().map(|k| h.get(k).unwrap().iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn mostly_zero_pixels_train_exactly_as_their_csr_rows() {
    let (bytes, y) = pixels(0.15, 1);
    let csr = Features::Sparse(as_csr(&bytes));
    let x = Features::Bytes { values: bytes, divisor: 255.0 };
    for hidden in [64, 96] {
        assert!(built(model(hidden, Parallelism::Sequential, true)).skips_zeros(&x), "{hidden} units");
        let auto = run(model(hidden, Parallelism::Sequential, true), &x, &y);
        let sparse = run(model(hidden, Parallelism::Sequential, true), &csr, &y);
        assert_eq!(history_bits(&auto.0), history_bits(&sparse.0), "{hidden} units: history");
        assert_eq!(auto.1, sparse.1, "{hidden} units: weights");
        assert_eq!(auto.2, sparse.2, "{hidden} units: predictions");

        // The dense products add the same terms, the zeros too, perhaps in another order
        // (faer sums an input wider than 512 in blocks): close, equal at most.
        assert!(!built(model(hidden, Parallelism::Sequential, false)).skips_zeros(&x), "{hidden} units: off");
        let dense = run(model(hidden, Parallelism::Sequential, false), &x, &y);
        for (a, d) in auto.1.iter().zip(&dense.1) {
            for (&a, &d) in a.iter().zip(d) {
                let (a, d) = (f32::from_bits(a), f32::from_bits(d));
                assert!((a - d).abs() <= 1e-5 + 1e-4 * d.abs(), "{hidden} units: {a} vs dense {d}");
            }
        }
    }
}

/// Below 64 units the dense products are faster, even on mostly-zero pixels.
#[test]
fn narrow_first_layers_keep_the_dense_products() {
    let (bytes, y) = pixels(0.15, 1);
    let x = Features::Bytes { values: bytes, divisor: 255.0 };
    assert!(!built(model(NONZERO_INPUT_MIN_UNITS - 1, Parallelism::Sequential, true)).skips_zeros(&x));
    assert!(built(model(NONZERO_INPUT_MIN_UNITS, Parallelism::Sequential, true)).skips_zeros(&x));
    let auto = run(model(NONZERO_INPUT_MIN_UNITS - 1, Parallelism::Sequential, true), &x, &y);
    let dense = run(model(NONZERO_INPUT_MIN_UNITS - 1, Parallelism::Sequential, false), &x, &y);
    assert_eq!(auto.1, dense.1);
}

#[test]
fn denser_pixels_keep_the_dense_products() {
    let (bytes, y) = pixels((NONZERO_INPUT_MAX_DENSITY + 0.2).min(1.0), 2);
    let x = Features::Bytes { values: bytes, divisor: 255.0 };
    assert!(!built(model(96, Parallelism::Sequential, true)).skips_zeros(&x));
    let auto = run(model(96, Parallelism::Sequential, true), &x, &y);
    let dense = run(model(96, Parallelism::Sequential, false), &x, &y);
    assert_eq!(auto.1, dense.1);
    assert_eq!(auto.2, dense.2);
}

/// MNIST's shape (batches of 128 rows of 784), so that every step of the path splits
/// between the two threads: gathering, packing, the forward's rows, the column index and
/// the gradient's columns.
#[test]
fn skipping_zeros_on_two_threads_gives_the_one_thread_bits() {
    let (bytes, y) = pixels_of(640, 784, 0.15, 3);
    let x = Features::Dense(bytes.to_f32(255.0));
    let one = run_in_batches(model(96, Parallelism::Sequential, true), &x, &y, 128);
    let two = run_in_batches(model(96, Parallelism::threads(2), true), &x, &y, 128);
    assert_eq!(history_bits(&one.0), history_bits(&two.0));
    assert_eq!(one.1, two.1);
    assert_eq!(one.2, two.2);
}

/// Two consecutive batches of the same shape and entry count but different entries: the
/// row-wise forward pass does not index its batch, so the gradient must not reuse the
/// index of the batch before (it once did, when the two looked alike).
#[test]
fn a_batch_like_the_last_one_gets_its_own_gradient() {
    // Every row has exactly 10 non-zero pixels, in a different place each row.
    let mut values = vec![0u8; ROWS * WIDTH];
    for i in 0..ROWS {
        for k in 0..10 {
            values[i * WIDTH + (i * 7 + k * 13) % WIDTH] = 1 + (i + k) as u8 % 200;
        }
    }
    let bytes = ByteMatrix::from_vec(ROWS, WIDTH, values).unwrap();
    let y = Matrix::from_vec(ROWS, 1, (0..ROWS).map(|i| (i % 10) as f32).collect()).unwrap();
    let csr = Features::Sparse(as_csr(&bytes));
    let x = Features::Bytes { values: bytes, divisor: 255.0 };
    let auto = run(model(96, Parallelism::Sequential, true), &x, &y);
    let dense = run(model(96, Parallelism::Sequential, false), &x, &y);
    let sparse = run(model(96, Parallelism::Sequential, true), &csr, &y);
    assert_eq!(auto.1, sparse.1);
    for (a, d) in auto.1.iter().zip(&dense.1) {
        for (&a, &d) in a.iter().zip(d) {
            let (a, d) = (f32::from_bits(a), f32::from_bits(d));
            assert!((a - d).abs() <= 1e-5 + 1e-4 * d.abs(), "{a} vs dense {d}");
        }
    }
}
