//! Keras configuration → kiln objects.

use kiln_layers::{Activation, Dense, Dropout, Initializer};
use kiln_optimizers::{Adam, Optimizer, RMSprop, Sgd};
use kiln_regularizers::{L1, L1L2, L2, Regularizer};
use serde_json::Value;

use crate::{Loss, Metric, Sequential, TrainError};

fn cfg_err(msg: impl Into<String>) -> TrainError {
    TrainError::Config(msg.into())
}

/// The `config` of a Keras serialized object (`{"class_name", "config"}`), or the value
/// itself when it is already a bare config.
fn inner(v: &Value) -> &Value {
    v.get("config").filter(|_| v.get("class_name").is_some()).unwrap_or(v)
}

fn f32_field(cfg: &Value, key: &str, default: f32) -> Result<f32, TrainError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_f64().map(|x| x as f32).ok_or_else(|| cfg_err(format!("`{key}` must be a number"))),
    }
}

/// A Keras `Sequential` model config (`model.get_config()`, or the whole serialized
/// object) as an unbuilt-or-built kiln model: `InputLayer`, `Dense` and `Dropout` layers
/// with their activations, initializers and regularizers. The model is built when the
/// config states the input shape.
pub fn model_from_keras(config: &Value) -> Result<Sequential, TrainError> {
    let config = inner(config);
    let layers = config.get("layers").and_then(Value::as_array).ok_or_else(|| cfg_err("no `layers` list"))?;
    let name = config.get("name").and_then(Value::as_str).unwrap_or("sequential");
    let mut model = Sequential::new().name(name);
    let mut input_width = width_of(config.get("build_input_shape"));
    for layer in layers {
        let class =
            layer.get("class_name").and_then(Value::as_str).ok_or_else(|| cfg_err("layer without class_name"))?;
        let cfg = layer.get("config").ok_or_else(|| cfg_err(format!("{class} without config")))?;
        match class {
            "InputLayer" => {
                input_width = input_width.or(width_of(cfg.get("batch_shape").or(cfg.get("batch_input_shape"))));
            }
            "Dense" => model.push(Box::new(dense_from_keras(cfg)?)),
            "Dropout" => {
                let mut d = Dropout::new(f32_field(cfg, "rate", 0.0)?);
                d.seed = cfg.get("seed").and_then(Value::as_u64);
                d.name = str_field(cfg, "name");
                model.push(Box::new(d));
            }
            other => return Err(cfg_err(format!("layer class `{other}` is not supported (Dense, Dropout)"))),
        }
        if input_width.is_none() {
            input_width = width_of(layer.get("build_config").and_then(|b| b.get("input_shape")));
        }
    }
    if let Some(w) = input_width {
        model.build(w)?;
    }
    Ok(model)
}

fn str_field(cfg: &Value, key: &str) -> String {
    cfg.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The feature width of a Keras shape `[null, d]`.
fn width_of(shape: Option<&Value>) -> Option<usize> {
    let s = shape?.as_array()?;
    if s.len() != 2 {
        return None;
    }
    s[1].as_u64().map(|d| d as usize)
}

fn dense_from_keras(cfg: &Value) -> Result<Dense, TrainError> {
    let units = cfg.get("units").and_then(Value::as_u64).ok_or_else(|| cfg_err("Dense without `units`"))?;
    let mut d = Dense::new(units as usize);
    d.name = str_field(cfg, "name");
    let act = match cfg.get("activation") {
        None | Some(Value::Null) => "linear".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(obj) => inner(obj).get("name").and_then(Value::as_str).unwrap_or("?").to_string(),
    };
    d.activation =
        Activation::from_keras(&act).ok_or_else(|| cfg_err(format!("activation `{act}` is not supported")))?;
    d.use_bias = cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true);
    if let Some(init) = cfg.get("kernel_initializer").filter(|v| !v.is_null()) {
        d.kernel_initializer = initializer_from_keras(init)?;
    }
    if let Some(init) = cfg.get("bias_initializer").filter(|v| !v.is_null()) {
        d.bias_initializer = initializer_from_keras(init)?;
    }
    d.kernel_regularizer = regularizer_from_keras(cfg.get("kernel_regularizer"))?;
    d.bias_regularizer = regularizer_from_keras(cfg.get("bias_regularizer"))?;
    d.activity_regularizer = regularizer_from_keras(cfg.get("activity_regularizer"))?;
    for unsupported in ["kernel_constraint", "bias_constraint"] {
        if cfg.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(cfg_err(format!("Dense `{unsupported}` is not supported")));
        }
    }
    Ok(d)
}

