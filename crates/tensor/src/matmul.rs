//! Dense matrix products through faer, written into preallocated outputs.
//!
//! `dst = a·b`, `dst = aᵀ·b` and `dst = a·bᵀ`, each either overwriting
//! (`Accumulate::Replace`) or adding to (`Accumulate::Add`) `dst`. Transposes are free
//! stride swaps, never copies. Panics when shapes disagree: these are internal building
//! blocks whose callers size their buffers at build time.
//!
//! Every product ends with [`clear_upper_state`]: faer's assembly microkernels leave the
//! upper vector registers dirty, which slows every later SSE instruction on Intel CPUs.

use crate::upper_state::clear_upper_state;
use crate::{Accumulate, Parallelism, View, ViewMut};

/// The least work a thread takes from a split product, in multiply-adds: below it,
/// handing the work over costs more than it saves. Measured on an AMD EPYC Zen 4 (2
/// cores, `docs/performance.md`): 128×64·64×64 (524,288) ties on 2 threads, 128×96·96×10
/// and 32×120·120×128 (an LSTM step) run 0.73× and 0.82× as fast on 2 threads as on 1.
pub const MIN_SHARED_MACS: usize = 1 << 19;

/// faer shares a product between threads only from this many multiply-adds …
pub const FAER_MIN_SHARED_MACS: usize = 1 << 23;

/// … and this many output values. faer splits a product by blocks of its output, and
/// below these its split does not pay, even with the team warm (`cargo xtask bench
/// --share`; measured on an Intel Xeon under KVM, 2 cores, `docs/performance.md`):
/// 128×784·784×96 (9.6 M multiply-adds but a 12,288-value output) runs 0.98× as fast on 2
/// threads as on 1, 3840×10·10×128 (4.9 M) 0.93×, 128×512·512×10 and 96×128·128×96
/// 0.78–0.96×, while 784×128·128×96 (75,264 outputs) and 128×784·784×512 run 1.5× faster.
pub const FAER_MIN_SHARED_OUTPUTS: usize = 1 << 15;

/// faer's product (on one thread when it is too small to share: fewer than
/// [`FAER_MIN_SHARED_MACS`] multiply-adds or [`FAER_MIN_SHARED_OUTPUTS`] outputs), then a
/// clean vector state. faer splits a product by blocks of the output, so the bits do not
/// depend on the threads.
fn product(
    dst: faer::MatMut<'_, f32>,
    accum: Accumulate,
    a: faer::MatRef<'_, f32>,
    b: faer::MatRef<'_, f32>,
    par: Parallelism,
) {
    let par = if shares(dst.nrows(), a.ncols(), dst.ncols()) { par } else { Parallelism::Sequential };
    product_on(dst, accum, a, b, par);
}

/// faer's product on exactly `par`'s threads, then a clean vector state.
fn product_on(
    dst: faer::MatMut<'_, f32>,
    accum: Accumulate,
    a: faer::MatRef<'_, f32>,
    b: faer::MatRef<'_, f32>,
    par: Parallelism,
) {
    faer::linalg::matmul::matmul(dst, accum.to_faer(), a, b, 1.0f32, par.to_faer());
    clear_upper_state();
}

/// Whether an `m×k · k×n` product is shared between threads: from
/// [`FAER_MIN_SHARED_MACS`] multiply-adds and [`FAER_MIN_SHARED_OUTPUTS`] outputs.
pub fn shares(m: usize, k: usize, n: usize) -> bool {
    m * n * k >= FAER_MIN_SHARED_MACS && m * n >= FAER_MIN_SHARED_OUTPUTS
}

/// [`ab`] on exactly `par`'s threads, whether or not [`shares`] would share it: for
/// measuring the rule (`cargo xtask bench --share`).
pub fn ab_on(dst: ViewMut<'_>, a: View<'_>, b: View<'_>, par: Parallelism) {
    assert_eq!((a.cols, dst.rows, dst.cols), (b.rows, a.rows, b.cols), "matmul ab_on shapes");
    product_on(dst.into_faer(), Accumulate::Replace, a.as_faer(), b.as_faer(), par);
}

