//! A Keras `Sequential` (or single-chain `Functional`) model config as a kiln model.

use kiln_tensor::Shape;
use kiln_trainer::Sequential;
use serde_json::Value;

use crate::KerasError;
use crate::functional::{endpoint_list, histories};
use crate::json::{At, check_dtype, refuse_unknown};
use crate::layers::{Entry, entry, shape_of};
use crate::scan::MAX_LAYERS;

/// A Keras model config — `model.get_config()`, or the whole serialized object
/// (`{"class_name": "Sequential", "config": …}`) — as a kiln model, built when the config
/// states the input shape. A `Functional` model that is one chain becomes a stack; any
/// other graph (merge layers, several inputs, fan-out) becomes a graph model. Anything
/// kiln cannot compute exactly is refused (other layers, non-float32 dtypes, frozen
/// layers, constraints, shared layers, nested models, several outputs…). Every error
/// names the field.
pub fn model_from_keras(config: &Value) -> Result<Sequential, KerasError> {
    model_at(At::root(config))
}

pub(crate) fn model_at(at: At<'_>) -> Result<Sequential, KerasError> {
    let (mut model, input_shape) = unbuilt_model_at(at)?;
    if model.graph().is_some() {
        model.build_declared()?;
    } else if let Some(shape) = input_shape {
        model.build_shape(&shape)?;
    }
    Ok(model)
}

/// The model of a config and the input sample shape it states, not built yet: a caller
/// that knows a tighter weight budget (a trace carrying its weights) sets it before
/// building.
pub(crate) fn unbuilt_model_at(at: At<'_>) -> Result<(Sequential, Option<Shape>), KerasError> {
    let (mut model, shape) = unbuilt_layers_at(at)?;
    // Keras: a model whose own `trainable` is false has no trainable weights, whatever its
    // layers say (`Layer.trainable_weights`, keras/src/layers/layer.py).
    let cfg = at.value.get("config").unwrap_or(at.value);
    if cfg.get("trainable").and_then(Value::as_bool) == Some(false) {
        model.layers_mut().iter_mut().for_each(|l| l.set_trainable(false));
    }
    Ok((model, shape))
}

