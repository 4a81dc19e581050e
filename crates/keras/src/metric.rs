//! A Keras metric (an identifier or a serialized `keras.metrics` object) as a kiln metric.

use kiln_trainer::{AucCurve, AucSummation, F1Average, Metric, NamedMetric, Thresholds};
use serde_json::Value;

use crate::KerasError;
use crate::json::{At, check_dtype, refuse_unknown};

/// The functions of `keras.metrics` kiln computes (see `compile.rs`' `LOSS_FUNCTIONS`).
const METRIC_FUNCTIONS: &[&str] = &[
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
];

/// A Keras metric: an identifier (the log key) or a serialized metric (its class gives
/// the kind, its config the options, its `name` the log key).
pub(crate) fn metric(at: At<'_>) -> Result<NamedMetric, KerasError> {
    if let Some(name) = at.value.as_str() {
        return Ok(Metric::from_keras(name)?);
    }
    // A Keras function (`metrics=[keras.metrics.binary_accuracy]`), saved by its name alone.
    if let Some(f) = at.function_name() {
        if !METRIC_FUNCTIONS.contains(&f) {
            return Err(at.error(format!(
                "metric function `{f}` is not one of keras.metrics' that kiln computes ({}); a function of your \
                 own cannot be read from its name",
                METRIC_FUNCTIONS.join(", ")
            )));
        }
        return Ok(Metric::from_keras(f)?);
    }
    let class = at.class_name().ok_or_else(|| at.error("metrics must be names or serialized metrics"))?;
    // The F-scores' own default (`average=None`) is refused in `configured`, so any default works.
    let default = match class {
        "F1Score" => Metric::F1Score { average: F1Average::Micro, threshold: None }.into(),
        "FBetaScore" => Metric::FBetaScore { beta: 1.0, average: F1Average::Micro, threshold: None }.into(),
        _ => Metric::from_keras_class(class)?,
    };
    let inner = at.inner();
    let cfg = At { value: &inner, path: &at.child_path("config") };
    check_dtype(cfg)?;
    let kind = configured(default.metric.clone(), cfg, class)?;
    kind.validate().map_err(|e| cfg.error(e))?;
    Ok(match inner.get("name").and_then(Value::as_str) {
        Some(key) => kind.named(key),
        None => kind.named(default.name),
    })
}