/// `dst (m×n) ⟵ a (m×k) · b (k×n)`.
pub fn ab(dst: ViewMut<'_>, a: View<'_>, b: View<'_>, accum: Accumulate, par: Parallelism) {
    assert_eq!((a.cols, dst.rows, dst.cols), (b.rows, a.rows, b.cols), "matmul ab shapes");
    product(dst.into_faer(), accum, a.as_faer(), b.as_faer(), par);
}

/// `dst (k×n) ⟵ aᵀ · b` with `a (m×k)`, `b (m×n)`: the weight gradient `xᵀ·dy`.
pub fn atb(dst: ViewMut<'_>, a: View<'_>, b: View<'_>, accum: Accumulate, par: Parallelism) {
    assert_eq!((a.rows, dst.rows, dst.cols), (b.rows, a.cols, b.cols), "matmul atb shapes");
    product(dst.into_faer(), accum, a.as_faer().transpose(), b.as_faer(), par);
}

/// Rows in each part of [`atb_parts`]. Fixed, so the bits do not depend on the threads.
pub const PART_ROWS: usize = 1024;

/// `dst (k×n) ⟵ aᵀ · b` with `a (m×k)`, `b (m×n)`, as the sum, in order, of the products
/// of consecutive parts of [`PART_ROWS`] rows, each part's product on one thread, several
/// at once with `par`; `scratch` holds the parts' sums. Exactly [`atb`] when `m ≤
/// PART_ROWS`. For a recurrent layer's weight gradients: their output (32×128 for an
/// LSTM(32)) is too small for faer to split between threads, while their `m` (steps ×
/// batch) is long; an LSTM's 32×25,600 · 25,600×128 ran no faster on 2 threads than on 1.
pub fn atb_parts(dst: ViewMut<'_>, a: View<'_>, b: View<'_>, scratch: &mut crate::Matrix, par: Parallelism) {
    assert_eq!((a.rows, dst.rows, dst.cols), (b.rows, a.cols, b.cols), "matmul atb_parts shapes");
    let parts = a.rows.div_ceil(PART_ROWS);
    if parts <= 1 || a.cols * b.cols == 0 {
        return atb(dst, a, b, Accumulate::Replace, par);
    }
    let (k, n) = (a.cols, b.cols);
    scratch.resize(parts, k * n);
    // A thread takes at least MIN_SHARED_MACS of work, as every product here (a small
    // layer's parts stay on one thread; the parts, and so the bits, do not change).
    let min_parts = MIN_SHARED_MACS.div_ceil(PART_ROWS * k * n).max(1);
    let blocks = crate::pool::row_blocks(par, parts, min_parts);
    crate::pool::for_sample_blocks(par, parts, &blocks, [(scratch.as_mut_slice(), k * n)], |range, [mut sums]| {
        for (p, sum) in range.zip(sums.step(0).chunks_exact_mut(k * n)) {
            let rows = p * PART_ROWS..((p + 1) * PART_ROWS).min(a.rows);
            let a = View { rows: rows.len(), cols: k, data: &a.data[rows.start * k..rows.end * k] };
            let b = View { rows: rows.len(), cols: n, data: &b.data[rows.start * n..rows.end * n] };
            atb(ViewMut { rows: k, cols: n, data: sum }, a, b, Accumulate::Replace, Parallelism::Sequential);
        }
    });
    let (first, rest) = scratch.as_slice().split_at(k * n);
    dst.data.copy_from_slice(first);
    for part in rest.chunks_exact(k * n) {
        dst.data.iter_mut().zip(part).for_each(|(d, &p)| *d += p);
    }
}

