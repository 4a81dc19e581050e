//! Metrics and losses used on their own, outside `fit`: Keras' `metric.update_state(y_true,
//! y_pred, sample_weight)`, `result()`, `reset_state()` and `loss(y_true, y_pred,
//! sample_weight)`. They run the very code `fit` and `evaluate` run (one implementation),
//! so predictions from anywhere — a saved model, another library — are scored exactly as
//! `evaluate` scores them.

use kiln_layers::{Activation, GradOf};
use kiln_tensor::Matrix;

use crate::metric_state::{MetricState, MetricWeight};
use crate::reduction::{Reduction, Weighting};
use crate::validation::check_weights;
use crate::{Loss, Metric, TrainError};

/// A [`Metric`] accumulating over calls to [`update_state`](StandaloneMetric::update_state),
/// as a Keras metric object does; sample weights always count (Keras' standalone metrics
/// take them whenever they are given).
///
/// ```
/// use kiln_tensor::Matrix;
/// use kiln_trainer::Metric;
///
/// // keras.metrics.Precision(): update_state([0, 1, 1, 1], [1, 0, 1, 1]) → 2/3.
/// let mut precision = Metric::precision().standalone();
/// let y_true = Matrix::from_vec(4, 1, vec![0.0, 1.0, 1.0, 1.0])?;
/// let y_pred = Matrix::from_vec(4, 1, vec![1.0, 0.0, 1.0, 1.0])?;
/// precision.update_state(&y_true, &y_pred, None)?;
/// assert!((precision.result() - 2.0 / 3.0).abs() < 1e-6);
/// precision.reset_state();
/// assert_eq!(precision.result(), 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StandaloneMetric {
    metric: Metric,
    /// The running state and the `(label, prediction)` widths it was made for, once the
    /// first batch has come.
    state: Option<(MetricState, usize, usize)>,
}

impl Metric {
    /// This metric as a standalone object with Keras' `update_state` / `result` /
    /// `reset_state`. `Metric::Accuracy` resolves as in `compile` (binary, sparse or
    /// categorical, from the widths of the first batch).
    pub fn standalone(self) -> StandaloneMetric {
        StandaloneMetric { metric: self, state: None }
    }
}

impl StandaloneMetric {
    /// The metric computed.
    pub fn metric(&self) -> &Metric {
        &self.metric
    }

    /// Adds a batch: `y_true` and `y_pred` with one row per sample; `sample_weight` (finite,
    /// ≥ 0; `None`: all 1) holds one weight per row, or one per value of `y_true` (row-major,
    /// `y_true`'s shape) for the metrics Keras weighs value by value (`ExactAccuracy`, the
    /// binary accuracies, Precision, Recall, AUC and the F-scores; the row-reducing ones
    /// refuse it unless rows have one value). Widths must suit the metric (as in `fit`) and
    /// stay those of the first batch until [`reset_state`](Self::reset_state); the
    /// crossentropies' labels are checked as their loss checks them.
    pub fn update_state(
        &mut self,
        y_true: &Matrix,
        y_pred: &Matrix,
        sample_weight: Option<&[f32]>,
    ) -> Result<(), TrainError> {
        let name = self.metric.keras_name();
        let (rows, label_w, out_w) = (y_pred.rows(), y_true.cols(), y_pred.cols());
        if y_true.rows() != rows {
            return Err(TrainError::Input(format!(
                "metric `{name}`: y_true has {} rows but y_pred has {rows}",
                y_true.rows()
            )));
        }
        let resolved = self.metric.resolve(out_w, label_w);
        let weights = match sample_weight {
            None => None,
            // One value per row: per-row and per-value weights are the same thing.
            Some(w) if w.len() == rows || label_w == 1 => {
                check_weights(w, rows, "the metric's")
                    .map_err(|e| TrainError::Input(format!("metric `{name}`: {e}")))?;
                Some(MetricWeight::Rows(w))
            }
            Some(w) if w.len() == rows * label_w => {
                if !resolved.takes_value_weights() {
                    return Err(TrainError::Input(format!(
                        "metric `{name}`: sample_weight has one value per label value ({rows}x{label_w}), but \
                         {} averages each row first, so Keras can only weigh whole rows: give one weight per row",
                        resolved.keras_name()
                    )));
                }
                check_weights(w, rows * label_w, "the metric's element-wise")
                    .map_err(|e| TrainError::Input(format!("metric `{name}`: {e}")))?;
                Some(MetricWeight::Values(w))
            }
            Some(w) => {
                return Err(TrainError::Input(format!(
                    "metric `{name}`: sample_weight has {} values; give one per row ({rows}) or one per value of \
                     y_true ({rows}x{label_w} = {})",
                    w.len(),
                    rows * label_w
                )));
            }
        };
        resolved.check_widths(out_w, label_w).map_err(|e| TrainError::Input(format!("metric `{name}`: {e}")))?;
        self.metric.validate().map_err(|e| TrainError::Config(format!("metric `{name}`: {e}")))?;
        if let Some(loss) = resolved.label_loss() {
            loss.check_targets(y_true, out_w).map_err(|e| TrainError::Input(format!("metric `{name}`: {e}")))?;
        }
        let (state, first_label_w, first_out_w) = self
            .state
            .get_or_insert_with(|| (MetricState::new(name.to_string(), resolved, true, out_w), label_w, out_w));
        if (*first_label_w, *first_out_w) != (label_w, out_w) {
            return Err(TrainError::Input(format!(
                "metric `{name}`: this batch has {label_w} label and {out_w} prediction column(s), the first had \
                 {first_label_w} and {first_out_w} (reset_state() first to score other shapes)"
            )));
        }
        state.update_weighted(y_pred, y_true, weights);
        Ok(())
    }

