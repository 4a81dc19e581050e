//! Keras' convolution and pooling configs as kiln layers: `Conv1D`, `Conv2D`,
//! `{Max,Average}Pooling{1,2}D` and `Global{Average,Max}Pooling{1,2}D`.

use kiln_layers::{
    AveragePooling1D, AveragePooling2D, Conv1D, Conv2D, ConvOptions, GlobalAveragePooling1D, GlobalAveragePooling2D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, Layer, MaxPooling1D, MaxPooling2D,
};
use kiln_tensor::Padding;
use serde_json::Value;

use crate::json::{At, refuse_unknown};
use crate::{KerasError, parts};

/// Keys of a layer's config that carry no semantics kiln must reproduce.
const IGNORED: &[&str] = &["name", "trainable", "dtype", "shared_object_id"];

/// The layer's `name` (empty: kiln names it).
pub(crate) fn name_of(cfg: At<'_>) -> String {
    cfg.value.get("name").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// `data_format` must be channels-last (kiln's only layout).
pub(crate) fn channels_last(cfg: At<'_>) -> Result<(), KerasError> {
    match cfg.get("data_format") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(f)) if f == "channels_last" => Ok(()),
        Some(other) => Err(cfg.error_at(
            "data_format",
            format!("{} is not supported: kiln computes channels_last only", kiln_fs::excerpt(other)),
        )),
    }
}

/// `key` as `n` positive sizes: Keras writes tuples (`[3, 3]`) and accepts one integer
/// for every axis. `None` when the key is absent or null.
fn sizes(cfg: At<'_>, key: &str, n: usize) -> Result<Option<Vec<usize>>, KerasError> {
    let positive = |v: &Value| v.as_u64().filter(|&d| d > 0).and_then(|d| usize::try_from(d).ok());
    let bad = |v: &Value| cfg.error_at(key, format!("must be {n} positive integer(s), got {}", kiln_fs::excerpt(v)));
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() == n => {
            items.iter().map(|v| positive(v).ok_or_else(|| bad(v))).collect::<Result<_, _>>().map(Some)
        }
        Some(v) if v.is_number() => positive(v).map(|d| Some(vec![d; n])).ok_or_else(|| bad(v)),
        Some(v) => Err(bad(v)),
    }
}

fn padding(cfg: At<'_>, allowed: &[&str]) -> Result<Padding, KerasError> {
    match cfg.get("padding") {
        None => Ok(Padding::Valid),
        Some(Value::String(p)) if allowed.contains(&p.to_lowercase().as_str()) => Ok(match p.to_lowercase().as_str() {
            "same" => Padding::Same,
            "causal" => Padding::Causal,
            _ => Padding::Valid,
        }),
        Some(other) => {
            Err(cfg.error_at("padding", format!("{} is not one of {}", kiln_fs::excerpt(other), allowed.join(", "))))
        }
    }
}

