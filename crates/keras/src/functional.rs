//! A Keras Functional model config (`keras/src/models/functional.py`: `layers` with their
//! `inbound_nodes`, `input_layers`, `output_layers`) as a kiln graph model.
//!
//! Each layer's one inbound node lists the tensors it is called on as
//! `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}`
//! (a merge layer's as a list). kiln computes a graph exactly when every layer is called
//! once and every layer has one output, so a shared layer (several inbound nodes), a
//! nested model and several model outputs are refused by name.

use std::collections::HashMap;

use kiln_tensor::Shape;
use kiln_trainer::{Functional, Node, Sequential};
use serde_json::Value;

use crate::KerasError;
use crate::json::At;
use crate::layers::{Entry, entry};

/// `[layer, node_index, tensor_index]` of a `keras_history` or an `input_layers` entry.
pub(crate) type History<'v> = (&'v str, u64, u64);

/// Every `keras_history` in `v` (a node, or its `args`), in order: a merge layer's list is
/// flattened as Keras flattens it; a missing index reads as `u64::MAX`, which no check
/// accepts.
pub(crate) fn histories(v: &Value) -> Vec<History<'_>> {
    fn walk<'v>(v: &'v Value, out: &mut Vec<History<'v>>) {
        if let Some(h) = v.get("config").and_then(|c| c.get("keras_history")).and_then(Value::as_array) {
            out.push(history(h));
            return;
        }
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// The first value of a node's `args` that is not a Keras tensor (a number, a string, a
/// serialized NumPy array…), if any: the arguments of a `keras.ops` call, or of a layer
/// called with more than tensors.
fn constant_arg(v: &Value) -> Option<&Value> {
    if v.get("config").and_then(|c| c.get("keras_history")).is_some() {
        return None;
    }
    match v {
        Value::Array(items) => items.iter().find_map(constant_arg),
        Value::Null => None,
        other => Some(other),
    }
}

/// `[layer, node_index, tensor_index]` as a [`History`].
fn history(h: &[Value]) -> History<'_> {
    let num = |i: usize| h.get(i).and_then(Value::as_u64).unwrap_or(u64::MAX);
    (h.first().and_then(Value::as_str).unwrap_or(""), num(1), num(2))
}

/// `input_layers` / `output_layers`: `["x", 0, 0]` for one tensor, `[["x", 0, 0], …]`, or a
/// dict of them.
pub(crate) fn endpoint_list(v: Option<&Value>) -> Vec<History<'_>> {
    // A model made with a dict of inputs (`keras.Model({"a": a, "b": b}, o)`) saves them
    // as a dict; Keras flattens it by sorted key (`model.inputs` order).
    if let Some(Value::Object(map)) = v {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        return keys.into_iter().filter_map(|k| map[k].as_array().map(|e| history(e))).collect();
    }
    match v.and_then(Value::as_array).map(Vec::as_slice) {
        Some(one @ [Value::String(_), ..]) => vec![history(one)],
        Some(items) => items.iter().filter_map(|i| i.as_array().map(|e| history(e))).collect(),
        None => Vec::new(),
    }
}

/// The layer name of entry `layer` (its top-level `name`, else its config's).
fn layer_name(layer: &Value) -> &str {
    layer.get("name").or_else(|| layer.get("config").and_then(|c| c.get("name"))).and_then(Value::as_str).unwrap_or("?")
}

