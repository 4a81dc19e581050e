//! Shared helpers: a small, learnable synthetic classification problem.

#![allow(dead_code)]

use kiln_layers::{Activation, Dense};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{Matrix, Rng};
use kiln_trainer::{Loss, Metric, Sequential};

/// `n` points in 4 dimensions; class = which of 3 fixed directions scores highest.
pub fn blobs(n: usize, seed: u64) -> (Matrix, Matrix) {
    let mut rng = Rng::seed_from_u64(seed);
    let dirs = [[1.0, 0.5, -0.5, 0.0], [-1.0, 0.5, 0.0, 0.5], [0.0, -1.0, 0.5, -0.5]];
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let p: Vec<f32> = (0..4).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let scores: Vec<f32> = dirs.iter().map(|d| d.iter().zip(&p).map(|(a, b)| a * b).sum()).collect();
        y.push(kiln_tensor::kernels::argmax(&scores) as f32);
        x.extend(p);
    }
    (Matrix::from_vec(n, 4, x).unwrap(), Matrix::from_vec(n, 1, y).unwrap())
}

/// A compiled 4-16-3 softmax classifier.
pub fn classifier(seed: u64) -> Sequential {
    let mut m = Sequential::new()
        .seed(seed)
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    m
}
