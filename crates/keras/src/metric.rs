//! A Keras metric (an identifier or a serialized `keras.metrics` object) as a kiln metric.

use kiln_trainer::{AucCurve, AucSummation, F1Average, Metric, NamedMetric};
use serde_json::Value;

use crate::KerasError;
use crate::json::{At, check_dtype, refuse_unknown};

/// A Keras metric: an identifier (the log key) or a serialized metric (its class gives
/// the kind, its config the options, its `name` the log key).
pub(crate) fn metric(at: At<'_>) -> Result<NamedMetric, KerasError> {
    if let Some(name) = at.value.as_str() {
        return Ok(Metric::from_keras(name)?);
    }
    let class = at.class_name().ok_or_else(|| at.error("metrics must be names or serialized metrics"))?;
    // F1Score's own default (`average=None`) is refused in `configured`, so any default works.
    let default = match class {
        "F1Score" => Metric::F1Score { average: F1Average::Micro, threshold: None }.into(),
        _ => Metric::from_keras(class)?,
    };
    let inner = at.inner();
    let cfg = At { value: &inner, path: &at.child_path("config") };
    check_dtype(cfg)?;
    let kind = configured(default.metric, cfg, class)?;
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
            // `multi_label`, `num_labels`, `label_weights` and explicit `thresholds` are
            // refused by `refuse_unknown` when set (they are off at their defaults).
            refuse_unknown(cfg, class, &["num_thresholds", "curve", "summation_method", "from_logits"], BASE)?;
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
            let from_logits = match cfg.get("from_logits") {
                None => false,
                Some(v) => v.as_bool().ok_or_else(|| cfg.error_at("from_logits", "must be true or false"))?,
            };
            let num_thresholds = cfg.count("num_thresholds")?.unwrap_or(num_thresholds);
            Metric::Auc { num_thresholds, curve, summation_method, from_logits }
        }
        Metric::F1Score { .. } => {
            refuse_unknown(cfg, class, &["average", "threshold"], BASE)?;
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
            Metric::F1Score { average, threshold: float(cfg, "threshold")? }
        }
        other => {
            refuse_unknown(cfg, class, &[], BASE)?;
            other
        }
    })
}

/// An optional float option, as float32.
fn float(cfg: At<'_>, key: &str) -> Result<Option<f32>, KerasError> {
    Ok(cfg.number(key)?.map(|f| f as f32))
}

/// Precision's and Recall's `thresholds`: a number or a one-element list (several
/// thresholds make a vector-valued metric, which kiln's scalar logs cannot hold).
fn one_threshold(cfg: At<'_>) -> Result<Option<f32>, KerasError> {
    match cfg.get("thresholds") {
        Some(Value::Array(list)) if list.len() == 1 => {
            list[0].as_f64().map(|f| Some(f as f32)).ok_or_else(|| cfg.error_at("thresholds", "must hold numbers"))
        }
        Some(Value::Array(list)) => Err(cfg.error_at(
            "thresholds",
            format!("{} thresholds give one value per threshold; kiln logs scalars (give one)", list.len()),
        )),
        _ => float(cfg, "thresholds"),
    }
}
