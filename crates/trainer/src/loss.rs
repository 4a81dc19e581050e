//! Losses: value and gradient, computed from logits where Keras does.

use kiln_layers::{Activation, GradOf, Layer};
use kiln_tensor::{Matrix, kernels};

use crate::TrainError;

/// Keras' `backend.epsilon()`, the clipping bound of the probability path.
const EPSILON: f32 = 1e-7;

/// A training loss, reduced as Keras' `sum_over_batch_size` (mean over samples).
///
/// When the model's last layer ends in softmax (categorical losses) or sigmoid (binary),
/// the loss is computed from that layer's logits, without clipping — Keras does the same
/// (`_keras_logits`), which is why a diverging run can report losses far above
/// `−ln 1e−7 ≈ 16.1`. Otherwise predictions are clipped to `[1e−7, 1 − 1e−7]`.
/// `from_logits: true` (Keras' `from_logits=True`) reads the last layer's output as
/// logits: use it with a linear last layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Integer class labels (one column) against class scores.
    SparseCategoricalCrossentropy {
        /// Read the output as logits.
        from_logits: bool,
    },
    /// One-hot (or soft) labels against class scores.
    CategoricalCrossentropy {
        /// Read the output as logits.
        from_logits: bool,
    },
    /// Labels in `[0, 1]` against one probability per output.
    BinaryCrossentropy {
        /// Read the output as logits.
        from_logits: bool,
    },
    /// Mean squared error over the outputs of each sample.
    MeanSquaredError,
}

/// The loss without its `from_logits` flag: what the formulas switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sparse,
    Categorical,
    Binary,
    Mse,
}

impl Loss {
    /// Sparse categorical cross-entropy on probabilities (Keras' default `from_logits=False`).
    pub const fn sparse_categorical_crossentropy() -> Self {
        Self::SparseCategoricalCrossentropy { from_logits: false }
    }

    /// Categorical cross-entropy on probabilities.
    pub const fn categorical_crossentropy() -> Self {
        Self::CategoricalCrossentropy { from_logits: false }
    }

    /// Binary cross-entropy on probabilities.
    pub const fn binary_crossentropy() -> Self {
        Self::BinaryCrossentropy { from_logits: false }
    }

    fn kind(self) -> Kind {
        match self {
            Self::SparseCategoricalCrossentropy { .. } => Kind::Sparse,
            Self::CategoricalCrossentropy { .. } => Kind::Categorical,
            Self::BinaryCrossentropy { .. } => Kind::Binary,
            Self::MeanSquaredError => Kind::Mse,
        }
    }

    /// Whether the output is read as logits.
    pub fn from_logits(self) -> bool {
        match self {
            Self::SparseCategoricalCrossentropy { from_logits }
            | Self::CategoricalCrossentropy { from_logits }
            | Self::BinaryCrossentropy { from_logits } => from_logits,
            Self::MeanSquaredError => false,
        }
    }

    /// The same loss with `from_logits` set (MSE has no such switch and is returned as is).
    pub fn with_from_logits(self, from_logits: bool) -> Self {
        match self {
            Self::SparseCategoricalCrossentropy { .. } => Self::SparseCategoricalCrossentropy { from_logits },
            Self::CategoricalCrossentropy { .. } => Self::CategoricalCrossentropy { from_logits },
            Self::BinaryCrossentropy { .. } => Self::BinaryCrossentropy { from_logits },
            Self::MeanSquaredError => Self::MeanSquaredError,
        }
    }

