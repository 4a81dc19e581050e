//! Losses: value and gradient, computed from logits where Keras does.

use kiln_layers::{Activation, GradOf, Layer};
use kiln_tensor::Matrix;

use crate::TrainError;
use crate::loss_kernels::{EPSILON, OneHot, prob_sparse_xent_row, prob_xent_row, sigmoid_xent, sign, softmax_xent_row};
use crate::reduction::{Plan, Reduction, Weighting};

/// A training loss with Keras' options, reduced as its [`Reduction`] says (default
/// `sum_over_batch_size`: the mean over samples).
///
/// When the model's last layer ends in softmax (categorical losses) or sigmoid (binary),
/// the loss is computed from that layer's logits, without clipping — Keras does the same
/// (`_keras_logits`), which is why a diverging run can report losses far above
/// `−ln 1e−7 ≈ 16.1`. Otherwise predictions are clipped to `[1e−7, 1 − 1e−7]`.
/// `from_logits: true` (Keras' `from_logits=True`) reads the last layer's output as
/// logits: use it with a linear last layer.
///
/// Fields are plain values, checked by [`validate`](Loss::validate) (which `compile` and
/// the standalone calls run); the `with_*` builders check as they set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Integer class labels (one column) against class scores.
    SparseCategoricalCrossentropy {
        /// Read the output as logits (default `false`).
        from_logits: bool,
        /// Keras' `ignore_class` (default `None`): rows with this label have loss 0 and
        /// leave the reduction (the mean runs over the other rows).
        ignore_class: Option<i32>,
        /// How per-sample losses are reduced (default `sum_over_batch_size`).
        reduction: Reduction,
    },
    /// One-hot (or soft) labels against class scores.
    CategoricalCrossentropy {
        /// Read the output as logits (default `false`).
        from_logits: bool,
        /// Keras' `label_smoothing` in `[0, 1]` (default 0): labels become
        /// `y·(1 − ls) + ls / num_classes`.
        label_smoothing: f32,
        /// How per-sample losses are reduced (default `sum_over_batch_size`).
        reduction: Reduction,
    },
    /// Labels in `[0, 1]` against one probability per output.
    BinaryCrossentropy {
        /// Read the output as logits (default `false`).
        from_logits: bool,
        /// Keras' `label_smoothing` in `[0, 1]` (default 0): labels become
        /// `y·(1 − ls) + 0.5·ls`.
        label_smoothing: f32,
        /// How per-sample losses are reduced (default `sum_over_batch_size`).
        reduction: Reduction,
    },
    /// Mean squared error over the outputs of each sample: `mean((y − ŷ)²)`.
    MeanSquaredError {
        /// How per-sample losses are reduced (default `sum_over_batch_size`).
        reduction: Reduction,
    },
    /// Mean absolute error over the outputs of each sample: `mean(|y − ŷ|)`.
    MeanAbsoluteError {
        /// How per-sample losses are reduced (default `sum_over_batch_size`).
        reduction: Reduction,
    },
}

/// The loss without its options: what the formulas switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sparse,
    Categorical,
    Binary,
    Mse,
    Mae,
}

impl Loss {
    /// Sparse categorical cross-entropy on probabilities, Keras' defaults
    /// (`from_logits=False`, no `ignore_class`, `sum_over_batch_size`).
    pub const fn sparse_categorical_crossentropy() -> Self {
        Self::SparseCategoricalCrossentropy {
            from_logits: false,
            ignore_class: None,
            reduction: Reduction::SumOverBatchSize,
        }
    }

