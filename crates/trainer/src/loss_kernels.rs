//! The per-row formulas of the crossentropies, each with its gradient, as TensorFlow
//! computes them (Keras' TF backend, `keras/src/backend/tensorflow/nn.py`).

use kiln_tensor::kernels;

/// Keras' `backend.epsilon()`, the clipping bound of the probability path.
pub(crate) const EPSILON: f32 = 1e-7;

/// The label of one row: a class id or a (one-hot) distribution.
pub(crate) enum OneHot<'a> {
    Index(usize),
    Dense(&'a [f32]),
    /// A distribution with Keras' label smoothing, `y·keep + add` (`keep = 1 − ls`,
    /// `add = ls / num_classes`); built only when `ls ≠ 0`, as Keras smooths only then.
    Smoothed(&'a [f32], f32, f32),
}

impl OneHot<'_> {
    pub(crate) fn at(&self, j: usize) -> f32 {
        match self {
            OneHot::Index(i) => (*i == j) as u8 as f32,
            OneHot::Dense(row) => row[j],
            OneHot::Smoothed(row, keep, add) => row[j] * keep + add,
        }
    }
}

/// TensorFlow's `softmax_cross_entropy_with_logits` for one row: loss
/// `Σ_j y_j (ln Σ e^{z−max} − (z_j − max))`, gradient `u·(softmax(z) − y)`.
pub(crate) fn softmax_xent_row(z: &[f32], y: OneHot<'_>, g: &mut [f32], u: f32) -> f32 {
    let max = kernels::max_propagating_nan(z);
    let mut sum_exp = 0.0f32;
    for (gj, &zj) in g.iter_mut().zip(z) {
        *gj = (zj - max).exp();
        sum_exp += *gj;
    }
    let log_sum = sum_exp.ln();
    let mut loss = 0.0f32;
    for (j, gj) in g.iter_mut().enumerate() {
        let t = y.at(j);
        if t != 0.0 {
            loss += t * (log_sum - (z[j] - max));
        }
        *gj = u * (*gj / sum_exp - t);
    }
    loss
}

/// TensorFlow's `sigmoid_cross_entropy_with_logits` for one value, with the gradient of
/// that exact expression (`u` is the upstream factor).
pub(crate) fn sigmoid_xent(x: f32, t: f32, g: &mut f32, u: f32) -> f32 {
    let nonneg = x >= 0.0;
    let relu = if nonneg { x } else { 0.0 };
    let neg_abs = if nonneg { -x } else { x };
    let e = neg_abs.exp();
    let sign = if nonneg { -1.0 } else { 1.0 };
    *g = u * (nonneg as u8 as f32) - u * t + sign * ((u / (1.0 + e)) * e);
    (relu - x * t) + e.ln_1p()
}

/// Sparse cross-entropy on probabilities, as Keras' TF backend: clip, take the log, then
/// softmax cross-entropy on those log-probabilities (which renormalizes them).
pub(crate) fn prob_sparse_xent_row(p: &[f32], label: usize, g: &mut [f32], u: f32) -> f32 {
    // `g` first holds the log-probabilities, then the gradient: no scratch allocation.
    for (gj, &pj) in g.iter_mut().zip(p) {
        *gj = pj.clamp(EPSILON, 1.0 - EPSILON).ln();
    }
    let max = kernels::max_propagating_nan(g);
    let sum_exp: f32 = g.iter().map(|&l| (l - max).exp()).sum();
    let loss = sum_exp.ln() - (g[label] - max);
    for (j, gj) in g.iter_mut().enumerate() {
        let d_log = u * ((*gj - max).exp() / sum_exp - (j == label) as u8 as f32);
        let pc = p[j].clamp(EPSILON, 1.0 - EPSILON);
        *gj = if pc != p[j] { 0.0 } else { d_log / pc };
    }
    loss
}

/// Categorical cross-entropy on probabilities, as Keras' TF backend: renormalize each row,
/// clip, `−Σ y ln p`.
pub(crate) fn prob_xent_row(p: &[f32], y: OneHot<'_>, g: &mut [f32], u: f32) -> f32 {
    let s: f32 = p.iter().sum();
    let mut loss = 0.0f32;
    let mut dot = 0.0f32;
    for j in 0..p.len() {
        let q = p[j] / s;
        let qc = q.clamp(EPSILON, 1.0 - EPSILON);
        let t = y.at(j);
        loss -= t * qc.ln();
        g[j] = if qc != q { 0.0 } else { -u * t / qc };
        dot += g[j] * q;
    }
    for gj in g.iter_mut() {
        *gj = (*gj - dot) / s;
    }
    loss
}

/// TensorFlow's gradient of `abs` at `d`: `sign(d)`, 0 at 0 (and NaN for NaN).
pub(crate) fn sign(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { d.signum() }
}
