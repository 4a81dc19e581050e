//! The rules every layer name must follow, checked in linear time by `build`, `save` and
//! `load` alike (so nothing is saved that `load` would refuse).

use std::collections::HashMap;

use kiln_layers::Layer;

use crate::TrainError;

/// The longest layer name accepted, in bytes. Real names are a few dozen bytes; a name of
/// megabytes would make a `config.json` past what `load` reads.
pub const MAX_LAYER_NAME_BYTES: usize = 1024;

/// Errors on the first layer whose name is empty or longer than [`MAX_LAYER_NAME_BYTES`],
/// or that repeats an earlier layer's name (one pass, hashing each name once).
pub(crate) fn check_layer_names(layers: &[Box<dyn Layer>]) -> Result<(), TrainError> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(layers.len());
    for (second, l) in layers.iter().enumerate() {
        let name = l.name();
        if name.is_empty() {
            return Err(TrainError::Config(format!(
                "layer {second} ({}) has an empty name: its weights could not be told apart when loaded",
                l.class_name()
            )));
        }
        if name.len() > MAX_LAYER_NAME_BYTES {
            return Err(TrainError::Config(format!(
                "layer {second} ({}) has a name of {} bytes (`{}…`), more than the {MAX_LAYER_NAME_BYTES} kiln accepts",
                l.class_name(),
                name.len(),
                name.chars().take(32).collect::<String>()
            )));
        }
        if let Some(&first) = seen.get(name) {
            return Err(TrainError::DuplicateLayerName { name: name.to_string(), first, second });
        }
        seen.insert(name, second);
    }
    Ok(())
}

/// Errors on a Functional input name that is empty, too long, repeated, or also a
/// layer's name (Keras refuses two layers of one name, inputs included).
pub(crate) fn check_input_names(graph: &crate::Graph, layers: &[Box<dyn Layer>]) -> Result<(), TrainError> {
    let mut seen: HashMap<&str, &str> = layers.iter().map(|l| (l.name(), "a layer")).collect();
    for input in &graph.inputs {
        let name = input.name.as_str();
        if name.is_empty() || name.len() > MAX_LAYER_NAME_BYTES {
            return Err(TrainError::Config(format!(
                "a Functional input needs a name of 1 to {MAX_LAYER_NAME_BYTES} bytes, not {} bytes",
                name.len()
            )));
        }
        if let Some(what) = seen.insert(name, "another input") {
            return Err(TrainError::Config(format!("input name `{name}` is also the name of {what}")));
        }
    }
    Ok(())
}

/// Keras' `naming.to_snake_case`, which names layers after their class (`Dense` →
/// `dense`, `MaxPooling2D` → `max_pooling2d`, `InputLayer` → `input_layer`): the regexes
/// `(.)([A-Z][a-z]+) → \1_\2`, then `([a-z])([A-Z]) → \1_\2`, then lower case.
pub fn keras_snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || next_lower {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}
