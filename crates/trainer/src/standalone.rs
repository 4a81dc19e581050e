//! Metrics and losses used on their own, outside `fit`: Keras' `metric.update_state(y_true,
//! y_pred, sample_weight)`, `result()`, `reset_state()` and `loss(y_true, y_pred,
//! sample_weight)`. They run the very code `fit` and `evaluate` run (one implementation),
//! so predictions from anywhere — a saved model, another library — are scored exactly as
//! `evaluate` scores them.

use kiln_layers::Activation;
use kiln_tensor::Matrix;

use crate::metric_state::{MetricState, SampleWeight};
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
/// let mut precision = Metric::PRECISION.standalone();
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
    pub fn metric(&self) -> Metric {
        self.metric
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
                Some(SampleWeight::Rows(w))
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
                Some(SampleWeight::Values(w))
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
    /// ([`F1Average::PerClass`](crate::F1Average::PerClass)) has no single number: NaN
    /// here, its values in [`result_per_class`](Self::result_per_class).
    pub fn result(&self) -> f32 {
        match &self.state {
            Some((s, _, _)) => s.result(),
            None if self.metric.is_per_class() => f32::NAN,
            None => 0.0,
        }
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

impl Loss {
    /// Keras' `loss(y_true, y_pred, sample_weight)`: the loss of predictions `y_pred`
    /// (probabilities, or logits with `from_logits`) against `y_true`, reduced as
    /// `sum_over_batch_size`: `Σᵢ wᵢ·lossᵢ / n` (`wᵢ` = 1 without weights). Labels are
    /// checked as `fit` checks them.
    ///
    /// ```
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::Loss;
    ///
    /// let y_true = Matrix::from_vec(2, 2, vec![0.0, 1.0, 0.0, 0.0])?;
    /// let y_pred = Matrix::from_vec(2, 2, vec![1.0, 1.0, 1.0, 0.0])?;
    /// // keras.losses.MeanSquaredError()(y_true, y_pred) = (0.5 + 0.5) / 2
    /// assert_eq!(Loss::MeanSquaredError.call(&y_true, &y_pred, None)?, 0.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call(self, y_true: &Matrix, y_pred: &Matrix, sample_weight: Option<&[f32]>) -> Result<f32, TrainError> {
        let rows = y_pred.rows();
        if y_true.rows() != rows {
            return Err(TrainError::Input(format!(
                "{}: y_true has {} rows but y_pred has {rows}",
                self.name(),
                y_true.rows()
            )));
        }
        self.check_targets(y_true, y_pred.cols())?;
        if let Some(w) = sample_weight {
            check_weights(w, rows, "the loss's")?;
        }
        let mut grad = Matrix::zeros(0, 0);
        let (value, _) = if self.from_logits() {
            self.forward_backward(y_pred, Some(y_pred), self.logits_activation(), y_true, sample_weight, &mut grad)
        } else {
            self.forward_backward(y_pred, None, Activation::Linear, y_true, sample_weight, &mut grad)
        };
        Ok(value)
    }
}
