//! Metrics reported next to the loss: accuracy (three kinds) and mean absolute error.

use kiln_tensor::Matrix;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::mean::Mean;
use kiln_tensor::kernels::argmax;

/// A metric as compiled: the log key it reports under and what it computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The key in the logs (`accuracy`, `mae`, …): the identifier the user passed.
    pub name: String,
    /// What it computes.
    pub kind: MetricKind,
}

/// What a metric computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
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

impl Metric {
    /// Parses a Keras metric identifier (`"accuracy"`, `"acc"`, `"binary_accuracy"`,
    /// `"sparse_categorical_accuracy"`, `"categorical_accuracy"`, `"mae"`, …).
    pub fn from_keras(name: &str) -> Result<Self, TrainError> {
        let kind = match name {
            "accuracy" | "acc" | "Accuracy" => MetricKind::Accuracy,
            "binary_accuracy" | "BinaryAccuracy" => MetricKind::BinaryAccuracy,
            "sparse_categorical_accuracy" | "SparseCategoricalAccuracy" => MetricKind::SparseCategoricalAccuracy,
            "categorical_accuracy" | "CategoricalAccuracy" => MetricKind::CategoricalAccuracy,
            "mae" | "mean_absolute_error" | "MeanAbsoluteError" => MetricKind::MeanAbsoluteError,
            other => {
                return Err(TrainError::Config(format!(
                    "unknown metric `{other}` (known: accuracy, binary_accuracy, \
                     sparse_categorical_accuracy, categorical_accuracy, mae)"
                )));
            }
        };
        Ok(Self { name: name.to_string(), kind })
    }

    /// The same metric reported under another log key (a serialized Keras metric's `name`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Resolves `accuracy` from the output and label widths alone, as Keras'
    /// `compile_utils.get_metric` does (the loss plays no part: a multi-label sigmoid
    /// output with binary cross-entropy gets *categorical* accuracy, as in Keras).
    pub(crate) fn resolve(&self, output_width: usize, label_width: usize) -> MetricKind {
        if self.kind != MetricKind::Accuracy {
            return self.kind;
        }
        if output_width == 1 {
            MetricKind::BinaryAccuracy
        } else if label_width == 1 {
            MetricKind::SparseCategoricalAccuracy
        } else {
            MetricKind::CategoricalAccuracy
        }
    }
}

/// A running metric over an epoch.
#[derive(Debug, Clone)]
pub(crate) struct MetricState {
    pub name: String,
    pub kind: MetricKind,
    pub mean: Mean,
}

impl MetricState {
    /// Adds one batch of predictions.
    pub fn update(&mut self, pred: &Matrix, targets: &Matrix) {
        let (n, k) = pred.shape();
        let mut sum = 0.0f32;
        for i in 0..n {
            let (p, t) = (pred.row(i), targets.row(i));
            sum += match self.kind {
                MetricKind::BinaryAccuracy => {
                    p.iter().zip(t).filter(|(p, t)| ((**p > 0.5) as u8 as f32) == **t).count() as f32 / k as f32
                }
                MetricKind::SparseCategoricalAccuracy | MetricKind::Accuracy => (argmax(p) as f32 == t[0]) as u8 as f32,
                MetricKind::CategoricalAccuracy => (argmax(p) == argmax(t)) as u8 as f32,
                MetricKind::MeanAbsoluteError => p.iter().zip(t).map(|(a, b)| (a - b).abs()).sum::<f32>() / k as f32,
            };
        }
        self.mean.add_sum(sum, n as f32);
    }
}
