//! A Keras optimizer config as a kiln `Optimizer`.

use kiln_optimizers::{Adam, AdamW, LearningRate, LearningRateSchedule, Optimizer, RMSprop, Sgd, UpdateRule};
use serde_json::Value;

use crate::KerasError;
use crate::json::{At, is_off};

/// Options of Keras' `BaseOptimizer` that change the update; kiln refuses them when set.
const UNSUPPORTED: &[&str] = &["use_ema", "loss_scale_factor", "gradient_accumulation_steps"];

/// Options of `BaseOptimizer` kiln reads itself (clipping, decay), or that have no effect
/// here (EMA settings matter only with `use_ema`).
const HANDLED: &[&str] = &[
    "name",
    "learning_rate",
    "ema_momentum",
    "ema_overwrite_frequency",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "weight_decay",
];

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
    } else if class.starts_with("adamw") || class.starts_with("adam_w") {
        // A bare `get_config()` names AdamW `adam_w` (Keras' `auto_name("AdamW")`).
        (Box::new(AdamW(typed::<Adam>(cfg)?)), &["beta_1", "beta_2", "epsilon", "amsgrad"])
    } else if class.starts_with("adam") && !class.starts_with("adamax") {
        (Box::new(typed::<Adam>(cfg)?), &["beta_1", "beta_2", "epsilon", "amsgrad"])
    } else {
        return Err(at.error(format!("optimizer `{class}` is not supported (RMSprop, SGD, Adam, AdamW)")));
    };
    if let Some(map) = inner.as_object() {
        for (k, v) in map {
            // A rule's own key or a harmless one passes; anything else must be off.
            let known = keys.contains(&k.as_str()) || HANDLED.contains(&k.as_str());
            if !known && !is_off(v) {
                let why = if UNSUPPORTED.contains(&k.as_str()) {
                    "is not supported by kiln"
                } else {
                    "is not an option kiln knows"
                };
                return Err(cfg.error_at(
                    k,
                    format!("optimizer option `{}` = {} {why}", kiln_fs::excerpt(k), kiln_fs::excerpt(v)),
                ));
            }
        }
    }
    // Keras' `BaseOptimizer` refuses an integer rate ("Argument `learning_rate` should be
    // float…"), and SGD an integer momentum ("`momentum` must be a float between [0, 1].").
    float_not_int(cfg, "learning_rate", "Argument `learning_rate` should be float")?;
    if class.starts_with("sgd") {
        float_not_int(cfg, "momentum", "`momentum` must be a float between [0, 1]")?;
    }
    let lr = match cfg.get("learning_rate") {
        None => LearningRate::from(rule.default_learning_rate()),
        Some(v) if v.is_number() => LearningRate::from(v.as_f64().unwrap_or(f64::NAN)),
        Some(v) => LearningRate::Schedule(schedule(At { value: v, path: &cfg.child_path("learning_rate") })?),
    };
    let mut opt = Optimizer::from_boxed(rule, lr);
    let number = |key: &str| -> Result<Option<f64>, KerasError> {
        match cfg.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| cfg.error_at(key, format!("must be a number, got {}", kiln_fs::excerpt(v)))),
        }
    };
    let mut clips = Vec::new();
    for key in ["clipnorm", "global_clipnorm", "clipvalue"] {
        if let Some(v) = number(key)? {
            clips.push((key, v));
        }
    }
    match clips.as_slice() {
        [] => {}
        [("clipnorm", v)] => opt = opt.clipnorm(*v),
        [("global_clipnorm", v)] => opt = opt.global_clipnorm(*v),
        [(_, v)] => opt = opt.clipvalue(*v),
        _ => return Err(cfg.error("only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set")),
    }
    // Keras writes `weight_decay: null` when off; AdamW always writes its value, and
    // refuses null (keras/src/optimizers/adamw.py), as `validate` then does here: the raw
    // value, since `At::get` reads null as absent (AdamW's default 0.004).
    if inner.get("weight_decay").is_some() {
        opt = opt.weight_decay(number("weight_decay")?);
    }
    opt.validate().map_err(|e| cfg.error(e))?;
    Ok(opt)
}

/// A serialized Keras schedule (`{"module": "keras.optimizers.schedules", "class_name":
/// "ExponentialDecay", "config": {…}}`) as kiln's; unknown arguments are refused.
fn schedule(at: At<'_>) -> Result<LearningRateSchedule, KerasError> {
    let class = at.class_name().ok_or_else(|| at.error("learning_rate must be a number or a serialized schedule"))?;
    if let Some(module) = at.get("module").and_then(Value::as_str)
        && !module.starts_with("keras.optimizers.schedules")
    {
        return Err(at.error_at("module", format!("`{module}` is not Keras' schedules module")));
    }
    let mut cfg = at.inner();
    let path = at.child_path("config");
    // Keras computes a schedule in the dtype of its `initial_learning_rate`: an integer
    // there makes the decay integer arithmetic, which kiln (in float32) refuses. Piecewise
    // constant values all integers give the same rates as floats; mixed, Keras fails.
    let why = "an integer here makes Keras compute the schedule in integer arithmetic; kiln computes in float32 \
               (write it as a float, e.g. 1.0)";
    float_not_int(At { value: &cfg, path: &path }, "initial_learning_rate", why)?;
    if let Some(values) = cfg.get("values").and_then(Value::as_array) {
        let int = |v: &Value| v.is_number() && !v.is_f64();
        if values.iter().any(int) && !values.iter().all(int) {
            let i = values.iter().position(int).unwrap_or(0);
            return Err(KerasError::config(
                format!("{path}/values/{i}"),
                "integer and float values mixed: Keras' PiecewiseConstantDecay fails on them (write every value \
                 as a float)",
            ));
        }
    }
    let map = cfg.as_object_mut().ok_or_else(|| at.error_at("config", "must be an object"))?;
    map.remove("name");
    map.insert("type".into(), Value::String(class.to_string()));
    let s: LearningRateSchedule = At { value: &cfg, path: &path }.typed().map_err(|e| match e {
        KerasError::Config { at, message } if message.contains("unknown variant") => KerasError::Config {
            at,
            message: format!(
                "schedule `{class}` is not supported (ExponentialDecay, PiecewiseConstantDecay, InverseTimeDecay, \
                 PolynomialDecay, CosineDecay)"
            ),
        },
        other => other,
    })?;
    s.validate().map_err(|e| KerasError::config(&path, e))?;
    Ok(s)
}

/// Refuses `key` when it is a JSON integer, with Keras' words `why`.
fn float_not_int(cfg: At<'_>, key: &str, why: &str) -> Result<(), KerasError> {
    match cfg.get(key) {
        Some(v) if v.is_number() && !v.is_f64() => Err(cfg.error_at(key, format!("{why}; received {key}={v}"))),
        _ => Ok(()),
    }
}

/// Keras' config as kiln's rule (same names, same defaults); a shorthand string has none.
fn typed<R: serde::de::DeserializeOwned + Default>(cfg: At<'_>) -> Result<R, KerasError> {
    if cfg.value.is_object() { cfg.typed() } else { Ok(R::default()) }
}
