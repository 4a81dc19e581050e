//! The same seed gives the same numbers, bit for bit, on one thread and on several: every
//! split kiln makes (faer's products by output block, rows, columns, elementwise updates)
//! keeps each output's summation order.

use kiln_layers::{Activation, Dense, Dropout};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{Matrix, Parallelism, Rng};
use kiln_trainer::{Features, FitOptions, History, Loss, Metric, Sequential, Verbosity, Weights};

/// `n` rows of `width` uniform features with random labels of 10 classes.
fn random_data(n: usize, width: usize, seed: u64) -> (Features, Matrix) {
    let mut rng = Rng::seed_from_u64(seed);
    let x = Matrix::from_vec(n, width, (0..n * width).map(|_| rng.uniform()).collect()).unwrap();
    let y = Matrix::from_vec(n, 1, (0..n).map(|_| rng.below(10) as f32).collect()).unwrap();
    (Features::Dense(x), y)
}

/// A `width`-`hidden`-10 classifier with dropout between the layers.
fn model(hidden: usize, par: Parallelism) -> Sequential {
    let mut m = Sequential::new()
        .seed(3)
        .add(Dense::new(hidden).activation(Activation::Relu))
        .add(Dropout::new(0.3))
        .add(Dense::new(10).activation(Activation::Softmax));
    m.set_parallelism(par);
    m.compile(Optimizer::new(RMSprop::default(), 1e-3), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    m
}

fn fit(m: &mut Sequential, x: &Features, y: &Matrix, epochs: usize, batch: usize) -> History {
    let opts = FitOptions::default()
        .epochs(epochs)
        .batch_size(batch)
        .validation_split(0.25)
        .seed(9)
        .verbose(Verbosity::Silent);
    m.fit(x, y, opts).unwrap()
}

fn bits(w: &Weights) -> Vec<Vec<u32>> {
    w.0.iter().map(|t| t.values.iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn the_same_fit_twice_on_one_thread_is_bitwise_identical() {
    let (x, y) = random_data(400, 30, 1);
    let runs: Vec<(History, Weights)> = (0..2)
        .map(|_| {
            let mut m = model(24, Parallelism::Sequential);
            let h = fit(&mut m, &x, &y, 4, 32);
            (h, m.get_weights())
        })
        .collect();
    let key_bits = |h: &History| -> Vec<Vec<u64>> {
        h.keys().map(|k| h.get(k).unwrap().iter().map(|v| v.to_bits()).collect()).collect()
    };
    assert_eq!(key_bits(&runs[0].0), key_bits(&runs[1].0), "histories differ");
    assert_eq!(bits(&runs[0].1), bits(&runs[1].1), "weights differ");
    // And the run actually trained (shuffling, dropout and updates all happened).
    let mut untrained = model(24, Parallelism::Sequential);
    untrained.build(30).unwrap();
    assert_ne!(bits(&runs[0].1), bits(&untrained.get_weights()), "nothing was trained");
}

#[test]
fn training_on_two_threads_is_bitwise_the_one_thread_run() {
    // MNIST-shaped: large enough for faer to split the products, for the RMSprop update
    // to be split (784×512 ≥ 2¹⁶ weights) and for batches to be gathered on two threads.
    let (x, y) = random_data(1024, 784, 2);
    let runs: Vec<(History, Weights)> = [Parallelism::Sequential, Parallelism::threads(2)]
        .into_iter()
        .map(|par| {
            let mut m = model(512, par);
            let h = fit(&mut m, &x, &y, 2, 128);
            (h, m.get_weights())
        })
        .collect();
    assert_eq!(bits(&runs[0].1), bits(&runs[1].1), "weights differ between 1 and 2 threads");
    assert_eq!(runs[0].0, runs[1].0, "histories differ between 1 and 2 threads");
}

#[test]
fn sparse_training_on_two_threads_is_bitwise_the_one_thread_run() {
    // IMDB-shaped: a 2,000×256 kernel (2 MiB) fed CSR rows takes the column-wise path, whose
    // forward splits rows and whose gradient splits touched columns.
    let mut rng = Rng::seed_from_u64(5);
    let mut csr = kiln_tensor::CsrMatrix::with_cols(2_000);
    for _ in 0..600 {
        let mut idx: Vec<u32> = (0..60).map(|_| rng.below(2_000) as u32).collect();
        idx.sort_unstable();
        idx.dedup();
        csr.push_row(&idx, &vec![1.0; idx.len()]).unwrap();
    }
    let y = Matrix::from_vec(600, 1, (0..600).map(|_| rng.below(2) as f32).collect()).unwrap();
    let x = Features::Sparse(csr);
    let runs: Vec<(History, Weights)> = [Parallelism::Sequential, Parallelism::threads(2)]
        .into_iter()
        .map(|par| {
            let mut m = Sequential::new()
                .seed(4)
                .add(Dense::new(256).activation(Activation::Relu))
                .add(Dense::new(1).activation(Activation::Sigmoid));
            m.set_parallelism(par);
            m.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
            let h = fit(&mut m, &x, &y, 3, 128);
            (h, m.get_weights())
        })
        .collect();
    assert_eq!(bits(&runs[0].1), bits(&runs[1].1), "weights differ between 1 and 2 threads");
    assert_eq!(runs[0].0, runs[1].0, "histories differ between 1 and 2 threads");
}

/// A convnet's splits (pooling by images, a convolution's bias and activation by rows, its
/// im2col products) give the same bits on 1 and 3 threads; one activation keeps its input
/// for the gradient (GELU), and one pooling layer averages.
#[test]
fn convnet_training_on_threads_is_bitwise_the_one_thread_run() {
    use kiln_layers::{AveragePooling2D, Conv2D, Flatten, MaxPooling2D};
    let (x, y) = random_data(96, 28 * 28, 21);
    let runs: Vec<(History, Weights)> = [Parallelism::Sequential, Parallelism::threads(3)]
        .into_iter()
        .map(|par| {
            let mut m = Sequential::new()
                .seed(5)
                .input_shape([28, 28, 1])
                .add(Conv2D::new(16, [3, 3]).activation(Activation::Gelu))
                .add(MaxPooling2D::new([2, 2]))
                .add(Conv2D::new(8, [3, 3]).activation(Activation::Relu))
                .add(AveragePooling2D::new([2, 2]))
                .add(Flatten::new())
                .add(Dense::new(10).activation(Activation::Softmax));
            m.set_parallelism(par);
            m.compile(
                Optimizer::new(RMSprop::default(), 1e-3),
                Loss::sparse_categorical_crossentropy(),
                [Metric::Accuracy],
            )
            .unwrap();
            let h = fit(&mut m, &x, &y, 2, 32);
            (h, m.get_weights())
        })
        .collect();
    assert_eq!(bits(&runs[0].1), bits(&runs[1].1), "weights differ between 1 and 3 threads");
    assert_eq!(runs[0].0, runs[1].0, "histories differ between 1 and 3 threads");
}
