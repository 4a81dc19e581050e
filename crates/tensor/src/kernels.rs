//! Elementwise and row-wise kernels on contiguous `f32` slices.
//!
//! Plain loops over slices: LLVM vectorises them, and the exact operation order is
//! visible (it matters for bit-level agreement with Keras).

/// `m[i, j] += bias[j]` for every row of a row-major matrix with `bias.len()` columns.
pub fn add_row_vector(m: &mut [f32], bias: &[f32]) {
    for row in m.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(x, &b)| *x += b);
    }
}

/// `out[j] = Σ_i m[i, j]` (overwrites `out`): the bias gradient.
pub fn column_sums(m: &[f32], out: &mut [f32]) {
    let width = out.len();
    column_sums_range(m, width, 0, out);
}

/// [`column_sums`] split by columns over `par`'s threads (each column still sums its
/// rows in order: the same bits).
pub fn column_sums_par(m: &[f32], out: &mut [f32], par: crate::Parallelism) {
    let width = out.len();
    let rows = m.len() / width.max(1);
    if par == crate::Parallelism::Sequential || width < 64 || rows * width < 1 << 15 {
        return column_sums_range(m, width, 0, out);
    }
    let ranges = crate::pool::split_ranges(width, par.thread_count(), 32);
    crate::pool::for_row_blocks(par, out, 1, &ranges, |c0, block| column_sums_range(m, width, c0, block));
}

/// Rows summed sequentially into one leaf of [`column_sums_blocked`]'s pairwise tree.
const SUM_BLOCK_ROWS: usize = 32;
/// Columns handled per pass of [`column_sums_blocked`] (its partial sums live on the stack).
const SUM_LANES: usize = 64;
/// Levels of the pairwise tree: `SUM_BLOCK_ROWS · 2^SUM_LEVELS` rows is beyond any `usize`.
const SUM_LEVELS: usize = 60;

/// `out[j] = Σ_i m[i, j]` (overwrites `out`, width `out.len()`), accurate for long columns:
/// blocks of 32 rows are summed in order, and the block sums combined pairwise (a binary
/// counter of partial sums on the stack, no allocation). Error grows like
/// `(32 + log2(n/32))·ε` instead of the sequential `n·ε` — for conv bias gradients
/// (`images·oh·ow` rows) and normalization moments (architecture-priors §3.9). Deterministic
/// and independent of threads; `column_sums` stays the kernel for batch-length sums.
pub fn column_sums_blocked(m: &[f32], out: &mut [f32]) {
    let width = out.len();
    if width == 0 {
        return;
    }
    assert_eq!(m.len() % width, 0, "column_sums_blocked: {} values are not rows of {width}", m.len());
    for c0 in (0..width).step_by(SUM_LANES) {
        let c1 = (c0 + SUM_LANES).min(width);
        let lanes = c1 - c0;
        let mut levels = [[0.0f32; SUM_LANES]; SUM_LEVELS];
        let mut occupied = 0u64;
        for block in m.chunks(SUM_BLOCK_ROWS * width) {
            let mut acc = [0.0f32; SUM_LANES];
            for row in block.chunks_exact(width) {
                acc[..lanes].iter_mut().zip(&row[c0..c1]).for_each(|(a, &x)| *a += x);
            }
            // Carry like a binary counter: level l holds the sum of 2^l blocks, so every
            // addition joins two partial sums of equal size (pairwise summation).
            let mut level = 0;
            while occupied & (1 << level) != 0 {
                acc[..lanes].iter_mut().zip(&levels[level][..lanes]).for_each(|(a, &p)| *a += p);
                occupied &= !(1 << level);
                level += 1;
            }
            levels[level] = acc;
            occupied |= 1 << level;
        }
        let mut total = [0.0f32; SUM_LANES];
        for (level, partial) in levels.iter().enumerate() {
            if occupied & (1 << level) != 0 {
                total[..lanes].iter_mut().zip(&partial[..lanes]).for_each(|(t, &p)| *t += p);
            }
        }
        out[c0..c1].copy_from_slice(&total[..lanes]);
    }
}

/// Column sums of columns `c0..c0 + out.len()` of the row-major `m` with `width` columns.
fn column_sums_range(m: &[f32], width: usize, c0: usize, out: &mut [f32]) {
    out.fill(0.0);
    let c1 = c0 + out.len();
    for row in m.chunks_exact(width) {
        out.iter_mut().zip(&row[c0..c1]).for_each(|(o, &x)| *o += x);
    }
}

/// `y += alpha · x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
}

/// `max(x, 0)` in place; NaN stays NaN (as in TensorFlow), it does not become 0.
pub fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = relu_scalar(*v));
}

/// `max(x, 0)` of one value, propagating NaN (`f32::max` would return 0 and hide it).
#[inline(always)]
pub fn relu_scalar(x: f32) -> f32 {
    if x.is_nan() { x } else { x.max(0.0) }
}

