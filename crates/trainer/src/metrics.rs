//! Metrics reported next to the loss: accuracies, mean absolute error, and Keras'
//! confusion-matrix metrics (precision, recall, AUC, F1). Their running state is in
//! `metric_state.rs`.

use serde::{Deserialize, Serialize};

use crate::{NamedMetric, Thresholds, TrainError};

/// What a metric computes (typed, as [`Loss`](crate::Loss) is), with Keras' semantics.
/// Serialized in snake case (`"accuracy"`, `{"precision": {"thresholds": 0.5, …}}`).
/// `Clone`, not `Copy`: a list of [`Thresholds`] is shared behind an `Arc`.
///
/// The confusion-matrix metrics (`Precision`, `Recall`, `Auc`, `F1Score`) are stateful
/// over the epoch, as Keras' are: they sum true/false positive counts over every batch and
/// compute the ratio at the end, never averaging per-batch ratios. With sample weights,
/// counts and means are weighted as Keras weighs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `"accuracy"`: resolved to one of the three below from the widths of outputs and
    /// labels when training starts, as Keras does.
    Accuracy,
    /// Keras' `Accuracy` class (not the `"accuracy"` string): the fraction of values where
    /// `prediction == label` exactly, compared element-wise (log key `accuracy`).
    ExactAccuracy,
    /// `prediction > 0.5` equals the 0/1 label.
    BinaryAccuracy,
    /// `prediction > threshold` equals the 0/1 label (Keras' `BinaryAccuracy(threshold)`).
    ThresholdedBinaryAccuracy {
        /// The decision threshold.
        threshold: f32,
    },
    /// `argmax(prediction)` (ties → first) equals the integer label.
    SparseCategoricalAccuracy,
    /// `argmax(prediction)` equals `argmax(label)`.
    CategoricalAccuracy,
    /// The one-hot label's class is among the `k` highest predictions (ties count in, as
    /// TensorFlow's `in_top_k`).
    TopKCategoricalAccuracy {
        /// How many top predictions count (Keras' default 5).
        k: usize,
    },
    /// The integer label is among the `k` highest predictions.
    SparseTopKCategoricalAccuracy {
        /// How many top predictions count (Keras' default 5).
        k: usize,
    },
    /// Mean of `|prediction − label|` over the outputs of a sample.
    MeanAbsoluteError,
    /// Mean of `(prediction − label)²` over the outputs of a sample (Keras' `mse` metric).
    MeanSquaredError,
    /// Keras' `BinaryCrossentropy` metric: the mean over samples of the mean over outputs of
    /// `−(y·ln p + (1−y)·ln(1−p))` (p clipped to `[1e-7, 1−1e-7]`, or from logits), with
    /// labels smoothed to `y·(1−s) + s/2` first.
    BinaryCrossentropy {
        /// The predictions are logits (default `false`).
        from_logits: bool,
        /// `s` in `[0, 1]` (default 0).
        label_smoothing: f32,
    },
    /// Keras' `CategoricalCrossentropy` metric: the mean over samples of `−Σⱼ yⱼ·ln pⱼ`
    /// (rows renormalized and clipped, or softmax of logits), labels smoothed to
    /// `y·(1−s) + s/classes` first; classes are the last axis (Keras' default `axis=-1`).
    CategoricalCrossentropy {
        /// The predictions are logits (default `false`).
        from_logits: bool,
        /// `s` in `[0, 1]` (default 0).
        label_smoothing: f32,
    },
    /// Keras' `SparseCategoricalCrossentropy` metric: the mean over samples of
    /// `−ln p[label]` for integer labels (one column), classes on the last axis.
    SparseCategoricalCrossentropy {
        /// The predictions are logits (default `false`).
        from_logits: bool,
    },
    /// `tp / (tp + fp)` over the epoch, positives being `prediction > threshold` (0.5, or
    /// −∞ with `top_k`); `top_k` keeps only each row's k highest predictions, `class_id`
    /// one column. Several thresholds give one value per threshold (standalone only).
    Precision {
        /// The decision threshold(s) in `[0, 1]` (`None`: Keras' default).
        thresholds: Option<Thresholds>,
        /// Only each row's `top_k` highest predictions can be positive.
        top_k: Option<usize>,
        /// Only this output column counts.
        class_id: Option<usize>,
    },
    /// `tp / (tp + fn)` over the epoch, with [`Precision`](Metric::Precision)'s options.
    /// Several thresholds give one value per threshold (standalone only).
    Recall {
        /// The decision threshold(s) in `[0, 1]` (`None`: Keras' default).
        thresholds: Option<Thresholds>,
        /// Only each row's `top_k` highest predictions can be positive.
        top_k: Option<usize>,
        /// Only this output column counts.
        class_id: Option<usize>,
    },
    /// Area under the ROC or precision-recall curve from `num_thresholds` evenly spaced
    /// thresholds, or from explicit `thresholds` (Keras' `AUC`: counts bucketed as Keras
    /// buckets them, Riemann sums, and Davis & Goadrich's interpolation for PR).
    Auc {
        /// Thresholds, the two end ones included (Keras' default 200); ignored when
        /// `thresholds` is given (Keras then sets it to `len + 2`).
        num_thresholds: usize,
        /// `ROC` or `PR`.
        curve: AucCurve,
        /// How each interval's height is taken.
        summation_method: AucSummation,
        /// Apply a sigmoid to the predictions first.
        from_logits: bool,
        /// Explicit thresholds (Keras' `thresholds`; default `None`): sorted, with `−ε` and
        /// `1 + ε` (ε = 1e-7) added at the ends; evenly spaced ones are bucketed as
        /// `num_thresholds = len + 2` would be, others compared one by one (`p > t`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thresholds: Option<Thresholds>,
    },
    /// The F1 score (Keras' `F1Score`): per class `2·p·r / (p + r + ε)` with
    /// `p = tp / (tp + fp + ε)`, `r = tp / (tp + fn + ε)`, then averaged.
    F1Score {
        /// `micro` (global counts), `macro` (mean over classes) or `weighted` (by support).
        average: F1Average,
        /// `prediction > threshold` is positive; `None`: each row's highest prediction.
        threshold: Option<f32>,
    },
    #[serde(rename = "fbeta_score")]
    /// Keras' `FBetaScore`: per class `(1+β²)·p·r / (β²·p + r + ε)` with
    /// `p = tp / (tp + fp + ε)`, `r = tp / (tp + fn + ε)`, then averaged; `F1Score` is β = 1.
    FBetaScore {
        /// β > 0: how many times recall weighs more than precision (Keras' default 1).
        beta: f32,
        /// `micro`, `macro`, `weighted`, or `per_class` (Keras' default `None`).
        average: F1Average,
        /// `prediction > threshold` is positive; `None`: each row's highest prediction.
        threshold: Option<f32>,
    },
}

