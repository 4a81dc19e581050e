//! A Keras compile config (optimizer, loss, metrics) applied to a kiln model.

use kiln_trainer::{Loss, Reduction, Sequential};
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
    // Keras compiles without a loss ("Ok to have no loss for an output"); such a model
    // predicts but cannot train, and kiln's compile needs one: it stays uncompiled.
    let Some(loss_v) = at.get("loss") else { return Ok(()) };
    let loss_path = at.child_path("loss");
    let loss = loss(At { value: one_output(loss_v, &loss_path, "loss")?, path: &loss_path })?;
    let mut metrics = Vec::new();
    // `metrics` ignore sample and class weights; `weighted_metrics` use them (Keras 3).
    for (key, weighted) in [("metrics", false), ("weighted_metrics", true)] {
        let Some(list) = at.get(key) else { continue };
        let path = at.child_path(key);
        // A single output's entry of a per-output list (`[["accuracy", "mae"]]`) or dict.
        let list = match one_output(list, &path, key)? {
            Value::Array(items) if items.len() == 1 && items[0].is_array() => &items[0],
            other => other,
        };
        let single = std::slice::from_ref(list);
        let items = match list {
            Value::Array(items) => items.as_slice(),
            Value::String(_) => single,
            _ if list.get("class_name").is_some() => single,
            _ => return Err(KerasError::config(&path, format!("{key} must be a list of metrics"))),
        };
        for (i, m) in items.iter().enumerate() {
            let m = metric(At { value: m, path: &format!("{path}[{i}]") })?;
            metrics.push(if weighted { m.sample_weighted() } else { m });
        }
    }
    model.compile(optimizer, loss, metrics)?;
    Ok(())
}

/// The one output's entry of a per-output compile argument: `{"dense_1": x}` (a dict by
/// output name, not a serialized object) or `[x]` for a loss; anything of several outputs
/// is refused (kiln models have one). Other values are returned as they are.
fn one_output<'v>(v: &'v Value, path: &str, key: &str) -> Result<&'v Value, KerasError> {
    let per_output = match v {
        Value::Object(map) if !map.contains_key("class_name") => map.values().collect::<Vec<_>>(),
        Value::Array(items) if key == "loss" => items.iter().collect(),
        _ => return Ok(v),
    };
    match per_output.as_slice() {
        [one] => Ok(one),
        many => Err(KerasError::config(
            path,
            format!("{key} gives {} outputs' entries; kiln models have one output", many.len()),
        )),
    }
}

/// The functions of `keras.losses` kiln computes: a loss saved as a function
/// (`{"class_name": "function", "config": name}`) is one of these, or Keras itself could
/// not load it (it looks the name up in its modules).
const LOSS_FUNCTIONS: &[&str] = &[
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
];

/// A Keras loss: an identifier or a serialized loss object, with the options kiln
/// computes (`from_logits`, `reduction`, `label_smoothing`, `ignore_class`, `axis`);
/// any other option that is set is refused by name.
fn loss(at: At<'_>) -> Result<Loss, KerasError> {
    let name = at.class_name().ok_or_else(|| at.error("loss must be a name or a serialized loss"))?;
    if let Some(f) = at.function_name().filter(|f| !LOSS_FUNCTIONS.contains(f)) {
        return Err(at.error(format!(
            "loss function `{f}` is not one of keras.losses' that kiln computes ({}); a function of your own \
             cannot be read from its name",
            LOSS_FUNCTIONS.join(", ")
        )));
    }
    let mut loss = Loss::from_keras(name).ok_or_else(|| at.error(format!("loss `{name}` is not supported")))?;
    if !at.value.is_object() || at.function_name().is_some() {
        return Ok(loss);
    }
    let inner = at.inner();
    let cfg = At { value: &inner, path: &at.child_path("config") };
    refuse_unknown(
        cfg,
        name,
        &["from_logits", "label_smoothing", "reduction", "axis", "ignore_class"],
        &["name", "dtype"],
    )?;
    // A JSON null is Keras' `reduction=None` (no reduction), not an absent key.
    match cfg.value.get("reduction") {
        None => {}
        // Keras 2's `auto` meant sum_over_batch_size (Keras 3 refuses it).
        Some(Value::String(r)) if r == "auto" => {}
        Some(Value::Null) => loss = loss.with_reduction(Reduction::None),
        Some(Value::String(r)) => {
            loss = loss.with_reduction(Reduction::from_keras(Some(r)).map_err(|e| cfg.error_at("reduction", e))?);
        }
        Some(_) => return Err(cfg.error_at("reduction", "must be a string or null")),
    }
    if let Some(v) = cfg.get("from_logits") {
        let from_logits = v.as_bool().ok_or_else(|| cfg.error_at("from_logits", "must be true or false"))?;
        if from_logits && !loss.has_from_logits() {
            return Err(cfg.error_at("from_logits", format!("{name} has no from_logits option")));
        }
        loss = loss.with_from_logits(from_logits);
    }
    if let Some(ls) = cfg.number("label_smoothing")?.filter(|ls| *ls != 0.0) {
        loss = loss.with_label_smoothing(ls as f32).map_err(|e| cfg.error_at("label_smoothing", e.to_string()))?;
    }
    if let Some(v) = cfg.get("ignore_class") {
        let class = v
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .ok_or_else(|| cfg.error_at("ignore_class", "must be an integer class id or null"))?;
        loss = loss.with_ignore_class(Some(class)).map_err(|e| cfg.error_at("ignore_class", e.to_string()))?;
    }
    if let Some(v) = cfg.get("axis") {
        let axis = v.as_i64().ok_or_else(|| cfg.error_at("axis", "must be an integer"))?;
        loss.check_axis(axis).map_err(|e| cfg.error_at("axis", e.to_string()))?;
    }
    Ok(loss)
}