fn initializer_from_keras(v: &Value) -> Result<Initializer, TrainError> {
    let class = v.get("class_name").and_then(Value::as_str).or(v.as_str()).unwrap_or("?");
    let cfg = inner(v);
    Ok(match class {
        "GlorotUniform" | "glorot_uniform" => Initializer::GlorotUniform,
        "HeUniform" | "he_uniform" => Initializer::HeUniform,
        "Zeros" | "zeros" => Initializer::Zeros,
        "Ones" | "ones" => Initializer::Ones,
        "Constant" => Initializer::Constant { value: f32_field(cfg, "value", 0.0)? },
        "RandomUniform" => Initializer::RandomUniform {
            minval: f32_field(cfg, "minval", -0.05)?,
            maxval: f32_field(cfg, "maxval", 0.05)?,
        },
        other => return Err(cfg_err(format!("initializer `{other}` is not supported"))),
    })
}

/// A Keras regularizer object (`{"class_name": "L2", "config": {"l2": 0.002}}`), or
/// `None` for null/missing.
pub fn regularizer_from_keras(v: Option<&Value>) -> Result<Option<Box<dyn Regularizer>>, TrainError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
    let class = v.get("class_name").and_then(Value::as_str).or(v.as_str()).unwrap_or("?");
    let cfg = inner(v);
    Ok(Some(match class {
        "L1" | "l1" => Box::new(L1::new(f32_field(cfg, "l1", 0.01)?)),
        "L2" | "l2" => Box::new(L2::new(f32_field(cfg, "l2", 0.01)?)),
        "L1L2" | "l1_l2" => Box::new(L1L2::new(f32_field(cfg, "l1", 0.0)?, f32_field(cfg, "l2", 0.0)?)),
        other => return Err(cfg_err(format!("regularizer `{other}` is not supported (L1, L2, L1L2)"))),
    }))
}