/// The curve of [`Metric::Auc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AucCurve {
    /// Recall against false-positive rate.
    #[serde(rename = "ROC")]
    Roc,
    /// Precision against recall.
    #[serde(rename = "PR")]
    Pr,
}

/// How [`Metric::Auc`] takes each interval's height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AucSummation {
    /// The mean of both ends (Keras' default; for PR, Davis & Goadrich's interpolation).
    Interpolation,
    /// The lower end.
    Minoring,
    /// The higher end.
    Majoring,
}

/// How [`Metric::F1Score`] averages its classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum F1Average {
    /// One score from the counts of all classes together.
    Micro,
    /// The mean of the per-class scores.
    Macro,
    /// The per-class scores weighted by each class's (weighted) number of true labels.
    Weighted,
    /// No average: one score per class (Keras' `average=None`). Standalone only: read it
    /// with [`StandaloneMetric::result_per_class`](crate::StandaloneMetric::result_per_class);
    /// `compile` refuses it, since each log key holds one number.
    PerClass,
}

/// Which way a metric improves: Keras' `Metric._direction` (`"up"` or `"down"`), which
/// `mode="auto"` in EarlyStopping, ReduceLROnPlateau and ModelCheckpoint follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Larger is better (accuracies, precision, recall, AUC, F-scores).
    Up,
    /// Smaller is better (errors and losses).
    Down,
}

/// No metrics, for `compile(optimizer, loss, NO_METRICS)`.
pub const NO_METRICS: [Metric; 0] = [];

/// Every identifier [`Metric::from_keras`] knows, for error messages.
const KNOWN: &str = "accuracy, acc, binary_accuracy, sparse_categorical_accuracy, categorical_accuracy, mae, \
                     mean_absolute_error, mse, mean_squared_error, bce, binary_crossentropy, \
                     categorical_crossentropy, sparse_categorical_crossentropy, top_k_categorical_accuracy, \
                     sparse_top_k_categorical_accuracy, precision, recall, auc (and their class names)";