/// The largest value, or NaN when any value is NaN (`f32::max` skips NaN, which would let
/// a NaN logit vanish into a plausible softmax).
#[inline]
pub fn max_propagating_nan(values: &[f32]) -> f32 {
    values.iter().fold(f32::NEG_INFINITY, |m, &v| if v.is_nan() || m.is_nan() { f32::NAN } else { m.max(v) })
}

/// `grad[i] · [out[i] > 0]`: ReLU's backward pass from its output, as TensorFlow's
/// `ReluGrad` (branch-free, so random sign patterns cost no mispredictions).
pub fn relu_backward(out: &[f32], grad: &mut [f32]) {
    relu_backward_impl(out, grad);
}

/// See [`relu_backward`].
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn relu_backward_impl(out: &[f32], grad: &mut [f32]) {
    // TensorFlow's ReluGrad, `gradients * (features > 0)`: a product, so an infinite or
    // NaN gradient at an inactive unit is NaN there, as in Keras (a diverging run's weights
    // turn NaN, not ±inf).
    grad.iter_mut().zip(out).for_each(|(g, &y)| *g *= f32::from(u8::from(y > 0.0)));
}

/// The logistic function `1 / (1 + e^{-x})` in place.
pub fn sigmoid(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = sigmoid_scalar(*v));
}

/// The logistic function of one value, stable for large `|x|`.
pub fn sigmoid_scalar(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `tanh` in place.
pub fn tanh(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
}

/// Softmax over each row of width `cols`, in place (max-shifted for stability).
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let max = max_propagating_nan(row);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// Index of the largest value, `None` when a value is NaN (a NaN prediction is never right).
pub fn argmax_finite(row: &[f32]) -> Option<usize> {
    if row.iter().any(|v| v.is_nan()) { None } else { Some(argmax(row)) }
}

/// Keras' `ops.argmax` of a row on TensorFlow: −0.0 made `−tiny` (below +0.0), then
/// `tf.argmax`, the first index whose value beats every earlier one and the lowest finite
/// float, so NaNs (and −∞) are skipped and a row of them gives 0, as Keras' accuracies
/// compute it on a diverged model.
pub fn argmax_skipping_nan(row: &[f32]) -> usize {
    let (mut best, mut best_value) = (0, f32::MIN);
    for (i, &v) in row.iter().enumerate() {
        let v = if v == 0.0 && v.is_sign_negative() { -f32::MIN_POSITIVE } else { v };
        if v > best_value {
            (best, best_value) = (i, v);
        }
    }
    best
}

/// Index of the largest value; ties go to the first (Keras' argmax).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let mut x = vec![50.0, 0.0, -50.0, 1.0, 2.0, 3.0];
        softmax_rows(&mut x, 3);
        assert!((x[0] - 1.0).abs() < 1e-6 && x[2] >= 0.0);
        assert!((x[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn nan_propagates_through_relu_softmax_and_argmax() {
        let mut x = vec![f32::NAN, -1.0, 2.0];
        relu(&mut x);
        assert!(x[0].is_nan() && x[1] == 0.0 && x[2] == 2.0);
        let mut row = vec![1.0, f32::NAN, 0.5];
        softmax_rows(&mut row, 3);
        assert!(row.iter().all(|v| v.is_nan()), "{row:?}");
        assert_eq!(argmax_finite(&[0.1, f32::NAN]), None);
        assert_eq!(argmax_finite(&[0.1, 0.9]), Some(1));
        // TensorFlow 2.21's tf.argmax on the same rows.
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        for (row, tf) in [
            (&[nan, 0.5, 0.2][..], 1),
            (&[0.5, nan, 0.2], 0),
            (&[nan, nan, nan], 0),
            (&[-inf, nan, -inf], 0),
            (&[nan, -inf], 0),
            (&[0.2, 0.5, 0.5], 1),
            (&[inf, nan, 1.0], 0),
            (&[-0.0, 0.0], 1),
        ] {
            assert_eq!(argmax_skipping_nan(row), tf, "{row:?}");
        }
        assert!(max_propagating_nan(&[f32::NAN, 1.0]).is_nan() && max_propagating_nan(&[1.0, f32::NAN]).is_nan());
        assert_eq!(max_propagating_nan(&[1.0, 3.0, -2.0]), 3.0);
    }

    #[test]
    fn argmax_ties_go_first_and_row_ops_broadcast() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        let mut m = vec![1.0, 2.0, 3.0, 4.0];
        add_row_vector(&mut m, &[10.0, 20.0]);
        assert_eq!(m, vec![11.0, 22.0, 13.0, 24.0]);
        let mut s = vec![0.0; 2];
        column_sums(&m, &mut s);
        assert_eq!(s, vec![24.0, 46.0]);
        assert_eq!(sigmoid_scalar(0.0), 0.5);
        assert!(sigmoid_scalar(-100.0) >= 0.0 && sigmoid_scalar(100.0) <= 1.0);
    }
}