/// `Conv1D` (`rank` 1) or `Conv2D` (`rank` 2).
pub(crate) fn conv(cfg: At<'_>, rank: usize) -> Result<Box<dyn Layer>, KerasError> {
    const KNOWN: &[&str] = &[
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "groups",
        "activation",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
    ];
    let class = if rank == 1 { "Conv1D" } else { "Conv2D" };
    refuse_unknown(cfg, class, KNOWN, IGNORED)?;
    channels_last(cfg)?;
    if let Some(g) = cfg.get("groups").filter(|g| g.as_u64() != Some(1)) {
        return Err(
            cfg.error_at("groups", format!("{} is not supported: kiln computes groups=1 only", kiln_fs::excerpt(g)))
        );
    }
    let filters = cfg
        .get("filters")
        .and_then(Value::as_u64)
        .filter(|&f| f > 0)
        .and_then(|f| usize::try_from(f).ok())
        .ok_or_else(|| cfg.error_at("filters", "must be a positive integer"))?;
    let kernel = sizes(cfg, "kernel_size", rank)?.ok_or_else(|| cfg.error(format!("{class} without kernel_size")))?;
    let strides = sizes(cfg, "strides", rank)?.unwrap_or(vec![1; rank]);
    let dilation = sizes(cfg, "dilation_rate", rank)?.unwrap_or(vec![1; rank]);
    let allowed: &[&str] = if rank == 1 { &["valid", "same", "causal"] } else { &["valid", "same"] };
    let mut options = ConvOptions { padding: padding(cfg, allowed)?, ..Conv2D::new(filters, [1, 1]).options().clone() };
    let sub = |key: &str| cfg.child_path(key);
    let null = Value::Null;
    let field = |key: &str| cfg.value.get(key).unwrap_or(&null);
    options.activation = parts::activation(At { value: field("activation"), path: &sub("activation") })?;
    options.use_bias = cfg.flag("use_bias", true)?;
    if let Some(v) = cfg.get("kernel_initializer") {
        options.kernel_initializer = parts::initializer(At { value: v, path: &sub("kernel_initializer") })?;
    }
    if let Some(v) = cfg.get("bias_initializer") {
        options.bias_initializer = parts::initializer(At { value: v, path: &sub("bias_initializer") })?;
    }
    for (key, slot) in [
        ("kernel_regularizer", &mut options.kernel_regularizer),
        ("bias_regularizer", &mut options.bias_regularizer),
        ("activity_regularizer", &mut options.activity_regularizer),
    ] {
        *slot = parts::regularizer(At { value: field(key), path: &sub(key) })?;
    }
    // Keras' base_conv.py refuses the pair when the layer is made.
    if strides.iter().any(|&s| s > 1) && dilation.iter().any(|&d| d > 1) {
        return Err(cfg.error_at(
            "dilation_rate",
            "strides > 1 together with dilation_rate > 1 is not supported (Keras refuses it too)",
        ));
    }
    let name = name_of(cfg);
    Ok(if rank == 1 {
        let mut c = Conv1D::new(filters, kernel[0]).strides(strides[0]).dilation_rate(dilation[0]).name(name);
        *c.options_mut() = options;
        Box::new(c)
    } else {
        let mut c = Conv2D::new(filters, [kernel[0], kernel[1]])
            .strides([strides[0], strides[1]])
            .dilation_rate([dilation[0], dilation[1]])
            .name(name);
        *c.options_mut() = options;
        Box::new(c)
    })
}

/// A windowed or global pooling layer of class `class` (one of the eight pooling
/// classes), or `None` for another class.
pub(crate) fn pooling(cfg: At<'_>, class: &str) -> Result<Option<Box<dyn Layer>>, KerasError> {
    let name = name_of(cfg);
    let global = class.starts_with("Global");
    if global {
        refuse_unknown(cfg, class, &["data_format", "keepdims"], IGNORED)?;
    } else {
        refuse_unknown(cfg, class, &["pool_size", "strides", "padding", "data_format"], IGNORED)?;
    }
    channels_last(cfg)?;
    let keepdims = cfg.flag("keepdims", false)?;
    let rank = if class.ends_with("1D") { 1 } else { 2 };
    let (pool, strides, padding) = if global {
        (vec![], None, Padding::Valid)
    } else {
        // base_pooling.py: `strides` defaults to `pool_size`; the 1-D and 2-D defaults are 2.
        let pool = sizes(cfg, "pool_size", rank)?.unwrap_or(vec![2; rank]);
        (pool, sizes(cfg, "strides", rank)?, padding(cfg, &["valid", "same"])?)
    };
    let arr = |v: &[usize]| [v[0], v[1]];
    Ok(Some(match class {
        "MaxPooling2D" => {
            let mut l = MaxPooling2D::new(arr(&pool)).padding(padding).name(name);
            l.strides = strides.map(|s| arr(&s));
            Box::new(l)
        }
        "AveragePooling2D" => {
            let mut l = AveragePooling2D::new(arr(&pool)).padding(padding).name(name);
            l.strides = strides.map(|s| arr(&s));
            Box::new(l)
        }
        "MaxPooling1D" => {
            let mut l = MaxPooling1D::new(pool[0]).padding(padding).name(name);
            l.strides = strides.map(|s| s[0]);
            Box::new(l)
        }
        "AveragePooling1D" => {
            let mut l = AveragePooling1D::new(pool[0]).padding(padding).name(name);
            l.strides = strides.map(|s| s[0]);
            Box::new(l)
        }
        "GlobalAveragePooling2D" => Box::new(GlobalAveragePooling2D::new().keepdims(keepdims).name(name)),
        "GlobalMaxPooling2D" => Box::new(GlobalMaxPooling2D::new().keepdims(keepdims).name(name)),
        "GlobalAveragePooling1D" => Box::new(GlobalAveragePooling1D::new().keepdims(keepdims).name(name)),
        "GlobalMaxPooling1D" => Box::new(GlobalMaxPooling1D::new().keepdims(keepdims).name(name)),
        _ => return Ok(None),
    }))
}