impl Metric {
    /// This crossentropy reading its predictions as logits (`None` for other metrics):
    /// what Keras computes on a sigmoid's or softmax's output, whose logits its loss
    /// functions read instead (`MetricState::update_from_layer`).
    pub(crate) fn reading_logits(&self) -> Option<Metric> {
        match *self {
            Self::BinaryCrossentropy { label_smoothing, .. } => {
                Some(Self::BinaryCrossentropy { from_logits: true, label_smoothing })
            }
            Self::CategoricalCrossentropy { label_smoothing, .. } => {
                Some(Self::CategoricalCrossentropy { from_logits: true, label_smoothing })
            }
            Self::SparseCategoricalCrossentropy { .. } => {
                Some(Self::SparseCategoricalCrossentropy { from_logits: true })
            }
            _ => None,
        }
    }
    // One naming rule with `Loss`: a metric without options is a unit variant
    // (`Metric::Accuracy`); one with options gets a snake-case constructor holding Keras'
    // defaults (`Metric::precision()`, as `Loss::binary_crossentropy()`).

    /// Keras' `Precision()` with its defaults (threshold 0.5, no `top_k`, no `class_id`).
    pub const fn precision() -> Metric {
        Metric::Precision { thresholds: None, top_k: None, class_id: None }
    }

    /// Keras' `Recall()` with its defaults (threshold 0.5, no `top_k`, no `class_id`).
    pub const fn recall() -> Metric {
        Metric::Recall { thresholds: None, top_k: None, class_id: None }
    }

    /// Keras' `TopKCategoricalAccuracy()` with its default `k = 5`.
    pub const fn top_k_categorical_accuracy() -> Metric {
        Metric::TopKCategoricalAccuracy { k: 5 }
    }

    /// Keras' `SparseTopKCategoricalAccuracy()` with its default `k = 5`.
    pub const fn sparse_top_k_categorical_accuracy() -> Metric {
        Metric::SparseTopKCategoricalAccuracy { k: 5 }
    }

    /// Keras' `BinaryCrossentropy()` metric with its defaults (probabilities, no smoothing).
    pub const fn binary_crossentropy() -> Metric {
        Metric::BinaryCrossentropy { from_logits: false, label_smoothing: 0.0 }
    }

