//! A Keras optimizer config as a kiln `Optimizer`.

use kiln_optimizers::{Adam, Optimizer, RMSprop, Sgd, UpdateRule};
use serde_json::Value;

use crate::KerasError;
use crate::json::{At, is_off};

/// Options of Keras' `BaseOptimizer` that change the update; kiln refuses them when set.
const UNSUPPORTED: &[&str] = &[
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "use_ema",
    "loss_scale_factor",
    "gradient_accumulation_steps",
];

/// Options of `BaseOptimizer` with no effect here (EMA settings matter only with `use_ema`).
const IGNORED: &[&str] = &["name", "learning_rate", "ema_momentum", "ema_overwrite_frequency"];

/// A Keras optimizer: a serialized object (`{"class_name": "RMSprop", "config": …}`), a
/// bare `get_config()` (whose class is read from its `name`, `rm_sprop_1`), or a shorthand
/// (`"rmsprop"`). The rule's hyperparameters deserialize straight into kiln's rule types,
/// which use Keras' names and defaults; options kiln does not implement are refused.
pub fn optimizer_from_keras(v: &Value) -> Result<Optimizer, KerasError> {
    optimizer(At::root(v))
}

pub(crate) fn optimizer(at: At<'_>) -> Result<Optimizer, KerasError> {
    let inner = at.inner();
    let cfg_path = if at.value.get("class_name").is_some() { at.child_path("config") } else { at.path.to_string() };
    let cfg = At { value: &inner, path: &cfg_path };
    let class = at
        .value
        .as_str()
        .or_else(|| at.value.get("class_name").and_then(Value::as_str))
        .or_else(|| inner.get("name").and_then(Value::as_str))
        .map(str::to_lowercase)
        .ok_or_else(|| at.error("optimizer without class_name or name"))?;
    let (rule, keys): (Box<dyn UpdateRule>, &[&str]) = if class.starts_with("rm_sprop") || class.starts_with("rmsprop")
    {
        (Box::new(typed::<RMSprop>(cfg)?), &["rho", "momentum", "epsilon", "centered"])
    } else if class.starts_with("sgd") {
        (Box::new(typed::<Sgd>(cfg)?), &["momentum", "nesterov"])
    } else if class.starts_with("adam") && !class.starts_with("adamw") && !class.starts_with("adamax") {
        (Box::new(typed::<Adam>(cfg)?), &["beta_1", "beta_2", "epsilon", "amsgrad"])
    } else {
        return Err(at.error(format!("optimizer `{class}` is not supported (RMSprop, SGD, Adam)")));
    };
    if let Some(map) = inner.as_object() {
        for (k, v) in map {
            // A rule's own key or a harmless one passes; anything else must be off.
            let known = keys.contains(&k.as_str()) || IGNORED.contains(&k.as_str());
            if !known && !is_off(v) {
                let why = if UNSUPPORTED.contains(&k.as_str()) {
                    "is not supported by kiln"
                } else {
                    "is not an option kiln knows"
                };
                return Err(cfg.error_at(k, format!("optimizer option `{k}` = {v} {why}")));
            }
        }
    }
    let lr = match cfg.get("learning_rate") {
        None => rule.default_learning_rate(),
        Some(v) => v.as_f64().ok_or_else(|| {
            cfg.error_at(
                "learning_rate",
                format!("must be a number (learning-rate schedules are not supported yet), got {v}"),
            )
        })?,
    };
    let opt = Optimizer::from_boxed(rule, lr);
    opt.validate().map_err(|e| cfg.error(e))?;
    Ok(opt)
}

/// Keras' config as kiln's rule (same names, same defaults); a shorthand string has none.
fn typed<R: serde::de::DeserializeOwned + Default>(cfg: At<'_>) -> Result<R, KerasError> {
    if cfg.value.is_object() { cfg.typed() } else { Ok(R::default()) }
}