/// [`unbuilt_model_at`] before the model's own `trainable` is applied.
fn unbuilt_layers_at(at: At<'_>) -> Result<(Sequential, Option<Shape>), KerasError> {
    let (class, cfg_value, cfg_path) = match at.value.get("class_name").and_then(Value::as_str) {
        Some(class) => {
            let cfg = at.value.get("config").ok_or_else(|| at.error(format!("{class} without config")))?;
            (class, cfg, at.child_path("config"))
        }
        // A bare `get_config()`: a Functional one names its inputs and outputs.
        None if at.value.get("input_layers").is_some() => ("Functional", at.value, at.path.to_string()),
        None => ("Sequential", at.value, at.path.to_string()),
    };
    let cfg = At { value: cfg_value, path: &cfg_path };
    match class {
        "Sequential" | "Functional" => {}
        other => {
            return Err(
                at.error_at("class_name", format!("`{other}` is not a model (Sequential, or a Functional chain)"))
            );
        }
    }
    if !cfg_value.is_object() {
        return Err(cfg.error("a model config must be an object"));
    }
    check_dtype(cfg)?;
    let layers_v = cfg.get("layers").ok_or_else(|| cfg.error("no `layers` list"))?;
    let layers_path = cfg.child_path("layers");
    let layers = layers_v.as_array().ok_or_else(|| KerasError::config(&layers_path, "`layers` must be a list"))?;
    if layers.len() > MAX_LAYERS {
        return Err(KerasError::config(
            &layers_path,
            format!("{} layers, more than the {MAX_LAYERS} kiln imports", layers.len()),
        ));
    }
    if class == "Functional" {
        refuse_unknown(
            cfg,
            "Functional",
            &["layers", "input_layers", "output_layers"],
            &["name", "trainable", "dtype"],
        )?;
        if check_chain(cfg, layers).is_err() {
            let name = cfg.value.get("name").and_then(Value::as_str).unwrap_or("functional");
            return Ok((crate::functional::graph_model(cfg, layers, &layers_path, name)?, None));
        }
    } else {
        refuse_unknown(cfg, "Sequential", &["layers", "build_input_shape"], &["name", "trainable", "dtype"])?;
    }
    let name = cfg.value.get("name").and_then(Value::as_str).unwrap_or("sequential");
    let mut model = Sequential::new().name(name);
    let mut input_shape = match cfg.get("build_input_shape") {
        Some(s) => Some(shape_of(At { value: s, path: &cfg.child_path("build_input_shape") })?),
        None => None,
    };
    for (i, layer) in layers.iter().enumerate() {
        let path = format!("{layers_path}[{i}]");
        let at = At { value: layer, path: &path };
        match entry(at)? {
            Entry::Input(shape) => match &input_shape {
                // Keras builds from one shape; two that disagree mean a config kiln would
                // otherwise import with the wrong input shape.
                Some(known) if *known != shape => {
                    let name = layer.get("config").and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?");
                    return Err(at.error(format!(
                        "InputLayer `{name}` takes samples of shape {:?}, but {} says {:?}",
                        shape.dims(),
                        if cfg.get("build_input_shape").is_some() {
                            cfg.child_path("build_input_shape")
                        } else {
                            "an earlier InputLayer".to_string()
                        },
                        known.dims()
                    )));
                }
                _ => input_shape = Some(shape),
            },
            Entry::Layer(l) => {
                if model.layers().is_empty()
                    && input_shape.is_none()
                    && let Some(shape) =
                        layer.get("build_config").and_then(|b| b.get("input_shape")).filter(|s| !s.is_null())
                {
                    let shape_path = format!("{path}.build_config.input_shape");
                    input_shape = Some(shape_of(At { value: shape, path: &shape_path })?);
                }
                model.push(l);
            }
        }
    }
    if model.layers().is_empty() {
        return Err(KerasError::config(
            &layers_path,
            "the model has no layers kiln could build (only inputs, or none)",
        ));
    }
    Ok((model, input_shape))
}

/// Refuses a Functional graph that is not one chain: one input, one output, every layer
/// called once on the previous layer's output only.
fn check_chain(cfg: At<'_>, layers: &[Value]) -> Result<(), KerasError> {
    let names: Vec<&str> = layers.iter().map(|l| l.get("name").and_then(Value::as_str).unwrap_or("?")).collect();
    let inputs: Vec<&str> = endpoint_list(cfg.value.get("input_layers")).into_iter().map(|h| h.0).collect();
    let outputs: Vec<&str> = endpoint_list(cfg.value.get("output_layers")).into_iter().map(|h| h.0).collect();
    let not_chain = |why: String| {
        cfg.error(format!(
            "this Functional model is not a single chain from its input ({why}); kiln imports Sequential stacks only"
        ))
    };
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(not_chain(format!("{} inputs and {} outputs", inputs.len(), outputs.len())));
    }
    let (Some(first), Some(last)) = (names.first(), names.last()) else {
        return Err(KerasError::config(cfg.child_path("layers"), "the Functional model's `layers` list is empty"));
    };
    if *first != inputs[0] || *last != outputs[0] {
        return Err(not_chain(format!("layers run from `{first}` to `{last}`, not input to output")));
    }
    for (i, layer) in layers.iter().enumerate().skip(1) {
        let nodes = layer.get("inbound_nodes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let fed: Vec<&str> = nodes.iter().flat_map(histories).map(|h| h.0).collect();
        if nodes.len() != 1 || fed != [names[i - 1]] {
            return Err(not_chain(format!("layer `{}` is fed by {fed:?}, not by `{}` alone", names[i], names[i - 1])));
        }
    }
    Ok(())
}
