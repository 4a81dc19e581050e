//! Keras' `Dense`, `Dropout` and `InputLayer` configs as kiln layers.

use kiln_layers::{
    ActivationLayer, Add, Average, Concatenate, Dense, Dropout, Flatten, Layer, Maximum, Minimum, Multiply, Reshape,
    Subtract,
};
use kiln_tensor::Shape;
use serde::Deserialize;
use serde_json::Value;

use crate::conv_layers::{self, channels_last, name_of};
use crate::json::{At, check_dtype, refuse_unknown};
use crate::{KerasError, parts};
use crate::{norm_layers, rnn_layers};

/// One entry of a model's `layers` list, as kiln sees it.
pub(crate) enum Entry {
    /// An `InputLayer`: the sample shape of its `[null, d1, …]` batch shape.
    Input(Shape),
    /// A layer kiln builds.
    Layer(Box<dyn Layer>),
}

/// Keys of a layer's config that carry no semantics kiln must reproduce.
const IGNORED: &[&str] = &["name", "trainable", "dtype", "shared_object_id"];

#[derive(Deserialize)]
struct DenseConfig {
    #[serde(default)]
    name: String,
    units: usize,
    #[serde(default = "yes")]
    use_bias: bool,
}

#[derive(Deserialize)]
struct DropoutConfig {
    #[serde(default)]
    name: String,
    rate: f64,
    #[serde(default)]
    seed: Option<u64>,
}

fn yes() -> bool {
    true
}

/// Whether a Functional config's entry is a `keras.ops` call (module `keras.src.ops…`),
/// not a layer: Keras saves no weights group for it.
pub(crate) fn is_ops_entry(entry: &Value) -> bool {
    entry
        .get("module")
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("keras.src.ops") || m.starts_with("keras.ops"))
}

/// The layer described by `{"class_name": …, "config": …}` at `at`.
pub(crate) fn entry(at: At<'_>) -> Result<Entry, KerasError> {
    let class =
        at.value.get("class_name").and_then(Value::as_str).ok_or_else(|| at.error("layer without class_name"))?;
    // A Functional config lists `keras.ops` calls beside its layers, under class names
    // some merge layers share (`ops.add(a, b)` is an `Add` of module
    // `keras.src.ops.numpy`). On tensors of one shape, add, subtract, multiply, maximum,
    // minimum and concatenate compute what the layer does (a constant operand is refused
    // with the node's arguments); `ops.average` (a mean over axes) and the rest do not.
    if let Some(module) = at.value.get("module").and_then(Value::as_str) {
        let same = matches!(class, "Add" | "Subtract" | "Multiply" | "Maximum" | "Minimum" | "Concatenate");
        if is_ops_entry(at.value) && !same {
            return Err(at.error_at(
                "module",
                format!(
                    "`{class}` here is the keras.ops operation of `{module}`, not a layer; kiln imports layers only"
                ),
            ));
        }
    }
    let cfg_path = at.child_path("config");
    let value = at.value.get("config").ok_or_else(|| at.error(format!("{class} without config")))?;
    let cfg = At { value, path: &cfg_path };
    if !value.is_object() {
        return Err(cfg.error("a layer config must be an object"));
    }
    // Token ids come in as integers: an InputLayer may say so (its ids feed an Embedding,
    // which the model checks); every computing layer must be float32.
    let integer_input = class == "InputLayer"
        && matches!(
            value.get("dtype").and_then(Value::as_str),
            Some("int32" | "int64" | "uint8" | "uint16" | "uint32")
        );
    if !integer_input {
        check_dtype(cfg)?;
    }
    // The name rule of kiln's save and load, checked here so the error names the field.
    if let Some(name) = value.get("name").and_then(Value::as_str) {
        let max = kiln_trainer::MAX_LAYER_NAME_BYTES;
        if name.len() > max {
            let head: String = name.chars().take(32).collect();
            return Err(cfg.error_at(
                "name",
                format!("a name of {} bytes (`{head}…`), more than the {max} kiln accepts", name.len()),
            ));
        }
    }
    let frozen = value.get("trainable").and_then(Value::as_bool) == Some(false);
    let mut entry = layer_entry(class, cfg, at)?;
    if let Entry::Layer(layer) = &mut entry {
        layer.set_trainable(!frozen);
    }
    Ok(entry)
}