/// The graph model of a Functional config `cfg` (its `layers` at `layers_path`), not
/// built, named `name`; layers keep the config's order (Keras' `model.layers`), which the
/// weights file follows.
pub(crate) fn graph_model(
    cfg: At<'_>,
    layers: &[Value],
    layers_path: &str,
    name: &str,
) -> Result<Sequential, KerasError> {
    if layers.is_empty() {
        return Err(KerasError::config(layers_path, "the Functional model's `layers` list is empty"));
    }
    let mut input_shapes: HashMap<&str, (Shape, String)> = HashMap::new();
    for (i, layer) in layers.iter().enumerate() {
        if layer.get("class_name").and_then(Value::as_str) == Some("InputLayer") {
            let path = format!("{layers_path}[{i}]");
            if let Entry::Input(shape) = entry(At { value: layer, path: &path })? {
                input_shapes.insert(layer_name(layer), (shape, path));
            }
        }
    }
    let mut g = Functional::new().name(name);
    let mut nodes: HashMap<&str, Node> = HashMap::new();
    let inputs = endpoint_list(cfg.value.get("input_layers"));
    if inputs.is_empty() {
        return Err(cfg.error_at("input_layers", "a Functional model must list its inputs"));
    }
    for (k, &(input, node, tensor)) in inputs.iter().enumerate() {
        let at = format!("{}[{k}]", cfg.child_path("input_layers"));
        let Some((shape, _)) = input_shapes.get(input) else {
            return Err(KerasError::config(at, format!("`{input}` is not an InputLayer of `layers`")));
        };
        if (node, tensor) != (0, 0) || nodes.contains_key(input) {
            return Err(KerasError::config(at, format!("input `{input}` is listed twice or not as [name, 0, 0]")));
        }
        nodes.insert(input, g.named_input(input, shape.dims().to_vec()));
    }
    if let Some((name, (_, path))) = input_shapes.iter().find(|(n, _)| !nodes.contains_key(*n)) {
        return Err(KerasError::config(path, format!("InputLayer `{name}` is not one of the model's input_layers")));
    }
    for (i, layer) in layers.iter().enumerate() {
        let path = format!("{layers_path}[{i}]");
        let at = At { value: layer, path: &path };
        if layer.get("class_name").and_then(Value::as_str) == Some("InputLayer") {
            continue;
        }
        let lname = layer_name(layer);
        let calls = layer.get("inbound_nodes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let call = match calls {
            [one] => one,
            [] => return Err(at.error(format!("layer `{lname}` is not called on any tensor (no inbound_nodes)"))),
            more => {
                return Err(at.error(format!(
                    "layer `{lname}` is called {} times (a shared layer), which kiln does not compute yet",
                    more.len()
                )));
            }
        };
        let node_path = format!("{path}.inbound_nodes[0]");
        // Keras records `training` for every layer that takes it (Dropout, the recurrent
        // layers: `{"training": false}`), and `fit`, `evaluate` and `predict` override it
        // with their own (`functional.py`, `operation_fn`): it changes nothing. Any other
        // keyword argument is refused.
        let ignored = |key: &str, v: &Value| v.is_null() || (key == "training" && v.is_boolean());
        let passed = |(key, v): (&String, &Value)| !ignored(key, v);
        if call.get("kwargs").and_then(Value::as_object).is_some_and(|m| m.iter().any(passed)) {
            return Err(KerasError::config(
                format!("{node_path}.kwargs"),
                format!(
                    "layer `{lname}` is called with keyword arguments ({}), which kiln does not pass",
                    call["kwargs"]
                ),
            ));
        }
        let args = call.get("args").unwrap_or(&Value::Null);
        if let Some(constant) = constant_arg(args) {
            return Err(KerasError::config(
                format!("{node_path}.args"),
                format!(
                    "layer `{lname}` is called with an argument that is not a tensor ({}), which kiln does not pass",
                    kiln_fs::excerpt(constant)
                ),
            ));
        }
        let reads = histories(args);
        if reads.is_empty() {
            return Err(KerasError::config(&node_path, format!("layer `{lname}` is called on no tensor")));
        }
        let mut sources = Vec::with_capacity(reads.len());
        for (source, node, tensor) in reads {
            let found = nodes.get(source).copied().filter(|_| (node, tensor) == (0, 0));
            sources.push(found.ok_or_else(|| {
                KerasError::config(
                    &node_path,
                    format!(
                        "layer `{lname}` reads [{source:?}, {node}, {tensor}], which is not the one output of an \
                         earlier layer or input"
                    ),
                )
            })?);
        }
        let Entry::Layer(built) = entry(at)? else {
            return Err(at.error("an InputLayer inside the graph"));
        };
        nodes.insert(lname, g.push(built, &sources));
    }
    let outputs = endpoint_list(cfg.value.get("output_layers"));
    let out = match outputs.as_slice() {
        [(name, 0, 0)] => nodes
            .get(name)
            .copied()
            .ok_or_else(|| cfg.error_at("output_layers", format!("`{name}` is not a layer of the model")))?,
        [(name, node, tensor)] => {
            return Err(
                cfg.error_at("output_layers", format!("[{name:?}, {node}, {tensor}] is not a layer's one output"))
            );
        }
        more => {
            return Err(cfg.error_at(
                "output_layers",
                format!("{} outputs: kiln's models have one output (several are not computed yet)", more.len()),
            ));
        }
    };
    g.model_unbuilt(out).map_err(|e| KerasError::config(cfg.path, e.to_string()))
}
