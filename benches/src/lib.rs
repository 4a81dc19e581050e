//! Inputs shared by kiln's criterion benchmarks (`cargo bench -p kiln-benches`): random
//! matrices and multi-hot batches of the notebook's shapes.

#![warn(missing_docs)]

use kiln_tensor::{CsrMatrix, Matrix, Rng};

/// A `rows × cols` matrix of uniform values in [-1, 1).
pub fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::seed_from_u64(seed);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).expect("shape matches")
}

/// `rows` multi-hot rows over `vocab` words with `ones` distinct words each.
pub fn multi_hot(rows: usize, vocab: usize, ones: usize, seed: u64) -> CsrMatrix {
    let mut rng = Rng::seed_from_u64(seed);
    let mut m = CsrMatrix::with_cols(vocab);
    let mut pool: Vec<u32> = (0..vocab as u32).collect();
    for _ in 0..rows {
        for k in 0..ones {
            let j = k + rng.below((vocab - k) as u64) as usize;
            pool.swap(k, j);
        }
        let mut idx = pool[..ones].to_vec();
        idx.sort_unstable();
        m.push_row(&idx, &vec![1.0; ones]).expect("valid row");
    }
    m
}
