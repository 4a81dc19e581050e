//! `Flatten` and `Reshape` as ONNX: both reinterpret channels-last values, so a tensor in
//! channels-first layout is transposed back first.

use kiln_layers::Layer;

use crate::graph::{Cursor, Graph, int};

/// Appends `Flatten(axis=1)` (nothing for an already flat sample).
pub(crate) fn flatten(graph: &mut Graph, layer: &dyn Layer, cur: Cursor, out_dims: &[usize]) -> Cursor {
    if cur.dims.len() == 1 && !cur.channels_first {
        return cur;
    }
    let name = layer.name();
    let cur = graph.channels_last(cur, name);
    let out = format!("{name}/flatten");
    graph.node("Flatten", &out, vec![cur.name], &out, vec![int("axis", 1)]);
    Cursor { name: out, dims: out_dims.to_vec(), channels_first: false }
}

/// Appends `Reshape` to `[-1, out_dims…]` (the batch kept by the `-1`).
pub(crate) fn reshape(graph: &mut Graph, layer: &dyn Layer, cur: Cursor, out_dims: &[usize]) -> Cursor {
    let name = layer.name();
    let cur = graph.channels_last(cur, name);
    let shape = format!("{name}/shape");
    graph.init_i64(&shape, std::iter::once(-1).chain(out_dims.iter().map(|&d| d as i64)).collect());
    let out = format!("{name}/reshape");
    graph.node("Reshape", &out, vec![cur.name, shape], &out, vec![]);
    Cursor { name: out, dims: out_dims.to_vec(), channels_first: false }
}
