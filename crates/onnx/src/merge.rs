//! Merge layers as ONNX. `Add`, `Subtract`, `Multiply`, `Maximum` and `Minimum` become
//! chains of binary `Add`, `Sub`, `Mul`, `Max`, `Min` nodes folding the inputs left to
//! right as Keras and kiln do (not the variadic `Sum`/`Mean`, whose order of summation ONNX
//! leaves open, so its float rounding could differ); `Average` is that sum then a `Div` by
//! the input count; `Concatenate` is `Concat`. Every input is brought to channels-last
//! first: the layout kiln's values and Concatenate's axis are counted in.

use kiln_layers::Layer;

use crate::OnnxError;
use crate::graph::{Cursor, Graph, int};

/// Appends merge layer `layer` reading `inputs` (in its order); returns its value.
pub(crate) fn export(
    graph: &mut Graph,
    layer: &dyn Layer,
    inputs: Vec<Cursor>,
    out_dims: &[usize],
) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    if inputs.is_empty() {
        return Err(OnnxError::unsupported(layer, "a merge layer without inputs".into()));
    }
    // One transpose name per input slot: two inputs may need converting for this layer.
    let inputs: Vec<Cursor> =
        inputs.into_iter().enumerate().map(|(i, c)| graph.channels_last(c, &format!("{name}/input{i}"))).collect();
    let value = match layer.class_name() {
        "Add" => fold(graph, name, "Add", &inputs),
        "Subtract" => fold(graph, name, "Sub", &inputs),
        "Multiply" => fold(graph, name, "Mul", &inputs),
        "Maximum" => fold(graph, name, "Max", &inputs),
        "Minimum" => fold(graph, name, "Min", &inputs),
        "Average" => average(graph, name, &inputs),
        "Concatenate" => concatenate(graph, layer, &inputs)?,
        other => {
            return Err(OnnxError::unsupported(
                layer,
                format!(
                    "merge layer `{other}` is not exported (Add, Subtract, Multiply, Average, Maximum, Minimum and \
                     Concatenate are)"
                ),
            ));
        }
    };
    Ok(Cursor { name: value, dims: out_dims.to_vec(), channels_first: false })
}

/// `op(…op(op(x₀, x₁), x₂)…)`, one binary node per further input; returns the last value
/// (`x₀` itself for a single input, which Keras passes through).
fn fold(graph: &mut Graph, layer: &str, op: &str, inputs: &[Cursor]) -> String {
    let mut acc = inputs[0].name.clone();
    for (i, x) in inputs.iter().enumerate().skip(1) {
        let out = format!("{layer}/{}_{i}", op.to_lowercase());
        graph.node(op, &out, vec![acc, x.name.clone()], &out, vec![]);
        acc = out;
    }
    acc
}

/// The left-to-right sum divided by the input count (one `Div` by a float32 scalar, as
/// Keras divides the sum, rather than scaling each input).
fn average(graph: &mut Graph, layer: &str, inputs: &[Cursor]) -> String {
    let sum = fold(graph, layer, "Add", inputs);
    let count = format!("{layer}/count");
    graph.init_f32(&count, &[], vec![inputs.len() as f32]);
    let out = format!("{layer}/div");
    graph.node("Div", &out, vec![sum, count], &out, vec![]);
    out
}

/// `Concat` on the layer's axis, which counts the batch axis as ONNX does, normalized to
/// a non-negative axis of the full `[N, d1, …]` rank.
fn concatenate(graph: &mut Graph, layer: &dyn Layer, inputs: &[Cursor]) -> Result<String, OnnxError> {
    let cfg = crate::config(layer)?;
    let axis = cfg["axis"].as_i64().ok_or_else(|| OnnxError::unsupported(layer, format!("axis {}", cfg["axis"])))?;
    let rank = inputs[0].dims.len() as i64 + 1;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(1..rank).contains(&axis) {
        return Err(OnnxError::unsupported(layer, format!("axis {} of a rank-{rank} tensor", cfg["axis"])));
    }
    let out = format!("{}/concat", layer.name());
    graph.node("Concat", &out, inputs.iter().map(|c| c.name.clone()).collect(), &out, vec![int("axis", axis)]);
    Ok(out)
}