/// `dst (m×k) ⟵ a · bᵀ` with `a (m×n)`, `b (k×n)`: the input gradient `dy·wᵀ`.
pub fn abt(dst: ViewMut<'_>, a: View<'_>, b: View<'_>, accum: Accumulate, par: Parallelism) {
    assert_eq!((a.cols, dst.rows, dst.cols), (b.cols, a.rows, b.rows), "matmul abt shapes");
    product(dst.into_faer(), accum, a.as_faer(), b.as_faer().transpose(), par);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Matrix;

    fn naive(a: &Matrix, b: &Matrix) -> Vec<f32> {
        let mut out = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                out[i * b.cols() + j] = (0..a.cols()).map(|k| a.get(i, k) * b.get(k, j)).sum();
            }
        }
        out
    }

    fn transpose(m: &Matrix) -> Matrix {
        let mut t = Matrix::zeros(m.cols(), m.rows());
        for i in 0..m.rows() {
            for j in 0..m.cols() {
                t.as_mut_slice()[j * m.rows() + i] = m.get(i, j);
            }
        }
        t
    }

    fn counting(rows: usize, cols: usize, k: f32) -> Matrix {
        Matrix::from_vec(rows, cols, (0..rows * cols).map(|i| (i as f32 * k).sin()).collect()).unwrap()
    }

    #[test]
    fn all_three_products_match_naive() {
        let a = counting(5, 7, 0.3);
        let b = counting(7, 4, 0.7);
        let want = naive(&a, &b);
        let mut c = Matrix::zeros(5, 4);
        ab(c.view_mut(), a.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        assert!(c.as_slice().iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5));
        let at = transpose(&a);
        atb(c.view_mut(), at.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        assert!(c.as_slice().iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5));
        let bt = transpose(&b);
        abt(c.view_mut(), a.view(), bt.view(), Accumulate::Replace, Parallelism::Sequential);
        assert!(c.as_slice().iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-5));
    }

    #[test]
    fn gradient_in_parts_is_the_product_and_the_same_bits_on_any_threads() {
        // 32×16 outputs: a part is 2^19 multiply-adds, so the parts do go to threads.
        let m = 2 * PART_ROWS + 37;
        let (a, b) = (counting(m, 32, 0.37), counting(m, 16, 0.61));
        let at = transpose(&a);
        let want = naive(&at, &b);
        let mut scratch = Matrix::zeros(0, 0);
        let mut one = Matrix::zeros(32, 16);
        atb_parts(one.view_mut(), a.view(), b.view(), &mut scratch, Parallelism::Sequential);
        assert!(one.as_slice().iter().zip(&want).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs())));
        for threads in [2, 3] {
            let par = Parallelism::threads(threads);
            let mut many = Matrix::zeros(32, 16);
            par.install(|| atb_parts(many.view_mut(), a.view(), b.view(), &mut scratch, par));
            let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&many), bits(&one), "{threads} threads");
        }
        // One part: exactly the plain product.
        let (a, b) = (counting(PART_ROWS, 5, 0.37), counting(PART_ROWS, 3, 0.61));
        let (mut parts, mut plain) = (Matrix::zeros(5, 3), Matrix::zeros(5, 3));
        atb_parts(parts.view_mut(), a.view(), b.view(), &mut scratch, Parallelism::Sequential);
        atb(plain.view_mut(), a.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        assert_eq!(parts.as_slice(), plain.as_slice());
    }

    #[test]
    fn accumulate_adds_to_destination() {
        let a = counting(3, 3, 0.5);
        let b = counting(3, 3, 0.9);
        let want = naive(&a, &b);
        let mut c = Matrix::from_vec(3, 3, vec![1.0; 9]).unwrap();
        ab(c.view_mut(), a.view(), b.view(), Accumulate::Add, Parallelism::threads(2));
        assert!(c.as_slice().iter().zip(&want).all(|(x, y)| (x - (y + 1.0)).abs() < 1e-5));
    }
}
