//! A Keras compile config (optimizer, loss, metrics) applied to a kiln model.

use kiln_trainer::{Loss, Sequential};
use serde_json::Value;

use crate::KerasError;
use crate::json::{At, refuse_unknown};
use crate::metric::metric;
use crate::optimizer::optimizer;

/// Compiles `model` from a Keras compile object: `{"optimizer": {...}, "loss": "...",
/// "metrics": ["accuracy"], "weighted_metrics": [...]}` (a `.keras` file's
/// `compile_config`, or a trace's).
pub fn compile_from_keras(model: &mut Sequential, compile: &Value) -> Result<(), KerasError> {
    compile_at(model, At::root(compile))
}

pub(crate) fn compile_at(model: &mut Sequential, at: At<'_>) -> Result<(), KerasError> {
    refuse_unknown(
        at,
        "compile",
        &["optimizer", "loss", "metrics", "weighted_metrics"],
        &["run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"],
    )?;
    let opt_v = at.get("optimizer").ok_or_else(|| at.error("compile without optimizer"))?;
    let optimizer = optimizer(At { value: opt_v, path: &at.child_path("optimizer") })?;
    let loss_v = at.get("loss").ok_or_else(|| at.error("compile without loss"))?;
    let loss = loss(At { value: loss_v, path: &at.child_path("loss") })?;
    let mut metrics = Vec::new();
    // `metrics` ignore sample and class weights; `weighted_metrics` use them (Keras 3).
    for (key, weighted) in [("metrics", false), ("weighted_metrics", true)] {
        let Some(list) = at.get(key) else { continue };
        let path = at.child_path(key);
        let items = list.as_array().ok_or_else(|| KerasError::config(&path, format!("{key} must be a list")))?;
        for (i, m) in items.iter().enumerate() {
            let m = metric(At { value: m, path: &format!("{path}[{i}]") })?;
            metrics.push(if weighted { m.sample_weighted() } else { m });
        }
    }
    model.compile(optimizer, loss, metrics)?;
    Ok(())
}

/// A Keras loss: an identifier or a serialized loss object.
fn loss(at: At<'_>) -> Result<Loss, KerasError> {
    let name = at.class_name().ok_or_else(|| at.error("loss must be a name or a serialized loss"))?;
    let loss = Loss::from_keras(name).ok_or_else(|| at.error(format!("loss `{name}` is not supported")))?;
    if !at.value.is_object() {
        return Ok(loss);
    }
    let inner = at.inner();
    let cfg = At { value: &inner, path: &at.child_path("config") };
    refuse_unknown(cfg, name, &["from_logits", "label_smoothing", "reduction", "axis"], &["name", "dtype"])?;
    if let Some(r) =
        cfg.get("reduction").and_then(Value::as_str).filter(|r| !matches!(*r, "sum_over_batch_size" | "auto"))
    {
        return Err(cfg.error_at("reduction", format!("reduction `{r}` is not supported (sum_over_batch_size)")));
    }
    if cfg.get("axis").is_some_and(|a| a.as_i64() != Some(-1)) {
        return Err(cfg.error_at("axis", "only the last axis (-1) is supported"));
    }
    let from_logits = match cfg.get("from_logits") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| cfg.error_at("from_logits", "must be true or false"))?,
    };
    Ok(loss.with_from_logits(from_logits))
}