    /// Keras' identifier (`binary_crossentropy`, …), as saved configs write it.
    pub fn name(self) -> &'static str {
        match self.kind() {
            Kind::Sparse => "sparse_categorical_crossentropy",
            Kind::Categorical => "categorical_crossentropy",
            Kind::Binary => "binary_crossentropy",
            Kind::Mse => "mean_squared_error",
        }
    }

    /// Parses a Keras loss identifier (`"binary_crossentropy"`, `"mse"`, class names…),
    /// with `from_logits` off.
    pub fn from_keras(name: &str) -> Option<Self> {
        Some(match name {
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Self::sparse_categorical_crossentropy()
            }
            "categorical_crossentropy" | "CategoricalCrossentropy" => Self::categorical_crossentropy(),
            "binary_crossentropy" | "BinaryCrossentropy" => Self::binary_crossentropy(),
            "mse" | "mean_squared_error" | "MeanSquaredError" => Self::MeanSquaredError,
            _ => return None,
        })
    }

    /// Checks labels against the loss's domain and the model's output width, once, before
    /// training or evaluating: class ids for sparse CE; finite, non-negative rows summing
    /// to 1 (one-hot or soft) for categorical CE; values in `[0, 1]` for binary CE; finite
    /// values for MSE. Outside these the loss is meaningless (binary CE with a label of 2
    /// goes negative), so they are refused rather than trained on.
    pub fn check_targets(self, targets: &Matrix, output_width: usize) -> Result<(), TrainError> {
        let (loss, k) = (self.name(), targets.cols());
        let bad = |row: usize, value: f32, problem: String| Err(TrainError::BadLabel { loss, row, value, problem });
        if self.kind() == Kind::Sparse {
            if k != 1 {
                return Err(TrainError::Input(format!("{loss}: labels must be one column of class ids, got {k}")));
            }
        } else if k != output_width {
            return Err(TrainError::Input(format!(
                "{loss}: labels have {k} columns but the model outputs {output_width}"
            )));
        }
        for (row, t) in targets.as_slice().chunks_exact(k.max(1)).enumerate() {
            match self.kind() {
                Kind::Sparse => {
                    let v = t[0];
                    if !(v.fract() == 0.0 && v >= 0.0 && v < output_width as f32) {
                        return bad(row, v, format!("is not a class id in 0..{output_width}"));
                    }
                }
                Kind::Binary => {
                    if let Some(&v) = t.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                        return bad(row, v, "is outside [0, 1]".into());
                    }
                }
                Kind::Categorical => {
                    if let Some(&v) = t.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                        return bad(row, v, "is not a finite probability ≥ 0".into());
                    }
                    let sum: f64 = t.iter().map(|&v| v as f64).sum();
                    if (sum - 1.0).abs() > LABEL_SUM_TOLERANCE {
                        return bad(
                            row,
                            t[0],
                            format!("starts a row that sums to {sum}, not 1 (one-hot or soft labels)"),
                        );
                    }
                }
                Kind::Mse => {
                    if let Some(&v) = t.iter().find(|v| !v.is_finite()) {
                        return bad(row, v, "is not finite".into());
                    }
                }
            }
        }
        Ok(())
    }

    /// The activation whose logits this loss can start from (`Linear` for MSE).
    pub(crate) fn logits_activation(self) -> Activation {
        match self.kind() {
            Kind::Sparse | Kind::Categorical => Activation::Softmax,
            Kind::Binary => Activation::Sigmoid,
            Kind::Mse => Activation::Linear,
        }
    }

    /// The loss of the model's last layer: from its logits where Keras would, or — with
    /// `from_logits` — reading its output as logits. The returned [`GradOf`] tells
    /// `backward` what the gradient is w.r.t.
    pub(crate) fn of_layer(
        self,
        last: &dyn Layer,
        targets: &Matrix,
        weights: Option<&[f32]>,
        grad: &mut Matrix,
    ) -> (f32, GradOf) {
        if self.from_logits() {
            let z = last.output();
            let (loss, _) = self.forward_backward(z, Some(z), self.logits_activation(), targets, weights, grad);
            (loss, GradOf::Output)
        } else {
            self.forward_backward(last.output(), last.logits(), last.activation(), targets, weights, grad)
        }
    }

    /// The mean loss over the batch, with its gradient written into `grad` — w.r.t. the
    /// logits when the returned [`GradOf`] says so, else w.r.t. the output. With `weights`
    /// (one per row), Keras' `sum_over_batch_size` reduction: `Σ wᵢ·lossᵢ / n`.
    pub fn forward_backward(
        self,
        output: &Matrix,
        logits: Option<&Matrix>,
        activation: Activation,
        targets: &Matrix,
        weights: Option<&[f32]>,
        grad: &mut Matrix,
    ) -> (f32, GradOf) {
        let (n, k) = output.shape();
        grad.resize(n, k);
        if n == 0 {
            return (0.0, GradOf::Output);
        }
        let u = 1.0 / n as f32;
        let from_logits = match (self.kind(), activation, logits) {
            (Kind::Sparse | Kind::Categorical, Activation::Softmax, Some(z))
            | (Kind::Binary, Activation::Sigmoid, Some(z)) => Some(z),
            _ => None,
        };
        let mut sum = 0.0f32;
        let g = grad.as_mut_slice();
        // Row i's weight (1 without weights: `x·1.0` is `x`, so the unweighted numbers
        // are unchanged bit for bit).
        let w = |i: usize| weights.map_or(1.0, |w| w[i]);
        match (self.kind(), from_logits) {
            (Kind::Sparse, Some(z)) => {
                for i in 0..n {
                    let label = targets.get(i, 0) as usize;
                    let wi = w(i);
                    sum += softmax_xent_row(z.row(i), OneHot::Index(label), &mut g[i * k..(i + 1) * k], u * wi) * wi;
                }
            }
            (Kind::Categorical, Some(z)) => {
                for i in 0..n {
                    let wi = w(i);
                    sum +=
                        softmax_xent_row(z.row(i), OneHot::Dense(targets.row(i)), &mut g[i * k..(i + 1) * k], u * wi)
                            * wi;
                }
            }
            (Kind::Binary, Some(z)) => {
                let uk = u / k as f32;
                for (j, (&x, &t)) in z.as_slice().iter().zip(targets.as_slice()).enumerate() {
                    let wi = w(j / k);
                    sum += sigmoid_xent(x, t, &mut g[j], uk * wi) / k as f32 * wi;
                }
            }
            (Kind::Sparse, None) => {
                for i in 0..n {
                    let label = targets.get(i, 0) as usize;
                    let wi = w(i);
                    sum += prob_sparse_xent_row(output.row(i), label, &mut g[i * k..(i + 1) * k], u * wi) * wi;
                }
            }
            (Kind::Categorical, None) => {
                for i in 0..n {
                    let wi = w(i);
                    sum += prob_xent_row(output.row(i), targets.row(i), &mut g[i * k..(i + 1) * k], u * wi) * wi;
                }
            }
            (Kind::Binary, None) => {
                let uk = u / k as f32;
                for (j, (&p, &t)) in output.as_slice().iter().zip(targets.as_slice()).enumerate() {
                    let wi = w(j / k);
                    let pc = p.clamp(EPSILON, 1.0 - EPSILON);
                    let clipped = p != pc;
                    sum += -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln()) / k as f32 * wi;
                    g[j] = if clipped { 0.0 } else { -(uk * wi) * (t / pc - (1.0 - t) / (1.0 - pc)) };
                }
            }
            (Kind::Mse, _) => {
                let uk = u / k as f32;
                for i in 0..n {
                    let (p, t) = (output.row(i), targets.row(i));
                    let wi = w(i);
                    let row: f32 = p.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
                    sum += row / k as f32 * wi;
                    for j in 0..k {
                        g[i * k + j] = (uk * wi) * (2.0 * (p[j] - t[j]));
                    }
                }
            }
        }
        let grad_of = if from_logits.is_some() { GradOf::Logits } else { GradOf::Output };
        (sum * u, grad_of)
    }
}

