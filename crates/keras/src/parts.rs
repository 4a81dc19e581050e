//! Keras' activations, initializers and regularizers as kiln's.

use kiln_layers::{Activation, Distribution, FanMode, Initializer};
use kiln_regularizers::{L1, L1L2, L2, Regularizer};
use serde::Deserialize;
use serde_json::Value;

use crate::KerasError;
use crate::json::{At, refuse_unknown};

/// A Keras activation: an identifier or a serialized function object.
pub(crate) fn activation(at: At<'_>) -> Result<Activation, KerasError> {
    let name = match at.value {
        Value::Null => "linear".to_string(),
        Value::String(s) => s.clone(),
        _ => {
            let inner = at.inner();
            inner.as_str().or_else(|| inner.get("name").and_then(Value::as_str)).unwrap_or("?").to_string()
        }
    };
    Activation::from_keras(&name)
        .ok_or_else(|| at.error(format!("activation `{name}` is not supported ({})", Activation::KERAS_NAMES)))
}

/// Seed-only config keys every random initializer has; kiln seeds from the model's seed.
/// (`input_axes`/`output_axes`, which change Keras' fans, are read only when null.)
const INIT_IGNORED: &[&str] = &["seed"];

#[derive(Deserialize)]
struct Uniform {
    #[serde(default = "minus_005")]
    minval: f32,
    #[serde(default = "plus_005")]
    maxval: f32,
}

#[derive(Deserialize)]
struct Normal {
    #[serde(default)]
    mean: f32,
    #[serde(default = "plus_005")]
    stddev: f32,
}

#[derive(Deserialize)]
struct Constant {
    #[serde(default)]
    value: f32,
}

#[derive(Deserialize)]
struct VarianceScaling {
    #[serde(default = "one")]
    scale: f64,
    #[serde(default = "fan_in")]
    mode: String,
    #[serde(default = "truncated")]
    distribution: String,
}

fn minus_005() -> f32 {
    -0.05
}
fn plus_005() -> f32 {
    0.05
}
fn one() -> f64 {
    1.0
}
fn fan_in() -> String {
    "fan_in".into()
}
fn truncated() -> String {
    "truncated_normal".into()
}

/// A Keras initializer (identifier or serialized object), checked.
pub(crate) fn initializer(at: At<'_>) -> Result<Initializer, KerasError> {
    let class = at.class_name().ok_or_else(|| at.error("initializer without class_name"))?;
    let inner = at.inner();
    let cfg = At { value: &inner, path: &at.child_path("config") };
    let init = match class {
        "GlorotUniform" | "glorot_uniform" => Initializer::GlorotUniform,
        "GlorotNormal" | "glorot_normal" => Initializer::GlorotNormal,
        "HeUniform" | "he_uniform" => Initializer::HeUniform,
        "HeNormal" | "he_normal" => Initializer::HeNormal,
        "LecunUniform" | "lecun_uniform" => Initializer::LecunUniform,
        "LecunNormal" | "lecun_normal" => Initializer::LecunNormal,
        "Zeros" | "zeros" => Initializer::Zeros,
        "Ones" | "ones" => Initializer::Ones,
        "Constant" | "constant" => {
            refuse_unknown(cfg, "Constant", &["value"], &[])?;
            Initializer::Constant { value: cfg.typed::<Constant>()?.value }
        }
        "RandomUniform" | "random_uniform" => {
            refuse_unknown(cfg, "RandomUniform", &["minval", "maxval"], INIT_IGNORED)?;
            let u: Uniform = cfg.typed()?;
            Initializer::RandomUniform { minval: u.minval, maxval: u.maxval }
        }
        "RandomNormal" | "random_normal" => {
            refuse_unknown(cfg, "RandomNormal", &["mean", "stddev"], INIT_IGNORED)?;
            let n: Normal = cfg.typed()?;
            Initializer::RandomNormal { mean: n.mean, stddev: n.stddev }
        }
        "TruncatedNormal" | "truncated_normal" => {
            refuse_unknown(cfg, "TruncatedNormal", &["mean", "stddev"], INIT_IGNORED)?;
            let n: Normal = cfg.typed()?;
            Initializer::TruncatedNormal { mean: n.mean, stddev: n.stddev }
        }
        "Orthogonal" | "orthogonal" => {
            refuse_unknown(cfg, "Orthogonal", &["gain"], INIT_IGNORED)?;
            let gain = cfg.get("gain").map_or(Some(1.0), serde_json::Value::as_f64);
            let gain = gain.ok_or_else(|| cfg.error_at("gain", "must be a number"))?;
            Initializer::Orthogonal { gain: gain as f32 }
        }
        "VarianceScaling" | "variance_scaling" => {
            refuse_unknown(cfg, "VarianceScaling", &["scale", "mode", "distribution"], INIT_IGNORED)?;
            let v: VarianceScaling = cfg.typed()?;
            // Keras lower-cases the distribution (not the mode) and reads `normal` as
            // `truncated_normal`.
            let (mode, distribution) = (v.mode.clone(), v.distribution.to_lowercase());
            let distribution = if distribution == "normal" { "truncated_normal".to_string() } else { distribution };
            match (v.scale, mode.as_str(), distribution.as_str()) {
                (1.0, "fan_avg", "uniform") => Initializer::GlorotUniform,
                (1.0, "fan_avg", "truncated_normal") => Initializer::GlorotNormal,
                (2.0, "fan_in", "uniform") => Initializer::HeUniform,
                (2.0, "fan_in", "truncated_normal") => Initializer::HeNormal,
                (1.0, "fan_in", "uniform") => Initializer::LecunUniform,
                (1.0, "fan_in", "truncated_normal") => Initializer::LecunNormal,
                (scale, m, d) => Initializer::VarianceScaling {
                    scale: scale as f32,
                    mode: match m {
                        "fan_in" => FanMode::FanIn,
                        "fan_out" => FanMode::FanOut,
                        "fan_avg" => FanMode::FanAvg,
                        _ => return Err(cfg.error_at("mode", format!("must be fan_in, fan_out or fan_avg, got {m}"))),
                    },
                    distribution: match d {
                        "truncated_normal" => Distribution::TruncatedNormal,
                        "untruncated_normal" => Distribution::UntruncatedNormal,
                        "uniform" => Distribution::Uniform,
                        _ => {
                            return Err(cfg.error_at(
                                "distribution",
                                format!("must be uniform, truncated_normal or untruncated_normal, got {d}"),
                            ));
                        }
                    },
                },
            }
        }
        other => return Err(at.error(format!("initializer `{other}` is not supported"))),
    };
    // The classes without arguments take none (their own arms checked the others'); a
    // VarianceScaling that is a Glorot, He or Lecun one had its arguments read above.
    let has_arguments = matches!(class, "VarianceScaling" | "variance_scaling");
    if !has_arguments
        && !matches!(
            init,
            Initializer::Constant { .. }
                | Initializer::RandomUniform { .. }
                | Initializer::RandomNormal { .. }
                | Initializer::TruncatedNormal { .. }
                | Initializer::Orthogonal { .. }
        )
    {
        refuse_unknown(cfg, class, &[], INIT_IGNORED)?;
    }
    init.validate().map_err(|e| cfg.error(e))?;
    Ok(init)
}

