//! Metrics reported next to the loss: accuracy (three kinds) and mean absolute error.

use kiln_tensor::Matrix;
use kiln_tensor::kernels::argmax_finite;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::mean::Mean;

/// What a metric computes (typed, as [`Loss`](crate::Loss) is). Serialized in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `"accuracy"`: resolved to one of the three below from the widths of outputs and
    /// labels when training starts, as Keras does.
    Accuracy,
    /// `prediction > 0.5` equals the 0/1 label.
    BinaryAccuracy,
    /// `argmax(prediction)` (ties → first) equals the integer label.
    SparseCategoricalAccuracy,
    /// `argmax(prediction)` equals `argmax(label)`.
    CategoricalAccuracy,
    /// Mean of `|prediction − label|` over the outputs of a sample.
    MeanAbsoluteError,
}

/// No metrics, for `compile(optimizer, loss, NO_METRICS)`.
pub const NO_METRICS: [Metric; 0] = [];

/// Every identifier [`Metric::from_keras`] knows, for error messages.
const KNOWN: &str = "accuracy, acc, binary_accuracy, sparse_categorical_accuracy, categorical_accuracy, mae, \
                     mean_absolute_error";

impl Metric {
    /// The log key Keras uses for this metric's class (`accuracy`, `binary_accuracy`, …).
    pub fn keras_name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::BinaryAccuracy => "binary_accuracy",
            Self::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Self::CategoricalAccuracy => "categorical_accuracy",
            Self::MeanAbsoluteError => "mean_absolute_error",
        }
    }

    /// Parses a Keras identifier or class name (`"accuracy"`, `"acc"`, `"mae"`,
    /// `"BinaryAccuracy"`, …); the identifier becomes the log key, as in Keras.
    pub fn from_keras(name: &str) -> Result<NamedMetric, TrainError> {
        let metric = match name {
            "accuracy" | "acc" | "Accuracy" => Self::Accuracy,
            "binary_accuracy" | "BinaryAccuracy" => Self::BinaryAccuracy,
            "sparse_categorical_accuracy" | "SparseCategoricalAccuracy" => Self::SparseCategoricalAccuracy,
            "categorical_accuracy" | "CategoricalAccuracy" => Self::CategoricalAccuracy,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => Self::MeanAbsoluteError,
            other => return Err(TrainError::UnknownMetric { name: other.to_string(), known: KNOWN.to_string() }),
        };
        let key = match name {
            "Accuracy"
            | "BinaryAccuracy"
            | "SparseCategoricalAccuracy"
            | "CategoricalAccuracy"
            | "MeanAbsoluteError" => metric.keras_name(),
            _ => name,
        };
        Ok(metric.named(key))
    }

    /// This metric reported under another log key.
    pub fn named(self, name: impl Into<String>) -> NamedMetric {
        NamedMetric { name: name.into(), metric: self }
    }

    /// Resolves `accuracy` from the output and label widths alone, as Keras'
    /// `compile_utils.get_metric` does (the loss plays no part: a multi-label sigmoid
    /// output with binary cross-entropy gets *categorical* accuracy, as in Keras).
    pub(crate) fn resolve(self, output_width: usize, label_width: usize) -> Metric {
        if self != Self::Accuracy {
            return self;
        }
        if output_width == 1 {
            Self::BinaryAccuracy
        } else if label_width == 1 {
            Self::SparseCategoricalAccuracy
        } else {
            Self::CategoricalAccuracy
        }
    }
}

/// A metric as compiled: the log key it reports under and what it computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedMetric {
    /// The key in the logs (`accuracy`, `mae`, …).
    pub name: String,
    /// What it computes.
    #[serde(rename = "kind")]
    pub metric: Metric,
}

impl From<Metric> for NamedMetric {
    fn from(metric: Metric) -> Self {
        metric.named(metric.keras_name())
    }
}

impl From<&Metric> for NamedMetric {
    fn from(metric: &Metric) -> Self {
        (*metric).into()
    }
}

impl From<&NamedMetric> for NamedMetric {
    fn from(metric: &NamedMetric) -> Self {
        metric.clone()
    }
}

/// A running metric over an epoch.
#[derive(Debug, Clone)]
pub(crate) struct MetricState {
    pub name: String,
    pub metric: Metric,
    pub mean: Mean,
}

impl MetricState {
    /// Adds one batch of predictions.
    pub fn update(&mut self, pred: &Matrix, targets: &Matrix) {
        let (n, k) = pred.shape();
        let mut sum = 0.0f32;
        for i in 0..n {
            let (p, t) = (pred.row(i), targets.row(i));
            sum += match self.metric {
                // A NaN prediction counts as wrong, whatever the label.
                Metric::BinaryAccuracy => {
                    p.iter().zip(t).filter(|(p, t)| !p.is_nan() && ((**p > 0.5) as u8 as f32) == **t).count() as f32
                        / k as f32
                }
                Metric::SparseCategoricalAccuracy | Metric::Accuracy => {
                    argmax_finite(p).is_some_and(|i| i as f32 == t[0]) as u8 as f32
                }
                Metric::CategoricalAccuracy => {
                    (argmax_finite(p).is_some() && argmax_finite(p) == argmax_finite(t)) as u8 as f32
                }
                Metric::MeanAbsoluteError => p.iter().zip(t).map(|(a, b)| (a - b).abs()).sum::<f32>() / k as f32,
            };
        }
        self.mean.add_sum(sum, n as f32);
    }
}
