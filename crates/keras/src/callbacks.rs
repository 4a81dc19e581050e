//! Keras callbacks (`{"class_name": "ReduceLROnPlateau", "config": {…}}`) as kiln callbacks.

use kiln_trainer::callbacks::{Callback, EarlyStopping, Mode, ReduceLrOnPlateau, TerminateOnNaN};
use serde_json::Value;

use crate::KerasError;
use crate::json::At;

/// Builds a kiln callback from a serialized Keras one: its class name and constructor
/// arguments. Known: `ReduceLROnPlateau`, `EarlyStopping`, `TerminateOnNaN`; any other
/// class, or an argument kiln does not implement, is an error naming it.
///
/// ```
/// let cb = kiln_keras::callback_from_keras(&serde_json::json!({
///     "class_name": "ReduceLROnPlateau",
///     "config": {"monitor": "loss", "factor": 0.5, "patience": 2}
/// })).unwrap();
/// # let _ = cb;
/// ```
pub fn callback_from_keras(value: &Value) -> Result<Box<dyn Callback>, KerasError> {
    callback_at(At::root(value))
}

pub(crate) fn callback_at(at: At<'_>) -> Result<Box<dyn Callback>, KerasError> {
    let class =
        at.value.get("class_name").and_then(Value::as_str).ok_or_else(|| at.error("a callback needs a class_name"))?;
    let inner = at.inner();
    let empty = Value::Object(Default::default());
    let cfg =
        At { value: if inner.get("class_name").is_some() { &empty } else { &inner }, path: &at.child_path("config") };
    let known: &[&str] = match class {
        "ReduceLROnPlateau" => &["monitor", "factor", "patience", "verbose", "mode", "min_delta", "cooldown", "min_lr"],
        "EarlyStopping" => &[
            "monitor",
            "min_delta",
            "patience",
            "verbose",
            "mode",
            "baseline",
            "restore_best_weights",
            "start_from_epoch",
        ],
        "TerminateOnNaN" => &[],
        other => {
            return Err(at.error(format!(
                "callback `{other}` is not supported (ReduceLROnPlateau, EarlyStopping, TerminateOnNaN)"
            )));
        }
    };
    // Every argument is data here: one kiln does not know is refused even when "off".
    if let Some(map) = cfg.value.as_object()
        && let Some(k) = map.keys().find(|k| !known.contains(&k.as_str()))
    {
        return Err(cfg.error_at(k, format!("{class} argument `{k}` is not supported by kiln")));
    }
    Ok(match class {
        "ReduceLROnPlateau" => {
            let mut cb = ReduceLrOnPlateau::default();
            if let Some(m) = cfg.string("monitor")? {
                cb.monitor = m;
            }
            cb.factor = cfg.number("factor")?.unwrap_or(cb.factor);
            cb.patience = cfg.count("patience")?.unwrap_or(cb.patience);
            cb.mode = mode(cfg, class);
            cb.min_delta = cfg.number("min_delta")?.unwrap_or(cb.min_delta);
            cb.cooldown = cfg.count("cooldown")?.unwrap_or(cb.cooldown);
            cb.min_lr = cfg.number("min_lr")?.unwrap_or(cb.min_lr);
            cb.validate().map_err(|e| cfg.error(e))?;
            Box::new(cb)
        }
        "EarlyStopping" => {
            let mut cb = EarlyStopping::default();
            if let Some(m) = cfg.string("monitor")? {
                cb.monitor = m;
            }
            cb.min_delta = cfg.number("min_delta")?.unwrap_or(0.0).abs();
            cb.patience = cfg.count("patience")?.unwrap_or(0);
            cb.mode = mode(cfg, class);
            cb.baseline = cfg.number("baseline")?;
            cb.restore_best_weights = cfg.flag("restore_best_weights", false)?;
            cb.start_from_epoch = cfg.count("start_from_epoch")?.unwrap_or(0);
            Box::new(cb)
        }
        _ => Box::new(TerminateOnNaN::default()),
    })
}

/// The `mode`; any other value falls back to auto with Keras' warning
/// (`monitor_callback.py`: "… mode '…' is unknown, fallback to auto mode.").
fn mode(cfg: At<'_>, class: &str) -> Mode {
    match cfg.get("mode") {
        None => Mode::Auto,
        Some(v) => match v.as_str() {
            Some("auto") => Mode::Auto,
            Some("min") => Mode::Min,
            Some("max") => Mode::Max,
            other => {
                let shown = other.map_or_else(|| kiln_fs::excerpt(v), str::to_string);
                let warning = format!("{class} mode '{shown}' is unknown, fallback to auto mode.");
                eprintln!("warning: {}: {warning}", cfg.path);
                Mode::Auto
            }
        },
    }
}