#[derive(Deserialize)]
struct Factors {
    l1: Option<f32>,
    l2: Option<f32>,
}

/// Builds a kiln regularizer from a serialized Keras one (`{"class_name": "L2", "config":
/// {"l2": 0.002}}`) or a shorthand (`"l1l2"`), as Keras' `regularizers.get` does; `null`
/// gives `None`. Factors are checked as Keras' `validate_float_arg` does; another class or
/// argument is an error naming it.
///
/// ```
/// let reg = kiln_keras::regularizer_from_keras(&serde_json::json!({
///     "class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}
/// })).unwrap().unwrap();
/// assert_eq!(reg.penalty(&[1.0, -2.0]).unwrap(), 0.1 * 3.0 + 0.2 * 5.0);
/// assert!(kiln_keras::regularizer_from_keras(&serde_json::json!("typo")).is_err());
/// ```
pub fn regularizer_from_keras(value: &Value) -> Result<Option<Box<dyn Regularizer>>, KerasError> {
    regularizer(At::root(value))
}

/// A Keras regularizer (`{"class_name": "L2", "config": {"l2": 0.002}}` or `"l2"`), or
/// `None` for null; factors are checked as Keras' `validate_float_arg` does.
pub(crate) fn regularizer(at: At<'_>) -> Result<Option<Box<dyn Regularizer>>, KerasError> {
    if at.value.is_null() {
        return Ok(None);
    }
    let class = at.class_name().ok_or_else(|| at.error("regularizer without class_name"))?;
    // `{"class_name": "L2"}` without a config is Keras' `L2()`, its default factor.
    let inner = if at.value.get("class_name").is_some() && at.value.get("config").is_none() {
        Value::Object(Default::default())
    } else {
        at.inner()
    };
    let cfg = At { value: &inner, path: &at.child_path("config") };
    let f: Factors = if inner.is_object() { cfg.typed()? } else { Factors { l1: None, l2: None } };
    let reg: Box<dyn Regularizer> = match class {
        "L1" | "l1" => {
            refuse_unknown(cfg, "L1", &["l1"], &[])?;
            Box::new(L1::new(f.l1.unwrap_or(0.01)))
        }
        "L2" | "l2" => {
            refuse_unknown(cfg, "L2", &["l2"], &[])?;
            Box::new(L2::new(f.l2.unwrap_or(0.01)))
        }
        // Keras knows `l1l2`, not `l1_l2` ("Could not interpret regularizer identifier").
        "L1L2" | "l1l2" => {
            refuse_unknown(cfg, "L1L2", &["l1", "l2"], &[])?;
            Box::new(L1L2::new(f.l1.unwrap_or(0.0), f.l2.unwrap_or(0.0)))
        }
        other => return Err(at.error(format!("regularizer `{other}` is not supported (L1, L2, L1L2)"))),
    };
    reg.validate().map_err(|e| cfg.error(e.message))?;
    Ok(Some(reg))
}