    /// The metric over every batch added since the last reset (0 before any, as Keras'
    /// `divide_no_nan` gives). A metric with one value per class
    /// ([`F1Average::PerClass`](crate::F1Average::PerClass)) or per threshold
    /// ([`Metric::is_per_threshold`]) has no single number: NaN here, its values in
    /// [`result_per_class`](Self::result_per_class) or
    /// [`result_per_threshold`](Self::result_per_threshold).
    pub fn result(&self) -> f32 {
        match &self.state {
            Some((s, _, _)) => s.result(),
            None if self.metric.is_per_class() || self.metric.is_per_threshold() => f32::NAN,
            None => 0.0,
        }
    }

    /// One value per threshold, in the order given, for `Precision` or `Recall` with two or
    /// more thresholds (Keras' `result()` vector, e.g. `Precision(thresholds=[0.5, 0.7])`);
    /// zeros before the first batch (Keras' `divide_no_nan` of zero counts); `None` for
    /// every other metric (read [`result`](Self::result)).
    ///
    /// ```
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::Metric;
    ///
    /// // keras.metrics.Precision(thresholds=[0.5, 0.8])
    /// let mut p = Metric::Precision { thresholds: Some(vec![0.5, 0.8].into()), top_k: None, class_id: None }
    ///     .standalone();
    /// let y_true = Matrix::from_vec(1, 4, vec![0.0, 1.0, 1.0, 0.0])?;
    /// let y_pred = Matrix::from_vec(1, 4, vec![1.0, 0.0, 1.0, 0.0])?;
    /// p.update_state(&y_true, &y_pred, None)?;
    /// assert_eq!(p.result_per_threshold(), Some(vec![0.5, 0.5]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn result_per_threshold(&self) -> Option<Vec<f32>> {
        if !self.metric.is_per_threshold() {
            return None;
        }
        Some(match &self.state {
            Some((s, _, _)) => s.per_threshold(),
            None => match &self.metric {
                Metric::Precision { thresholds: Some(ts), .. } | Metric::Recall { thresholds: Some(ts), .. } => {
                    vec![0.0; ts.len()]
                }
                _ => Vec::new(),
            },
        })
    }

    /// One score per class for an F-score with
    /// [`F1Average::PerClass`](crate::F1Average::PerClass) (Keras' `average=None`, whose
    /// `result()` is that vector); empty before the first batch; `None` for every other
    /// metric (read [`result`](Self::result)).
    pub fn result_per_class(&self) -> Option<Vec<f32>> {
        if !self.metric.is_per_class() {
            return None;
        }
        Some(self.state.as_ref().map_or_else(Vec::new, |(s, _, _)| s.fbeta_per_class()))
    }

    /// Forgets every batch added.
    pub fn reset_state(&mut self) {
        self.state = None;
    }
}