/// The layer of class `class` with config `cfg` (trainable); `at` is the whole entry.
fn layer_entry(class: &str, cfg: At<'_>, at: At<'_>) -> Result<Entry, KerasError> {
    match class {
        "InputLayer" => input_shape(cfg).map(Entry::Input),
        "Dense" => dense(cfg).map(|d| Entry::Layer(Box::new(d))),
        "Dropout" => {
            refuse_unknown(cfg, "Dropout", &["rate", "seed"], IGNORED)?;
            let c: DropoutConfig = cfg.typed()?;
            let mut d = Dropout::new(c.rate).name(c.name);
            d.seed = c.seed;
            Ok(Entry::Layer(Box::new(d)))
        }
        "Flatten" => {
            refuse_unknown(cfg, "Flatten", &["data_format"], IGNORED)?;
            channels_last(cfg)?;
            Ok(Entry::Layer(Box::new(Flatten::new().name(name_of(cfg)))))
        }
        "Reshape" => {
            refuse_unknown(cfg, "Reshape", &["target_shape"], IGNORED)?;
            let dims = cfg.get("target_shape").ok_or_else(|| cfg.error("Reshape without target_shape"))?;
            let path = cfg.child_path("target_shape");
            let target: Vec<i64> = serde_json::from_value(dims.clone()).map_err(|_| {
                KerasError::config(&path, format!("must be a list of integers, got {}", kiln_fs::excerpt(dims)))
            })?;
            let layer = Reshape::new(target);
            // Keras validates the target when the layer is made, before any input.
            layer.validate_target().map_err(|e| KerasError::config(&path, e))?;
            Ok(Entry::Layer(Box::new(layer.name(name_of(cfg)))))
        }
        "BatchNormalization" => norm_layers::batch_normalization(cfg).map(Entry::Layer),
        "Embedding" => rnn_layers::embedding(cfg).map(Entry::Layer),
        "SimpleRNN" | "LSTM" | "GRU" => rnn_layers::recurrent(cfg, class).map(Entry::Layer),
        "LayerNormalization" => norm_layers::layer_normalization(cfg).map(Entry::Layer),
        "Normalization" => norm_layers::keras_normalization(cfg).map(Entry::Layer),
        "Conv1D" => conv_layers::conv(cfg, 1).map(Entry::Layer),
        "Conv2D" => conv_layers::conv(cfg, 2).map(Entry::Layer),
        "MaxPooling1D"
        | "MaxPooling2D"
        | "AveragePooling1D"
        | "AveragePooling2D"
        | "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D" => {
            let layer = conv_layers::pooling(cfg, class)?.expect("a pooling class");
            Ok(Entry::Layer(layer))
        }
        "Activation" => {
            refuse_unknown(cfg, "Activation", &["activation"], IGNORED)?;
            let path = cfg.child_path("activation");
            let activation =
                parts::activation(At { value: cfg.get("activation").unwrap_or(&Value::Null), path: &path })?;
            Ok(Entry::Layer(Box::new(ActivationLayer::new(activation).name(name_of(cfg)))))
        }
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" | "Concatenate" => {
            merge(cfg, class).map(Entry::Layer)
        }
        "Functional" | "Sequential" | "Model" => Err(at.error(format!(
            "a nested model (`{}`, a {class} used as a layer) is not imported yet: kiln imports one level of layers",
            name_of(cfg)
        ))),
        other => Err(at.error(format!(
            "layer class `{other}` is not supported (InputLayer, Dense, Dropout, Flatten, Reshape, Conv1D, Conv2D, \
             {{Max,Average}}Pooling{{1,2}}D, Global{{Average,Max}}Pooling{{1,2}}D, BatchNormalization, \
             LayerNormalization, Normalization, Embedding, SimpleRNN, LSTM, GRU, Activation, Add, Subtract, Multiply, \
             Average, Maximum, Minimum, Concatenate)"
        ))),
    }
}

/// A merging layer (`keras/src/layers/merging/`): no arguments but Concatenate's `axis`.
fn merge(cfg: At<'_>, class: &str) -> Result<Box<dyn Layer>, KerasError> {
    let known: &[&str] = if class == "Concatenate" { &["axis"] } else { &[] };
    refuse_unknown(cfg, class, known, IGNORED)?;
    let name = name_of(cfg);
    Ok(match class {
        "Add" => Box::new(Add::new().name(name)),
        "Subtract" => Box::new(Subtract::new().name(name)),
        "Multiply" => Box::new(Multiply::new().name(name)),
        "Average" => Box::new(Average::new().name(name)),
        "Maximum" => Box::new(Maximum::new().name(name)),
        "Minimum" => Box::new(Minimum::new().name(name)),
        _ => {
            let axis = match cfg.get("axis") {
                None => -1,
                Some(v) => v.as_i64().ok_or_else(|| cfg.error_at("axis", "must be an integer"))?,
            };
            Box::new(Concatenate::new().axis(axis).name(name))
        }
    })
}