    /// Categorical cross-entropy on probabilities, Keras' defaults (no smoothing).
    pub const fn categorical_crossentropy() -> Self {
        Self::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
            reduction: Reduction::SumOverBatchSize,
        }
    }

    /// Binary cross-entropy on probabilities, Keras' defaults (no smoothing).
    pub const fn binary_crossentropy() -> Self {
        Self::BinaryCrossentropy { from_logits: false, label_smoothing: 0.0, reduction: Reduction::SumOverBatchSize }
    }

    /// Mean squared error, reduced with `sum_over_batch_size`.
    pub const fn mean_squared_error() -> Self {
        Self::MeanSquaredError { reduction: Reduction::SumOverBatchSize }
    }

    /// Mean absolute error, reduced with `sum_over_batch_size`.
    pub const fn mean_absolute_error() -> Self {
        Self::MeanAbsoluteError { reduction: Reduction::SumOverBatchSize }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Self::SparseCategoricalCrossentropy { .. } => Kind::Sparse,
            Self::CategoricalCrossentropy { .. } => Kind::Categorical,
            Self::BinaryCrossentropy { .. } => Kind::Binary,
            Self::MeanSquaredError { .. } => Kind::Mse,
            Self::MeanAbsoluteError { .. } => Kind::Mae,
        }
    }

    /// Whether the output is read as logits (always `false` for MSE and MAE).
    pub fn from_logits(self) -> bool {
        match self {
            Self::SparseCategoricalCrossentropy { from_logits, .. }
            | Self::CategoricalCrossentropy { from_logits, .. }
            | Self::BinaryCrossentropy { from_logits, .. } => from_logits,
            Self::MeanSquaredError { .. } | Self::MeanAbsoluteError { .. } => false,
        }
    }

    /// The reduction (default `sum_over_batch_size`).
    pub fn reduction(self) -> Reduction {
        match self {
            Self::SparseCategoricalCrossentropy { reduction, .. }
            | Self::CategoricalCrossentropy { reduction, .. }
            | Self::BinaryCrossentropy { reduction, .. }
            | Self::MeanSquaredError { reduction }
            | Self::MeanAbsoluteError { reduction } => reduction,
        }
    }

    /// The label smoothing (0 for losses without it).
    pub fn label_smoothing(self) -> f32 {
        match self {
            Self::CategoricalCrossentropy { label_smoothing, .. }
            | Self::BinaryCrossentropy { label_smoothing, .. } => label_smoothing,
            _ => 0.0,
        }
    }

    /// The ignored class of sparse categorical cross-entropy (`None` otherwise).
    pub fn ignore_class(self) -> Option<i32> {
        match self {
            Self::SparseCategoricalCrossentropy { ignore_class, .. } => ignore_class,
            _ => None,
        }
    }

    /// Whether the loss averages every output value alike (MSE, MAE), so an output of any
    /// shape is the same as its flat row; the crossentropies read one distribution per row.
    pub fn is_elementwise(self) -> bool {
        matches!(self.kind(), Kind::Mse | Kind::Mae)
    }

    /// Keras' identifier (`binary_crossentropy`, …), as saved configs write it.
    pub fn name(self) -> &'static str {
        match self.kind() {
            Kind::Sparse => "sparse_categorical_crossentropy",
            Kind::Categorical => "categorical_crossentropy",
            Kind::Binary => "binary_crossentropy",
            Kind::Mse => "mean_squared_error",
            Kind::Mae => "mean_absolute_error",
        }
    }

    /// Parses a Keras loss identifier (`"binary_crossentropy"`, `"mse"`, `"MAE"`, `"bce"`,
    /// class names…; Keras' `losses.get`, exact case), with Keras' default options.
    pub fn from_keras(name: &str) -> Option<Self> {
        Some(match name {
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Self::sparse_categorical_crossentropy()
            }
            "categorical_crossentropy" | "CategoricalCrossentropy" => Self::categorical_crossentropy(),
            "bce" | "BCE" | "binary_crossentropy" | "BinaryCrossentropy" => Self::binary_crossentropy(),
            "mse" | "MSE" | "mean_squared_error" | "MeanSquaredError" => Self::mean_squared_error(),
            "mae" | "MAE" | "mean_absolute_error" | "MeanAbsoluteError" => Self::mean_absolute_error(),
            _ => return None,
        })
    }

    /// Checks labels against the loss's domain and the model's output width, once, before
    /// training or evaluating: class ids for sparse CE (or its `ignore_class`); finite,
    /// non-negative rows summing to 1 (one-hot or soft) for categorical CE; values in
    /// `[0, 1]` for binary CE; finite values for MSE and MAE. Outside these the loss is
    /// meaningless (binary CE with a label of 2 goes negative), so they are refused rather
    /// than trained on.
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
        let ignored = self.ignore_class().map(|c| c as f32);
        for (row, t) in targets.as_slice().chunks_exact(k.max(1)).enumerate() {
            match self.kind() {
                Kind::Sparse => {
                    let v = t[0];
                    if Some(v) != ignored && !(v.fract() == 0.0 && v >= 0.0 && v < output_width as f32) {
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
                Kind::Mse | Kind::Mae => {
                    if let Some(&v) = t.iter().find(|v| !v.is_finite()) {
                        return bad(row, v, "is not finite".into());
                    }
                }
            }
        }
        Ok(())
    }

    /// The activation whose logits this loss can start from (`Linear` for MSE and MAE).
    pub(crate) fn logits_activation(self) -> Activation {
        match self.kind() {
            Kind::Sparse | Kind::Categorical => Activation::Softmax,
            Kind::Binary => Activation::Sigmoid,
            Kind::Mse | Kind::Mae => Activation::Linear,
        }
    }

    /// The loss of the model's last layer: from its logits where Keras would, or — with
    /// `from_logits` — reading its output as logits. The returned [`GradOf`] tells
    /// `backward` what the gradient is w.r.t.
    ///
    /// Keras' TensorFlow backend attaches a sigmoid's or softmax's input to its output
    /// (`_keras_logits`), and every crossentropy reads those logits instead (`_get_logits`
    /// in backend/tensorflow/nn.py): whichever of the two activations made the output, and
    /// even under `from_logits=True`, which it then warns about. `ignore_class` masks the
    /// output into a new tensor that carries no logits, so there the output is read.
    /// `source` is the layer whose output `last` hands on unchanged (`logits_source`;
    /// `last` itself when it computes); a returned `GradOf::Logits` is w.r.t. its logits.
    pub(crate) fn of_layer(
        self,
        last: &dyn Layer,
        source: &dyn Layer,
        targets: &Matrix,
        weights: Option<&[f32]>,
        grad: &mut Matrix,
    ) -> (f32, GradOf) {
        let weighting = Weighting { rows: weights, scalar: false };
        let z = match self.attached_logits(source) {
            Some(z) => Some((z, GradOf::Logits)),
            None if self.from_logits() => Some((last.output(), GradOf::Output)),
            None => None,
        };
        match z {
            Some((z, of)) => {
                let (loss, _) = self.compute(z, Some(z), self.logits_activation(), targets, weighting, grad, None);
                (loss, of)
            }
            None => self.compute(last.output(), None, last.activation(), targets, weighting, grad, None),
        }
    }

    /// The logits Keras' crossentropy would read from `last` (see [`of_layer`](Self::of_layer)).
    pub(crate) fn attached_logits(self, last: &dyn Layer) -> Option<&Matrix> {
        last.logits().filter(|_| self.attached_logits_of(last.activation()) && self.ignore_class().is_none())
    }

    /// Whether this loss is a crossentropy and `activation` attaches its logits to its
    /// output (sigmoid, softmax), so that Keras' crossentropy reads them.
    pub(crate) fn attached_logits_of(self, activation: Activation) -> bool {
        !matches!(self.kind(), Kind::Mse | Kind::Mae) && activation.attaches_logits()
    }

    /// The reduced loss over the batch, with its gradient written into `grad` — w.r.t. the
    /// logits when the returned [`GradOf`] says so, else w.r.t. the output. `weights`: one
    /// per row; with the default reduction the loss is `Σ wᵢ·lossᵢ / n`. Under
    /// `Reduction::None` the value is `Σ wᵢ·lossᵢ` (the gradient of Keras' unreduced
    /// vector is that of its sum).
    pub fn forward_backward(
        self,
        output: &Matrix,
        logits: Option<&Matrix>,
        activation: Activation,
        targets: &Matrix,
        weights: Option<&[f32]>,
        grad: &mut Matrix,
    ) -> (f32, GradOf) {
        let weighting = Weighting { rows: weights, scalar: false };
        self.compute(output, logits, activation, targets, weighting, grad, None)
    }

    /// [`forward_backward`](Loss::forward_backward) with the full weighting, writing each
    /// row's `wᵢ·lossᵢ` into `per_row` when given (Keras' `reduction=None` output).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compute(
        self,
        output: &Matrix,
        logits: Option<&Matrix>,
        activation: Activation,
        targets: &Matrix,
        weighting: Weighting<'_>,
        grad: &mut Matrix,
        mut per_row: Option<&mut [f32]>,
    ) -> (f32, GradOf) {
        let (n, k) = output.shape();
        grad.resize(n, k);
        if n == 0 {
            return (0.0, GradOf::Output);
        }
        let ignored = self.ignore_class().map(|c| (targets, c as f32));
        let plan = Plan::new(self.reduction(), n, weighting, ignored);
        let u = plan.u;
        let from_logits = match (self.kind(), activation, logits) {
            (Kind::Sparse | Kind::Categorical, Activation::Softmax, Some(z))
            | (Kind::Binary, Activation::Sigmoid, Some(z)) => Some(z),
            _ => None,
        };
        // Label smoothing, only when set (Keras: `if label_smoothing:`), so unsmoothed
        // numbers are unchanged bit for bit.
        let ls = self.label_smoothing();
        let (keep, cat_add) = ((1.0 - f64::from(ls)) as f32, ls / k as f32);
        let smooth_binary = |t: f32| if ls == 0.0 { t } else { t * keep + 0.5 * ls };
        let mut sum = 0.0f32;
        let g = grad.as_mut_slice();
        let mut record = |i: usize, term: f32| {
            if let Some(r) = per_row.as_deref_mut() {
                r[i] += term;
            }
            term
        };
        match (self.kind(), from_logits) {
            (Kind::Sparse, _) => {
                for i in 0..n {
                    let gi = &mut g[i * k..(i + 1) * k];
                    if plan.ignores(i) {
                        // Keras: loss 0 where the label is ignored, so no gradient either.
                        gi.fill(0.0);
                        continue;
                    }
                    let class = targets.get(i, 0) as usize;
                    let wi = plan.weight(i);
                    let l = match from_logits {
                        Some(z) => softmax_xent_row(z.row(i), OneHot::Index(class), gi, u * wi),
                        None => prob_sparse_xent_row(output.row(i), class, gi, u * wi),
                    };
                    sum += record(i, l * wi);
                }
            }
            (Kind::Categorical, _) => {
                let label = |row| if ls == 0.0 { OneHot::Dense(row) } else { OneHot::Smoothed(row, keep, cat_add) };
                for i in 0..n {
                    let wi = plan.weight(i);
                    let gi = &mut g[i * k..(i + 1) * k];
                    let l = match from_logits {
                        Some(z) => softmax_xent_row(z.row(i), label(targets.row(i)), gi, u * wi),
                        None => prob_xent_row(output.row(i), label(targets.row(i)), gi, u * wi),
                    };
                    sum += record(i, l * wi);
                }
            }
            (Kind::Binary, Some(z)) => {
                let uk = u / k as f32;
                for (j, (&x, &t)) in z.as_slice().iter().zip(targets.as_slice()).enumerate() {
                    let wi = plan.weight(j / k);
                    sum += record(j / k, sigmoid_xent(x, smooth_binary(t), &mut g[j], uk * wi) / k as f32 * wi);
                }
            }
            (Kind::Binary, None) => {
                let uk = u / k as f32;
                for (j, (&p, &t)) in output.as_slice().iter().zip(targets.as_slice()).enumerate() {
                    let wi = plan.weight(j / k);
                    let t = smooth_binary(t);
                    let pc = p.clamp(EPSILON, 1.0 - EPSILON);
                    let clipped = p != pc;
                    sum += record(j / k, -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln()) / k as f32 * wi);
                    g[j] = if clipped { 0.0 } else { -(uk * wi) * (t / pc - (1.0 - t) / (1.0 - pc)) };
                }
            }
            (Kind::Mse, _) => {
                let uk = u / k as f32;
                for i in 0..n {
                    let (p, t) = (output.row(i), targets.row(i));
                    let wi = plan.weight(i);
                    let row: f32 = p.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
                    sum += record(i, row / k as f32 * wi);
                    for j in 0..k {
                        g[i * k + j] = (uk * wi) * (2.0 * (p[j] - t[j]));
                    }
                }
            }
            (Kind::Mae, _) => {
                let uk = u / k as f32;
                for i in 0..n {
                    let (p, t) = (output.row(i), targets.row(i));
                    let wi = plan.weight(i);
                    let row: f32 = p.iter().zip(t).map(|(a, b)| (a - b).abs()).sum();
                    sum += record(i, row / k as f32 * wi);
                    for j in 0..k {
                        // TensorFlow's `abs` gradient: sign, 0 at 0.
                        g[i * k + j] = (uk * wi) * sign(p[j] - t[j]);
                    }
                }
            }
        }
        // No subnormal gradient, as under TensorFlow's flush-to-zero (see `subnormal`).
        kiln_tensor::subnormal::flush_subnormals(g);
        let grad_of = if from_logits.is_some() { GradOf::Logits } else { GradOf::Output };
        (plan.value(sum), grad_of)
    }
}

/// How far a categorical label row's sum may stray from 1: float32 rounding of soft
/// labels (a row of ten 0.1s sums to 1.0000001).
const LABEL_SUM_TOLERANCE: f64 = 1e-3;

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::kernels;

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
        assert!(Loss::mean_squared_error().check_targets(&m(&[&[1.0, 2.0]]), 3).is_err());
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