/// A Keras optimizer config, or its shorthand name (`"rmsprop"`). Keras' `get_config()`
/// has no class field, so the class is read from `class_name` when present, else from the
/// name prefix (`rm_sprop…`, `rmsprop…`, `sgd…`, `adam…`). Options kiln does not implement (weight decay,
/// clipping, EMA, loss scaling, gradient accumulation) are refused when set.
pub fn optimizer_from_keras(v: &Value) -> Result<Box<dyn Optimizer>, TrainError> {
    let cfg = inner(v);
    // `"rmsprop"` alone is Keras' shorthand for the optimizer with its defaults.
    let class = v
        .as_str()
        .or_else(|| v.get("class_name").and_then(Value::as_str))
        .or_else(|| cfg.get("name").and_then(Value::as_str))
        .map(str::to_lowercase)
        .ok_or_else(|| cfg_err("optimizer without class_name or name"))?;
    for key in
        ["weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "loss_scale_factor", "gradient_accumulation_steps"]
    {
        if cfg.get(key).is_some_and(|v| !v.is_null()) {
            return Err(cfg_err(format!("optimizer option `{key}` is not supported")));
        }
    }
    if cfg.get("use_ema").and_then(Value::as_bool) == Some(true) {
        return Err(cfg_err("optimizer option `use_ema` is not supported"));
    }
    let lr = |d| f32_field(cfg, "learning_rate", d);
    let opt: Box<dyn Optimizer> = if class.starts_with("rm_sprop") || class.starts_with("rmsprop") {
        Box::new(
            RMSprop::new(lr(0.001)?)
                .rho(f32_field(cfg, "rho", 0.9)?)
                .momentum(f32_field(cfg, "momentum", 0.0)?)
                .epsilon(f32_field(cfg, "epsilon", 1e-7)?)
                .centered(cfg.get("centered").and_then(Value::as_bool).unwrap_or(false)),
        )
    } else if class.starts_with("sgd") {
        Box::new(
            Sgd::new(lr(0.01)?)
                .momentum(f32_field(cfg, "momentum", 0.0)?)
                .nesterov(cfg.get("nesterov").and_then(Value::as_bool).unwrap_or(false)),
        )
    } else if class.starts_with("adam") && !class.starts_with("adamw") && !class.starts_with("adamax") {
        let mut a = Adam::new(lr(0.001)?).amsgrad(cfg.get("amsgrad").and_then(Value::as_bool).unwrap_or(false));
        a.beta_1 = f32_field(cfg, "beta_1", 0.9)?;
        a.beta_2 = f32_field(cfg, "beta_2", 0.999)?;
        a.epsilon = f32_field(cfg, "epsilon", 1e-7)?;
        Box::new(a)
    } else {
        return Err(cfg_err(format!("optimizer `{class}` is not supported (RMSprop, SGD, Adam)")));
    };
    Ok(opt)
}

/// Compiles `model` from a Keras compile object: `{"optimizer": {...}, "loss": "...",
/// "metrics": ["accuracy"]}`.
pub fn compile_from_keras(model: &mut Sequential, compile: &Value) -> Result<(), TrainError> {
    let optimizer =
        optimizer_from_keras(compile.get("optimizer").ok_or_else(|| cfg_err("compile without optimizer"))?)?;
    let loss_v = compile.get("loss").ok_or_else(|| cfg_err("compile without loss"))?;
    let loss_name = loss_v
        .as_str()
        .or_else(|| loss_v.get("class_name").and_then(Value::as_str))
        .ok_or_else(|| cfg_err("loss must be a name or a serialized loss"))?;
    let loss_cfg = inner(loss_v);
    let from_logits = loss_cfg.get("from_logits").and_then(Value::as_bool) == Some(true);
    if loss_cfg.get("label_smoothing").and_then(Value::as_f64).is_some_and(|s| s != 0.0) {
        return Err(cfg_err("label_smoothing is not supported"));
    }
    if loss_cfg.get("ignore_class").is_some_and(|v| !v.is_null()) {
        return Err(cfg_err("ignore_class is not supported"));
    }
    let loss = Loss::from_keras(loss_name).ok_or_else(|| cfg_err(format!("loss `{loss_name}` is not supported")))?;
    let mut metrics = Vec::new();
    for m in compile.get("metrics").and_then(Value::as_array).into_iter().flatten() {
        let metric = match m.as_str() {
            Some(name) => Metric::from_keras(name)?,
            None => {
                // A serialized metric object: its class gives the kind, its name the log key.
                let class =
                    m.get("class_name").and_then(Value::as_str).ok_or_else(|| cfg_err("metrics must be names"))?;
                let metric = Metric::from_keras(class)?;
                match inner(m).get("name").and_then(Value::as_str) {
                    Some(key) => metric.named(key),
                    None => metric,
                }
            }
        };
        metrics.push(metric);
    }
    model.compile_boxed(optimizer, loss, metrics);
    model.set_from_logits(from_logits)
}

/// Reads a Keras model configuration file — the `config.json` of a `.keras` archive
/// (`{"class_name": "Sequential", "config": …, "compile_config": …}`) or
/// `model.to_json()` output — and returns the model, compiled when the file says how.
/// Every error names the file.
pub fn model_from_keras_file(path: &std::path::Path) -> Result<Sequential, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::file(path, e))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| TrainError::file(path, format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(TrainError::file(path, "not a Keras model configuration (expected a JSON object)"));
    }
    let mut model = model_from_keras(&value).map_err(|e| TrainError::file(path, e))?;
    if let Some(compile) = value.get("compile_config").filter(|c| !c.is_null()) {
        compile_from_keras(&mut model, compile).map_err(|e| TrainError::file(path, e))?;
    }
    Ok(model)
}