    /// Keras' `CategoricalCrossentropy()` metric with its defaults (probabilities, no smoothing).
    pub const fn categorical_crossentropy() -> Metric {
        Metric::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 }
    }

    /// Keras' `SparseCategoricalCrossentropy()` metric with its default (probabilities).
    pub const fn sparse_categorical_crossentropy() -> Metric {
        Metric::SparseCategoricalCrossentropy { from_logits: false }
    }

    /// Keras' `AUC()` with its defaults (200 thresholds, ROC, interpolation).
    pub const fn auc() -> Metric {
        Metric::Auc {
            num_thresholds: 200,
            curve: AucCurve::Roc,
            summation_method: AucSummation::Interpolation,
            from_logits: false,
            thresholds: None,
        }
    }

    /// The log key Keras uses for this metric's class (`accuracy`, `binary_accuracy`, …).
    pub fn keras_name(&self) -> &'static str {
        match self {
            Self::Accuracy | Self::ExactAccuracy => "accuracy",
            Self::BinaryAccuracy | Self::ThresholdedBinaryAccuracy { .. } => "binary_accuracy",
            Self::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Self::CategoricalAccuracy => "categorical_accuracy",
            Self::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Self::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            Self::MeanAbsoluteError => "mean_absolute_error",
            Self::MeanSquaredError => "mean_squared_error",
            Self::BinaryCrossentropy { .. } => "binary_crossentropy",
            Self::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Self::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Self::Precision { .. } => "precision",
            Self::Recall { .. } => "recall",
            Self::Auc { .. } => "auc",
            Self::F1Score { .. } => "f1_score",
            Self::FBetaScore { .. } => "fbeta_score",
        }
    }

    /// Which way this metric improves, as its Keras class declares (`_direction`): every
    /// accuracy, `Precision`, `Recall`, `AUC`, `F1Score` and `FBetaScore` go up; the errors
    /// and crossentropies (Keras' loss-wrapping metrics) go down.
    pub fn direction(&self) -> Direction {
        match self {
            Self::MeanAbsoluteError
            | Self::MeanSquaredError
            | Self::BinaryCrossentropy { .. }
            | Self::CategoricalCrossentropy { .. }
            | Self::SparseCategoricalCrossentropy { .. } => Direction::Down,
            Self::Accuracy
            | Self::ExactAccuracy
            | Self::BinaryAccuracy
            | Self::ThresholdedBinaryAccuracy { .. }
            | Self::SparseCategoricalAccuracy
            | Self::CategoricalAccuracy
            | Self::TopKCategoricalAccuracy { .. }
            | Self::SparseTopKCategoricalAccuracy { .. }
            | Self::Precision { .. }
            | Self::Recall { .. }
            | Self::Auc { .. }
            | Self::F1Score { .. }
            | Self::FBetaScore { .. } => Direction::Up,
        }
    }

    /// Parses a metric identifier as Keras' `compile(metrics=[...])` does
    /// (`compile_utils.get_metric`): `"accuracy"`/`"acc"` in any case resolve by the labels'
    /// shape; any other string is a class name (`"BinaryAccuracy"`, `"AUC"`), its snake-case
    /// form or an alias (`"mse"`, `"MAE"`, `"bce"`), with Keras' defaults. The string itself
    /// is the log key, as in Keras.
    pub fn from_keras(name: &str) -> Result<NamedMetric, TrainError> {
        let metric = if ["accuracy", "acc"].contains(&name.to_lowercase().as_str()) {
            Self::Accuracy
        } else {
            Self::from_keras_class(name)?.metric
        };
        Ok(metric.named(name))
    }

    /// A serialized Keras metric's class (`"Accuracy"`, `"MeanSquaredError"`; snake-case
    /// names and aliases too) with Keras' defaults, logged under its class's snake-case
    /// name. Unlike the string `"accuracy"`, the class `Accuracy` is Keras' exact-match
    /// metric.
    pub fn from_keras_class(name: &str) -> Result<NamedMetric, TrainError> {
        let metric = match name {
            "accuracy" | "acc" => Self::Accuracy,
            "Accuracy" => Self::ExactAccuracy,
            "binary_accuracy" | "BinaryAccuracy" => Self::BinaryAccuracy,
            "sparse_categorical_accuracy" | "SparseCategoricalAccuracy" => Self::SparseCategoricalAccuracy,
            "categorical_accuracy" | "CategoricalAccuracy" => Self::CategoricalAccuracy,
            "top_k_categorical_accuracy" | "TopKCategoricalAccuracy" => Self::top_k_categorical_accuracy(),
            "sparse_top_k_categorical_accuracy" | "SparseTopKCategoricalAccuracy" => {
                Self::sparse_top_k_categorical_accuracy()
            }
            "mae" | "MAE" | "mean_absolute_error" | "MeanAbsoluteError" => Self::MeanAbsoluteError,
            "mse" | "MSE" | "mean_squared_error" | "MeanSquaredError" => Self::MeanSquaredError,
            "bce" | "BCE" | "binary_crossentropy" | "BinaryCrossentropy" => Self::binary_crossentropy(),
            "categorical_crossentropy" | "CategoricalCrossentropy" => Self::categorical_crossentropy(),
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Self::sparse_categorical_crossentropy()
            }
            "precision" | "Precision" => Self::precision(),
            "recall" | "Recall" => Self::recall(),
            "auc" | "AUC" => Self::auc(),
            "f1_score" | "F1Score" | "fbeta_score" | "FBetaScore" => {
                return Err(TrainError::Config(format!(
                    "metric `{name}`: Keras' default average=None gives one score per class; kiln logs one number \
                     per key, so give Metric::F1Score or Metric::FBetaScore with an average (micro, macro or \
                     weighted)"
                )));
            }
            other => return Err(TrainError::UnknownMetric { name: other.to_string(), known: KNOWN.to_string() }),
        };
        let key = metric.keras_name();
        Ok(metric.named(key))
    }

    /// This metric reported under another log key.
    pub fn named(self, name: impl Into<String>) -> NamedMetric {
        NamedMetric { name: name.into(), metric: self, weighted: false }
    }

    /// Checks the arguments (Keras-like messages naming the argument).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::TopKCategoricalAccuracy { k } | Self::SparseTopKCategoricalAccuracy { k } if *k == 0 => {
                Err("argument `k` must be ≥ 1, received k=0".into())
            }
            Self::Precision { top_k: Some(0), .. } | Self::Recall { top_k: Some(0), .. } => {
                Err("argument `top_k` must be ≥ 1, received top_k=0".into())
            }
            // Keras' `metrics_utils.assert_thresholds_range` (NaN is refused too); an empty
            // list, which Keras turns into an empty result, is refused.
            Self::Precision { thresholds: Some(ts), .. } | Self::Recall { thresholds: Some(ts), .. } => {
                if ts.is_empty() {
                    return Err("argument `thresholds` must hold at least one threshold, received []".into());
                }
                let bad: Vec<f32> = ts.as_slice().iter().copied().filter(|t| !(0.0..=1.0).contains(t)).collect();
                if bad.is_empty() {
                    Ok(())
                } else {
                    Err(format!("threshold values must be in [0, 1], received {bad:?}"))
                }
            }
            // Keras checks `num_thresholds` only when no thresholds are given, and takes any
            // explicit threshold (kiln refuses NaN, which sorts nowhere).
            Self::Auc { thresholds: Some(ts), .. } if ts.as_slice().iter().any(|t| t.is_nan()) => {
                Err(format!("argument `thresholds` must hold numbers, received {:?}", ts.as_slice()))
            }
            Self::Auc { num_thresholds, thresholds: None, .. } if *num_thresholds <= 1 => Err(format!(
                "argument `num_thresholds` must be an integer > 1, received num_thresholds={num_thresholds}"
            )),
            Self::ThresholdedBinaryAccuracy { threshold } if !threshold.is_finite() => {
                Err(format!("argument `threshold` must be finite, received threshold={threshold}"))
            }
            // Keras' FBetaScore.__init__ (keras/src/metrics/f_score_metrics.py), which
            // F1Score runs: "It should verify 0 < threshold <= 1" (NaN fails it too).
            Self::F1Score { threshold: Some(t), .. } | Self::FBetaScore { threshold: Some(t), .. }
                if !(*t > 0.0 && *t <= 1.0) =>
            {
                Err(format!("argument `threshold` must verify 0 < threshold <= 1, received threshold={t}"))
            }
            // Keras: "Invalid `beta` argument value. It should be > 0" (a non-finite β, which
            // Keras lets through to a NaN or 0 score, is refused too).
            Self::FBetaScore { beta, .. } if !(*beta > 0.0 && beta.is_finite()) => {
                Err(format!("argument `beta` must be a finite float > 0, received beta={beta}"))
            }
            // Keras documents label_smoothing as a float in [0, 1].
            Self::BinaryCrossentropy { label_smoothing: s, .. }
            | Self::CategoricalCrossentropy { label_smoothing: s, .. }
                if !(0.0..=1.0).contains(s) =>
            {
                Err(format!("argument `label_smoothing` must be in [0, 1], received label_smoothing={s}"))
            }
            _ => Ok(()),
        }
    }

    /// Checks that labels of `label_w` columns fit this (resolved) metric on outputs of
    /// `out_w` columns: the sparse accuracies take one column of class ids; every other
    /// metric compares labels and outputs element-wise, so their widths must agree (Keras
    /// raises on such shapes, or broadcasts a one-column label, which kiln does not
    /// compute); `class_id` must name an output column.
    pub(crate) fn check_widths(&self, out_w: usize, label_w: usize) -> Result<(), String> {
        let name = self.keras_name();
        match self {
            Self::SparseCategoricalAccuracy
            | Self::SparseTopKCategoricalAccuracy { .. }
            | Self::SparseCategoricalCrossentropy { .. }
                if label_w != 1 =>
            {
                Err(format!("{name} takes one column of integer class ids as labels, got {label_w} columns"))
            }
            Self::SparseCategoricalAccuracy
            | Self::SparseTopKCategoricalAccuracy { .. }
            | Self::SparseCategoricalCrossentropy { .. }
            | Self::Accuracy => Ok(()),
            _ if label_w != out_w => Err(format!(
                "{name} compares labels with outputs element-wise, but the labels have {label_w} column(s) and \
                 the model outputs {out_w} (one-hot labels, or a sparse metric, fit class-id labels)"
            )),
            Self::Precision { class_id: Some(c), .. } | Self::Recall { class_id: Some(c), .. } if *c >= out_w => {
                Err(format!("{name}: class_id={c} is not an output column (the model outputs {out_w})"))
            }
            // TensorFlow's top_k: "input must have at least k columns".
            Self::Precision { top_k: Some(k), .. } | Self::Recall { top_k: Some(k), .. } if *k > out_w => {
                Err(format!("{name}: top_k={k} needs at least {k} output columns (the model outputs {out_w})"))
            }
            _ => Ok(()),
        }
    }

    /// Resolves `accuracy` from the output and label widths alone, as Keras'
    /// `compile_utils.get_metric` does (the loss plays no part: a multi-label sigmoid
    /// output with binary cross-entropy gets *categorical* accuracy, as in Keras).
    pub(crate) fn resolve(&self, output_width: usize, label_width: usize) -> Metric {
        if *self != Self::Accuracy {
            return self.clone();
        }
        if output_width == 1 {
            Self::BinaryAccuracy
        } else if label_width == 1 {
            Self::SparseCategoricalAccuracy
        } else {
            Self::CategoricalAccuracy
        }
    }

    /// `(β, average, threshold)` of the F-scores (`F1Score` is β = 1), `None` for others.
    pub(crate) fn fbeta(&self) -> Option<(f32, F1Average, Option<f32>)> {
        match self {
            Self::F1Score { average, threshold } => Some((1.0, *average, *threshold)),
            Self::FBetaScore { beta, average, threshold } => Some((*beta, *average, *threshold)),
            _ => None,
        }
    }

    /// Whether the metric has one value per class rather than one number.
    pub fn is_per_class(&self) -> bool {
        self.fbeta().is_some_and(|(_, average, _)| average == F1Average::PerClass)
    }

    /// The thresholds an [`Auc`](Metric::Auc) evaluates, ends included (Keras'
    /// `AUC.thresholds`): `−ε`, then `i/(num_thresholds − 1)` for `i` in
    /// `1..num_thresholds − 1` or the explicit thresholds sorted, then `1 + ε` (ε = 1e-7,
    /// rounded to float32); its length is Keras' `num_thresholds`. `None` for other metrics.
    pub fn auc_thresholds(&self) -> Option<Vec<f32>> {
        let Self::Auc { num_thresholds, thresholds, .. } = self else { return None };
        let mut all = vec![(0.0f64 - 1e-7) as f32];
        match thresholds {
            Some(ts) => {
                let start = all.len();
                all.extend_from_slice(ts.as_slice());
                all[start..].sort_by(f32::total_cmp);
            }
            None => {
                let n = *num_thresholds;
                all.extend((0..n.saturating_sub(2)).map(|i| ((i + 1) as f64 / (n - 1) as f64) as f32));
            }
        }
        all.push((1.0f64 + 1e-7) as f32);
        Some(all)
    }

    /// Whether the metric has one value per threshold rather than one number: `Precision`
    /// or `Recall` with two or more thresholds (Keras' `result()` is then a vector).
    pub fn is_per_threshold(&self) -> bool {
        match self {
            Self::Precision { thresholds: Some(ts), .. } | Self::Recall { thresholds: Some(ts), .. } => ts.len() > 1,
            _ => false,
        }
    }

    /// Whether Keras computes this metric value by value, before any mean over a row, so
    /// that a weight per value applies (`Accuracy`, `BinaryAccuracy`, the confusion-matrix
    /// metrics); the row-reducing ones (errors, crossentropies, categorical accuracies) take
    /// one weight per row, as Keras' `reduce_to_samplewise_values` can only broadcast those.
    pub(crate) fn takes_value_weights(&self) -> bool {
        matches!(
            self,
            Self::ExactAccuracy
                | Self::BinaryAccuracy
                | Self::ThresholdedBinaryAccuracy { .. }
                | Self::Precision { .. }
                | Self::Recall { .. }
                | Self::Auc { .. }
                | Self::F1Score { .. }
                | Self::FBetaScore { .. }
        )
    }

    /// The loss whose label domain the crossentropy metrics share (checked as the loss
    /// checks its labels), `None` for the other metrics.
    pub(crate) fn label_loss(&self) -> Option<crate::Loss> {
        match self {
            Self::BinaryCrossentropy { .. } => Some(crate::Loss::binary_crossentropy()),
            Self::CategoricalCrossentropy { .. } => Some(crate::Loss::categorical_crossentropy()),
            Self::SparseCategoricalCrossentropy { .. } => Some(crate::Loss::sparse_categorical_crossentropy()),
            _ => None,
        }
    }
}
