//! Keras' `BatchNormalization` and `LayerNormalization` configs as kiln layers.

use kiln_layers::{BatchNormalization, Initializer, Layer, LayerNormalization, Normalization};
use serde_json::Value;

use crate::conv_layers::name_of;
use crate::json::{At, refuse_unknown};
use crate::{KerasError, parts};

/// Keys of a layer's config that carry no semantics kiln must reproduce.
const IGNORED: &[&str] = &["name", "trainable", "dtype", "shared_object_id"];

/// `axis`: one integer, or a list of one (LayerNormalization writes `[-1]`); more axes
/// are refused.
fn axis(cfg: At<'_>) -> Result<i64, KerasError> {
    match cfg.get("axis") {
        None => Ok(-1),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_i64() => Ok(items[0].as_i64().unwrap_or(-1)),
        Some(v) if v.is_i64() => Ok(v.as_i64().unwrap_or(-1)),
        Some(v) => Err(cfg
            .error_at("axis", format!("{} is not supported: kiln normalizes one axis, the last", kiln_fs::excerpt(v)))),
    }
}

fn number(cfg: At<'_>, key: &str, default: f64) -> Result<f64, KerasError> {
    cfg.get(key).map_or(Ok(default), |v| v.as_f64().ok_or_else(|| cfg.error_at(key, "must be a number")))
}

fn init(cfg: At<'_>, key: &str, default: Initializer) -> Result<Initializer, KerasError> {
    match cfg.get(key) {
        Some(v) => parts::initializer(At { value: v, path: &cfg.child_path(key) }),
        None => Ok(default),
    }
}

fn regularizer(cfg: At<'_>, key: &str) -> Result<Option<Box<dyn kiln_regularizers::Regularizer>>, KerasError> {
    parts::regularizer(At { value: cfg.get(key).unwrap_or(&Value::Null), path: &cfg.child_path(key) })
}

/// `BatchNormalization` (renormalization, synchronized statistics and constraints refused).
pub(crate) fn batch_normalization(cfg: At<'_>) -> Result<Box<dyn Layer>, KerasError> {
    const KNOWN: &[&str] = &[
        "axis",
        "momentum",
        "epsilon",
        "center",
        "scale",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
        "beta_regularizer",
        "gamma_regularizer",
        // Read only with `renorm`, which is refused when on.
        "renorm_momentum",
    ];
    refuse_unknown(cfg, "BatchNormalization", KNOWN, IGNORED)?;
    let mut bn = BatchNormalization::new().name(name_of(cfg));
    bn.axis = axis(cfg)?;
    bn.momentum = number(cfg, "momentum", 0.99)?;
    bn.epsilon = number(cfg, "epsilon", 1e-3)? as f32;
    bn.center = cfg.flag("center", true)?;
    bn.scale = cfg.flag("scale", true)?;
    bn.gamma_initializer = init(cfg, "gamma_initializer", Initializer::Ones)?;
    bn.beta_initializer = init(cfg, "beta_initializer", Initializer::Zeros)?;
    bn.moving_mean_initializer = init(cfg, "moving_mean_initializer", Initializer::Zeros)?;
    bn.moving_variance_initializer = init(cfg, "moving_variance_initializer", Initializer::Ones)?;
    bn.gamma_regularizer = regularizer(cfg, "gamma_regularizer")?;
    bn.beta_regularizer = regularizer(cfg, "beta_regularizer")?;
    Ok(Box::new(bn))
}

/// `LayerNormalization` over the last axis (`rms_scaling` and constraints refused).
pub(crate) fn layer_normalization(cfg: At<'_>) -> Result<Box<dyn Layer>, KerasError> {
    const KNOWN: &[&str] = &[
        "axis",
        "epsilon",
        "center",
        "scale",
        "beta_initializer",
        "gamma_initializer",
        "beta_regularizer",
        "gamma_regularizer",
    ];
    refuse_unknown(cfg, "LayerNormalization", KNOWN, IGNORED)?;
    let mut ln = LayerNormalization::new().name(name_of(cfg));
    ln.axis = axis(cfg)?;
    ln.epsilon = number(cfg, "epsilon", 1e-3)? as f32;
    ln.center = cfg.flag("center", true)?;
    ln.scale = cfg.flag("scale", true)?;
    ln.gamma_initializer = init(cfg, "gamma_initializer", Initializer::Ones)?;
    ln.beta_initializer = init(cfg, "beta_initializer", Initializer::Zeros)?;
    ln.gamma_regularizer = regularizer(cfg, "gamma_regularizer")?;
    ln.beta_regularizer = regularizer(cfg, "beta_regularizer")?;
    Ok(Box::new(ln))
}

/// `Normalization` (`keras/src/layers/preprocessing/normalization.py`): `axis` `[-1]` (or
/// the last axis, or `-1`) or `[]`/`null` (every value at once); `mean` and `variance`
/// given as constants (a number or a list of one per feature), or `null` when adapted (the
/// weights then hold them).
pub(crate) fn keras_normalization(cfg: At<'_>) -> Result<Box<dyn Layer>, KerasError> {
    refuse_unknown(cfg, "Normalization", &["axis", "mean", "variance", "invert"], IGNORED)?;
    let axis = match cfg.get("axis") {
        None => Some(-1),
        Some(Value::Null) => None,
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_i64() => items[0].as_i64(),
        Some(v) if v.is_i64() => v.as_i64(),
        Some(v) => {
            return Err(cfg.error_at(
                "axis",
                format!("{} is not supported: kiln standardizes the last axis or every value", kiln_fs::excerpt(v)),
            ));
        }
    };
    let stats = |key: &str| -> Result<Option<Vec<f32>>, KerasError> {
        match cfg.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) if v.is_number() => Ok(Some(vec![v.as_f64().unwrap_or(f64::NAN) as f32])),
            Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
                Ok(Some(items.iter().map(|v| v.as_f64().unwrap_or(f64::NAN) as f32).collect()))
            }
            Some(v) => Err(cfg.error_at(
                key,
                format!("{} is not supported: give a number or one number per feature", kiln_fs::excerpt(v)),
            )),
        }
    };
    let invert = cfg.flag("invert", false)?;
    let layer = Normalization::new().name(name_of(cfg)).axis(axis).invert(invert);
    Ok(Box::new(match (stats("mean")?, stats("variance")?) {
        (Some(m), Some(v)) => layer.with_stats(m, v),
        (None, None) => layer,
        _ => return Err(cfg.error("`mean` and `variance` must both be given, or neither (Keras refuses one alone)")),
    }))
}