fn dense(cfg: At<'_>) -> Result<Dense, KerasError> {
    const KNOWN: &[&str] = &[
        "units",
        "use_bias",
        "activation",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
    ];
    refuse_unknown(cfg, "Dense", KNOWN, IGNORED)?;
    let c: DenseConfig = cfg.typed()?;
    let sub = |key: &str| cfg.child_path(key);
    let null = Value::Null;
    let field = |key: &str| cfg.value.get(key).unwrap_or(&null);
    let mut d = Dense::new(c.units).name(c.name).use_bias(c.use_bias);
    d.activation = parts::activation(At { value: field("activation"), path: &sub("activation") })?;
    if let Some(v) = cfg.get("kernel_initializer") {
        d.kernel_initializer = parts::initializer(At { value: v, path: &sub("kernel_initializer") })?;
    }
    if let Some(v) = cfg.get("bias_initializer") {
        d.bias_initializer = parts::initializer(At { value: v, path: &sub("bias_initializer") })?;
    }
    d.kernel_regularizer =
        parts::regularizer(At { value: field("kernel_regularizer"), path: &sub("kernel_regularizer") })?;
    d.bias_regularizer = parts::regularizer(At { value: field("bias_regularizer"), path: &sub("bias_regularizer") })?;
    d.activity_regularizer =
        parts::regularizer(At { value: field("activity_regularizer"), path: &sub("activity_regularizer") })?;
    if c.units == 0 {
        return Err(cfg.error_at("units", "must be at least 1"));
    }
    Ok(d)
}

/// The sample shape of an `InputLayer`'s `batch_shape` `[null, d1, …]`.
fn input_shape(cfg: At<'_>) -> Result<Shape, KerasError> {
    refuse_unknown(cfg, "InputLayer", &["batch_shape", "batch_input_shape", "sparse", "optional"], IGNORED)?;
    let key = if cfg.get("batch_shape").is_some() { "batch_shape" } else { "batch_input_shape" };
    let shape = cfg.get(key).ok_or_else(|| cfg.error("InputLayer without batch_shape"))?;
    shape_of(At { value: shape, path: &cfg.child_path(key) })
}

/// The sample shape of a Keras batch shape `[null, d1, …]` (the batch size, `null` or a
/// number, dropped): every other dimension a positive integer, at most
/// [`MAX_RANK`](kiln_tensor::MAX_RANK) of them. Variable sizes (`null` past the batch) are
/// refused: kiln sizes every buffer from the shape.
pub(crate) fn shape_of(at: At<'_>) -> Result<Shape, KerasError> {
    let dims = at.value.as_array().ok_or_else(|| at.error("a shape must be a list"))?;
    let Some((batch, rest)) = dims.split_first().filter(|(b, rest)| (b.is_null() || b.is_u64()) && !rest.is_empty())
    else {
        return Err(at.error(format!(
            "input shape {} is not supported: expected [batch, d1, …] with the batch size first",
            kiln_fs::excerpt(at.value)
        )));
    };
    let _ = batch;
    let mut sizes = Vec::with_capacity(rest.len());
    for d in rest {
        match d.as_u64().filter(|&d| d > 0).and_then(|d| usize::try_from(d).ok()) {
            Some(d) => sizes.push(d),
            None if d.is_null() => {
                return Err(at.error(format!(
                    "input shape {}: variable-size dimensions (null past the batch) are not supported; kiln \
                     needs every sample dimension",
                    kiln_fs::excerpt(at.value)
                )));
            }
            None => {
                return Err(at.error(format!(
                    "input shape {}: every sample dimension must be a positive integer, got {}",
                    kiln_fs::excerpt(at.value),
                    kiln_fs::excerpt(d)
                )));
            }
        }
    }
    Shape::new(sizes).map_err(|e| at.error(format!("input shape {}: {e}", kiln_fs::excerpt(at.value))))
}