/// How far a categorical label row's sum may stray from 1: float32 rounding of soft
/// labels (a row of ten 0.1s sums to 1.0000001).
const LABEL_SUM_TOLERANCE: f64 = 1e-3;

/// The label of one row: a class id or a (one-hot) distribution.
pub(crate) enum OneHot<'a> {
    Index(usize),
    Dense(&'a [f32]),
}

impl OneHot<'_> {
    fn at(&self, j: usize) -> f32 {
        match self {
            OneHot::Index(i) => (*i == j) as u8 as f32,
            OneHot::Dense(row) => row[j],
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
pub(crate) fn prob_xent_row(p: &[f32], y: &[f32], g: &mut [f32], u: f32) -> f32 {
    let s: f32 = p.iter().sum();
    let mut loss = 0.0f32;
    let mut dot = 0.0f32;
    for j in 0..p.len() {
        let q = p[j] / s;
        let qc = q.clamp(EPSILON, 1.0 - EPSILON);
        loss -= y[j] * qc.ln();
        g[j] = if qc != q { 0.0 } else { -u * y[j] / qc };
        dot += g[j] * q;
    }
    for gj in g.iter_mut() {
        *gj = (*gj - dot) / s;
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: &[&[f32]]) -> Matrix {
        Matrix::from_rows(rows).unwrap()
    }

    #[test]
    fn logits_path_is_not_clipped() {
        // Keras' probe: logits [50, 0, -50], label 2 -> 100; sigmoid logit -50, label 1 -> 50.
        let z = m(&[&[50.0, 0.0, -50.0]]);
        let mut p = z.clone();
        kernels::softmax_rows(p.as_mut_slice(), 3);
        let mut g = Matrix::default();
        let (loss, of) = Loss::sparse_categorical_crossentropy().forward_backward(
            &p,
            Some(&z),
            Activation::Softmax,
            &m(&[&[2.0]]),
            None,
            &mut g,
        );
        assert_eq!((loss, of), (100.0, GradOf::Logits));
        let z = m(&[&[-50.0]]);
        let (loss, _) = Loss::binary_crossentropy().forward_backward(
            &m(&[&[0.0]]),
            Some(&z),
            Activation::Sigmoid,
            &m(&[&[1.0]]),
            None,
            &mut g,
        );
        assert_eq!(loss, 50.0);
    }

    #[test]
    fn probability_path_is_clipped() {
        let p = m(&[&[1.0, 0.0, 0.0]]);
        let mut g = Matrix::default();
        let (loss, of) = Loss::sparse_categorical_crossentropy().forward_backward(
            &p,
            None,
            Activation::Linear,
            &m(&[&[2.0]]),
            None,
            &mut g,
        );
        assert_eq!(of, GradOf::Output);
        assert!((loss - 16.118095).abs() < 1e-3, "{loss}");
    }

    #[test]
    fn targets_are_checked() {
        let l = Loss::sparse_categorical_crossentropy();
        assert!(l.check_targets(&m(&[&[1.0], &[3.0]]), 3).unwrap_err().to_string().contains("row 1"));
        assert!(l.check_targets(&m(&[&[0.5]]), 3).is_err());
        assert!(Loss::MeanSquaredError.check_targets(&m(&[&[1.0, 2.0]]), 3).is_err());
        let bce = Loss::binary_crossentropy();
        for bad in [2.0, -1.0, f32::NAN] {
            let err = bce.check_targets(&m(&[&[0.0], &[bad]]), 1).unwrap_err().to_string();
            assert!(err.contains("row 1") && err.contains("outside [0, 1]"), "{err}");
        }
        bce.check_targets(&m(&[&[0.25], &[1.0]]), 1).unwrap();
        let cce = Loss::categorical_crossentropy();
        assert!(cce.check_targets(&m(&[&[5.0, 0.0]]), 2).unwrap_err().to_string().contains("sums to 5"));
        assert!(cce.check_targets(&m(&[&[-0.5, 1.5]]), 2).is_err());
        cce.check_targets(&m(&[&[0.0, 1.0], &[0.3, 0.7]]), 2).unwrap();
    }
}