/// A loss's `sample_weight` in the forms Keras broadcasts onto one loss per sample.
#[derive(Debug, Clone, Copy)]
pub enum SampleWeight<'a> {
    /// One weight for every sample (Keras' scalar `sample_weight`); under
    /// `mean_with_sample_weight` Keras divides by this scalar, not by `n` times it.
    Scalar(f32),
    /// One weight per sample (Keras' `(n,)` or `(n, 1)` weights).
    PerSample(&'a [f32]),
    /// A weight per value, shaped as `y_true`. Keras first reduces each sample's values to
    /// one loss, then multiplies by the weights: a `(n, 1)` matrix is one weight per
    /// sample; wider ones are refused (Keras' broadcast of `(n,)` losses by `(n, k)`
    /// weights fails, or, when `n = k`, pairs weight `[i][j]` with sample `j`).
    Values(&'a Matrix),
}

impl Loss {
    /// Keras' `loss(y_true, y_pred, sample_weight)`: the loss of predictions `y_pred`
    /// (probabilities, or logits with `from_logits`) against `y_true`, reduced as the
    /// loss's [`Reduction`](crate::Reduction) says (default `sum_over_batch_size`:
    /// `Σᵢ wᵢ·lossᵢ / n`, `wᵢ` = 1 without weights). Labels are checked as `fit` checks
    /// them. With `Reduction::None`, use [`call_per_sample`](Loss::call_per_sample).
    ///
    /// ```
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::Loss;
    ///
    /// let y_true = Matrix::from_vec(2, 2, vec![0.0, 1.0, 0.0, 0.0])?;
    /// let y_pred = Matrix::from_vec(2, 2, vec![1.0, 1.0, 1.0, 0.0])?;
    /// // keras.losses.MeanSquaredError()(y_true, y_pred) = (0.5 + 0.5) / 2
    /// assert_eq!(Loss::mean_squared_error().call(&y_true, &y_pred, None)?, 0.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call(self, y_true: &Matrix, y_pred: &Matrix, sample_weight: Option<&[f32]>) -> Result<f32, TrainError> {
        self.call_weighted(y_true, y_pred, sample_weight.map(SampleWeight::PerSample))
    }

    /// [`call`](Loss::call) with any of Keras' [`SampleWeight`] forms.
    ///
    /// ```
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::{Loss, Reduction, SampleWeight};
    ///
    /// let y_true = Matrix::from_vec(2, 1, vec![1.0, 3.0])?;
    /// let y_pred = Matrix::from_vec(2, 1, vec![2.0, 5.0])?;
    /// // MeanAbsoluteError(reduction="mean_with_sample_weight"), weights [1, 3]: (1 + 6) / 4
    /// let mae = Loss::mean_absolute_error().with_reduction(Reduction::MeanWithSampleWeight);
    /// assert_eq!(mae.call_weighted(&y_true, &y_pred, Some(SampleWeight::PerSample(&[1.0, 3.0])))?, 1.75);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_weighted(
        self,
        y_true: &Matrix,
        y_pred: &Matrix,
        sample_weight: Option<SampleWeight<'_>>,
    ) -> Result<f32, TrainError> {
        if self.reduction() == Reduction::None {
            return Err(TrainError::Config(format!(
                "{}: reduction `none` gives one loss per sample; use call_per_sample",
                self.name()
            )));
        }
        let (value, _) = self.run(y_true, y_pred, sample_weight, None)?;
        Ok(value)
    }

    /// Keras' `reduction=None` output: each sample's `wᵢ·lossᵢ` (0 for rows labelled
    /// `ignore_class`), whatever this loss's own reduction.
    ///
    /// ```
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::Loss;
    ///
    /// let y_true = Matrix::from_vec(2, 2, vec![0.0, 1.0, 0.0, 0.0])?;
    /// let y_pred = Matrix::from_vec(2, 2, vec![1.0, 1.0, 1.0, 0.0])?;
    /// assert_eq!(Loss::mean_squared_error().call_per_sample(&y_true, &y_pred, None)?, vec![0.5, 0.5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_per_sample(
        self,
        y_true: &Matrix,
        y_pred: &Matrix,
        sample_weight: Option<SampleWeight<'_>>,
    ) -> Result<Vec<f32>, TrainError> {
        let mut rows = vec![0.0; y_pred.rows()];
        self.with_reduction(Reduction::None).run(y_true, y_pred, sample_weight, Some(&mut rows))?;
        Ok(rows)
    }

    /// Checks shapes, labels, options and weights, then runs the loss `fit` runs.
    fn run(
        self,
        y_true: &Matrix,
        y_pred: &Matrix,
        sample_weight: Option<SampleWeight<'_>>,
        per_row: Option<&mut [f32]>,
    ) -> Result<(f32, GradOf), TrainError> {
        let (name, rows) = (self.name(), y_pred.rows());
        if y_true.rows() != rows {
            return Err(TrainError::Input(format!("{name}: y_true has {} rows but y_pred has {rows}", y_true.rows())));
        }
        self.validate()?;
        self.check_targets(y_true, y_pred.cols())?;
        let expanded;
        let weighting = match sample_weight {
            None => Weighting::default(),
            Some(SampleWeight::Scalar(s)) => {
                expanded = vec![s; rows];
                check_weights(&expanded, rows, "the loss's")?;
                Weighting { rows: Some(&expanded), scalar: true }
            }
            Some(SampleWeight::PerSample(w)) => {
                check_weights(w, rows, "the loss's")?;
                Weighting { rows: Some(w), scalar: false }
            }
            Some(SampleWeight::Values(m)) => {
                if m.shape() != (rows, 1) {
                    return Err(TrainError::Input(format!(
                        "{name}: sample_weight has shape {:?}, but the loss is one value per sample ({rows} samples): \
                         give (samples, 1) per-value weights or one weight per sample (Keras' broadcast of {rows} \
                         losses by a {:?} weight matrix fails or pairs weights with other samples)",
                        m.shape(),
                        m.shape()
                    )));
                }
                check_weights(m.as_slice(), rows, "the loss's")?;
                Weighting { rows: Some(m.as_slice()), scalar: false }
            }
        };
        let mut grad = Matrix::zeros(0, 0);
        Ok(if self.from_logits() {
            self.compute(y_pred, Some(y_pred), self.logits_activation(), y_true, weighting, &mut grad, per_row)
        } else {
            self.compute(y_pred, None, Activation::Linear, y_true, weighting, &mut grad, per_row)
        })
    }
}
