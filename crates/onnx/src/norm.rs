//! `BatchNormalization` (inference, with the moving statistics) and `LayerNormalization`
//! (opset 17) as ONNX. Both write Keras' `epsilon` explicitly: ONNX's default is 1e-5,
//! Keras' 1e-3.

use kiln_layers::Layer;

use crate::OnnxError;
use crate::graph::{Cursor, Graph, float, int};

/// A parameter's values, or `fill` repeated `width` times when the layer has none
/// (`scale=False` → ones, `center=False` → zeros).
fn values_or(layer: &dyn Layer, name: &str, width: usize, fill: f32) -> Vec<f32> {
    layer.params().iter().find(|p| p.name() == name).map_or_else(|| vec![fill; width], |p| p.value().to_vec())
}

fn epsilon(layer: &dyn Layer) -> Result<f32, OnnxError> {
    let cfg = serde_json::to_value(layer).map_err(|e| OnnxError::unsupported(layer, e.to_string()))?;
    cfg["epsilon"].as_f64().map(|e| e as f32).ok_or_else(|| OnnxError::unsupported(layer, "no epsilon".into()))
}

/// Appends `BatchNormalization` over the channels (axis 1 of a channels-first tensor).
pub(crate) fn batch_normalization(graph: &mut Graph, layer: &dyn Layer, cur: Cursor) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let c = *cur.dims.last().expect("a shape has a last axis");
    let cur = graph.channels_first(cur, name);
    let mut inputs = vec![cur.name.clone()];
    for (param, fill) in [("gamma", 1.0), ("beta", 0.0), ("moving_mean", 0.0), ("moving_variance", 1.0)] {
        let init = format!("{name}/{param}");
        graph.init_f32(&init, &[c], values_or(layer, param, c, fill));
        inputs.push(init);
    }
    let out = format!("{name}/batch_normalization");
    graph.node("BatchNormalization", &out, inputs, &out, vec![float("epsilon", epsilon(layer)?)]);
    Ok(Cursor { name: out, ..cur })
}

/// Appends `LayerNormalization` over the last axis (statistics in float32: `stash_type` 1).
pub(crate) fn layer_normalization(graph: &mut Graph, layer: &dyn Layer, cur: Cursor) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let d = *cur.dims.last().expect("a shape has a last axis");
    let cur = graph.channels_last(cur, name);
    let mut inputs = vec![cur.name.clone()];
    for (param, fill) in [("gamma", 1.0), ("beta", 0.0)] {
        let init = format!("{name}/{param}");
        graph.init_f32(&init, &[d], values_or(layer, param, d, fill));
        inputs.push(init);
    }
    let out = format!("{name}/layer_normalization");
    let attrs = vec![int("axis", -1), float("epsilon", epsilon(layer)?), int("stash_type", 1)];
    graph.node("LayerNormalization", &out, inputs, &out, attrs);
    Ok(Cursor { name: out, ..cur })
}

/// Appends Keras' `Normalization` as `Sub` then `Div` by the guarded deviation (`Mul`
/// then `Add` with `invert`), both over the last axis; the deviation `max(√variance,
/// 1e-7)` is computed here in float32 as the layer computes it, so the exported model
/// gives the layer's bits.
pub(crate) fn standardize(graph: &mut Graph, layer: &dyn Layer, cur: Cursor) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let cfg = serde_json::to_value(layer).map_err(|e| OnnxError::unsupported(layer, e.to_string()))?;
    let floats = |v: &serde_json::Value| -> Option<Vec<f32>> {
        v.as_array()?.iter().map(|x| x.as_f64().map(|x| x as f32)).collect()
    };
    let (mean, variance) = match cfg["stats"].as_array() {
        Some(pair) if pair.len() == 2 => (floats(&pair[0]), floats(&pair[1])),
        _ => (Some(values_or(layer, "mean", 0, 0.0)), Some(values_or(layer, "variance", 0, 1.0))),
    };
    let (Some(mean), Some(variance)) = (mean, variance) else {
        return Err(OnnxError::unsupported(layer, "unreadable `mean`/`variance`".into()));
    };
    let deviation: Vec<f32> = variance.iter().map(|v| v.sqrt().max(1e-7)).collect();
    let cur = graph.channels_last(cur, name);
    let (shift, scale) = (format!("{name}/mean"), format!("{name}/deviation"));
    graph.init_f32(&shift, &[mean.len()], mean);
    graph.init_f32(&scale, &[deviation.len()], deviation);
    let (first, second) = (format!("{name}/first"), format!("{name}/standardized"));
    if cfg["invert"].as_bool() == Some(true) {
        graph.node("Mul", &first, vec![cur.name.clone(), scale], &first, vec![]);
        graph.node("Add", &second, vec![first.clone(), shift], &second, vec![]);
    } else {
        graph.node("Sub", &first, vec![cur.name.clone(), shift], &first, vec![]);
        graph.node("Div", &second, vec![first.clone(), scale], &second, vec![]);
    }
    Ok(Cursor { name: second, ..cur })
}