/// `default` with the options of its serialized config applied; an option kiln does not
/// implement is refused.
fn configured(default: Metric, cfg: At<'_>, class: &str) -> Result<Metric, KerasError> {
    const BASE: &[&str] = &["name", "dtype"];
    Ok(match default {
        Metric::BinaryAccuracy => {
            refuse_unknown(cfg, class, &["threshold"], BASE)?;
            match float(cfg, "threshold")? {
                None | Some(0.5) => Metric::BinaryAccuracy,
                Some(threshold) => Metric::ThresholdedBinaryAccuracy { threshold },
            }
        }
        Metric::TopKCategoricalAccuracy { k } => {
            refuse_unknown(cfg, class, &["k"], BASE)?;
            Metric::TopKCategoricalAccuracy { k: cfg.count("k")?.unwrap_or(k) }
        }
        Metric::SparseTopKCategoricalAccuracy { k } => {
            refuse_unknown(cfg, class, &["k"], BASE)?;
            Metric::SparseTopKCategoricalAccuracy { k: cfg.count("k")?.unwrap_or(k) }
        }
        Metric::Precision { .. } | Metric::Recall { .. } => {
            refuse_unknown(cfg, class, &["thresholds", "top_k", "class_id"], BASE)?;
            let (thresholds, top_k, class_id) = (one_threshold(cfg)?, cfg.count("top_k")?, cfg.count("class_id")?);
            if matches!(default, Metric::Precision { .. }) {
                Metric::Precision { thresholds, top_k, class_id }
            } else {
                Metric::Recall { thresholds, top_k, class_id }
            }
        }
        Metric::Auc { num_thresholds, .. } => {
            // `multi_label`, `num_labels` and `label_weights` are refused by
            // `refuse_unknown` when set (they are off at their defaults).
            refuse_unknown(
                cfg,
                class,
                &["num_thresholds", "curve", "summation_method", "from_logits", "thresholds"],
                BASE,
            )?;
            let curve = match cfg.get("curve").map(|v| v.as_str()) {
                None | Some(Some("ROC")) => AucCurve::Roc,
                Some(Some("PR")) => AucCurve::Pr,
                Some(_) => return Err(cfg.error_at("curve", "must be \"ROC\" or \"PR\"")),
            };
            let summation_method = match cfg.get("summation_method").map(|v| v.as_str()) {
                None | Some(Some("interpolation")) => AucSummation::Interpolation,
                Some(Some("minoring")) => AucSummation::Minoring,
                Some(Some("majoring")) => AucSummation::Majoring,
                Some(_) => {
                    return Err(cfg.error_at("summation_method", "must be interpolation, minoring or majoring"));
                }
            };
            let from_logits = cfg.flag("from_logits", false)?;
            let num_thresholds = cfg.count("num_thresholds")?.unwrap_or(num_thresholds);
            // Keras' config holds the thresholds without their ε ends (`thresholds[1:-1]`)
            // and `num_thresholds = len + 2`; null when they were not given.
            let thresholds = match cfg.get("thresholds") {
                None | Some(Value::Null) => None,
                Some(Value::Array(list)) => Some(numbers(cfg, list)?),
                Some(_) => return Err(cfg.error_at("thresholds", "must be a list of numbers or null")),
            };
            Metric::Auc { num_thresholds, curve, summation_method, from_logits, thresholds }
        }
        Metric::F1Score { .. } | Metric::FBetaScore { .. } => {
            let beta_key: &[&str] = if matches!(default, Metric::FBetaScore { .. }) { &["beta"] } else { &[] };
            refuse_unknown(cfg, class, &["average", "threshold"], &[BASE, beta_key].concat())?;
            let average = match cfg.get("average").map(|v| v.as_str()) {
                Some(Some("micro")) => F1Average::Micro,
                Some(Some("macro")) => F1Average::Macro,
                Some(Some("weighted")) => F1Average::Weighted,
                None => {
                    return Err(cfg.error_at(
                        "average",
                        "average=None logs one score per class; kiln logs scalars (use micro, macro or weighted)",
                    ));
                }
                Some(_) => return Err(cfg.error_at("average", "must be micro, macro or weighted")),
            };
            let threshold = float(cfg, "threshold")?;
            match default {
                Metric::FBetaScore { beta, .. } => {
                    let beta = float(cfg, "beta")?.unwrap_or(beta);
                    Metric::FBetaScore { beta, average, threshold }
                }
                _ => Metric::F1Score { average, threshold },
            }
        }
        Metric::BinaryCrossentropy { .. } => {
            refuse_unknown(cfg, class, &["from_logits", "label_smoothing"], BASE)?;
            let label_smoothing = float(cfg, "label_smoothing")?.unwrap_or(0.0);
            Metric::BinaryCrossentropy { from_logits: cfg.flag("from_logits", false)?, label_smoothing }
        }
        Metric::CategoricalCrossentropy { .. } => {
            refuse_unknown(cfg, class, &["from_logits", "label_smoothing", "axis"], BASE)?;
            last_axis(cfg)?;
            let label_smoothing = float(cfg, "label_smoothing")?.unwrap_or(0.0);
            Metric::CategoricalCrossentropy { from_logits: cfg.flag("from_logits", false)?, label_smoothing }
        }
        Metric::SparseCategoricalCrossentropy { .. } => {
            // `ignore_class` is refused by `refuse_unknown` when set (off at its default).
            refuse_unknown(cfg, class, &["from_logits", "axis"], BASE)?;
            last_axis(cfg)?;
            Metric::SparseCategoricalCrossentropy { from_logits: cfg.flag("from_logits", false)? }
        }
        other => {
            refuse_unknown(cfg, class, &[], BASE)?;
            other
        }
    })
}

/// The crossentropies' `axis`: kiln's classes are the last axis of 2-D outputs, so only
/// Keras' default `-1` (or `1`, the same axis) is taken.
fn last_axis(cfg: At<'_>) -> Result<(), KerasError> {
    match cfg.get("axis").map(Value::as_i64) {
        None | Some(Some(-1 | 1)) => Ok(()),
        Some(_) => {
            Err(cfg.error_at("axis", "kiln's outputs are 2-D with classes last: only axis=-1 (or 1) is supported"))
        }
    }
}

/// An optional float option, as float32.
fn float(cfg: At<'_>, key: &str) -> Result<Option<f32>, KerasError> {
    Ok(cfg.number(key)?.map(|f| f as f32))
}

/// A list of numbers, as float32.
fn numbers(cfg: At<'_>, list: &[Value]) -> Result<Thresholds, KerasError> {
    list.iter()
        .map(|v| v.as_f64().map(|f| f as f32).ok_or_else(|| cfg.error_at("thresholds", "must hold numbers")))
        .collect::<Result<Vec<f32>, _>>()
        .map(Thresholds::from)
}

/// Precision's and Recall's `thresholds` in a compiled model: a number or a one-element
/// list (several thresholds make a vector-valued metric, which kiln's scalar logs cannot
/// hold; `Metric::standalone()` computes it).
fn one_threshold(cfg: At<'_>) -> Result<Option<Thresholds>, KerasError> {
    match cfg.get("thresholds") {
        Some(Value::Array(list)) if list.len() == 1 => numbers(cfg, list).map(Some),
        Some(Value::Array(list)) => Err(cfg.error_at(
            "thresholds",
            format!(
                "{} thresholds give one value per threshold; kiln logs scalars (give one, or score them with \
                 Metric::standalone())",
                list.len()
            ),
        )),
        _ => Ok(float(cfg, "thresholds")?.map(Thresholds::one)),
    }
}
