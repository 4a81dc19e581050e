//! `Embedding` as ONNX `Gather`, and `SimpleRNN`, `LSTM`, `GRU` as ONNX `RNN`, `LSTM`,
//! `GRU` (forward, `layout = 0`: time-major, with a `Transpose` on each side; Keras'
//! `go_backwards` as a `Slice` reversing the steps before it).
//!
//! Keras' kernels `[in, G·u]` become ONNX's `W [1, G·u, in]` (transposed), the recurrent
//! ones `R [1, G·u, u]`. LSTM gates go from Keras' i, f, c, o to ONNX's i, o, f, c, and its
//! one bias becomes `[Wb, Rb = 0]`; GRU keeps z, r, h, and Keras' `reset_after` is ONNX's
//! `linear_before_reset = 1` with `B = [b_in, b_rec]` (onnx/keras-onnx's conversion).

use kiln_layers::{Activation, Layer};

use crate::OnnxError;
use crate::graph::{Cursor, Graph, int, ints, strings};

/// Appends `Gather(embeddings, ids, axis=0)`: `[N, t] → [N, t, output_dim]`.
pub(crate) fn embedding(graph: &mut Graph, layer: &dyn Layer, cur: Cursor, out_dims: &[usize]) -> Cursor {
    let name = layer.name();
    let table = &layer.params()[0];
    let init = format!("{name}/embeddings");
    graph.init_f32(&init, table.shape(), table.value().to_vec());
    let out = format!("{name}/gather");
    graph.node("Gather", &out, vec![init, cur.name], &out, vec![int("axis", 0)]);
    Cursor { name: out, dims: out_dims.to_vec(), channels_first: false }
}

fn onnx_activation(layer: &dyn Layer, act: Activation) -> Result<&'static str, OnnxError> {
    match act {
        Activation::Tanh => Ok("Tanh"),
        Activation::Sigmoid => Ok("Sigmoid"),
        Activation::Relu => Ok("Relu"),
        other => Err(OnnxError::unsupported(layer, format!("activation `{}` in a recurrent cell", other.keras_name()))),
    }
}

/// `rows` gates of `u` columns of the row-major `[n, G·u]` `src`, transposed into
/// `[len(order)·u, n]`: ONNX's row `g·u + j` is Keras' column `order[g]·u + j`.
fn transposed_gates(src: &[f32], n: usize, u: usize, gates: usize, order: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0; order.len() * u * n];
    for (g, &kg) in order.iter().enumerate() {
        for j in 0..u {
            for k in 0..n {
                out[(g * u + j) * n + k] = src[k * gates * u + kg * u + j];
            }
        }
    }
    out
}

fn reorder(src: &[f32], u: usize, order: &[usize]) -> Vec<f32> {
    order.iter().flat_map(|&g| src[g * u..(g + 1) * u].iter().copied()).collect()
}

/// Appends a recurrent layer (`class`: SimpleRNN, LSTM or GRU).
pub(crate) fn recurrent(
    graph: &mut Graph,
    layer: &dyn Layer,
    cur: Cursor,
    out_dims: &[usize],
) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let cfg = serde_json::to_value(layer).map_err(|e| OnnxError::unsupported(layer, e.to_string()))?;
    let act = |key: &str, default: Activation| -> Result<Activation, OnnxError> {
        match cfg.get(key) {
            None => Ok(default),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| OnnxError::unsupported(layer, e.to_string())),
        }
    };
    let units = cfg["units"].as_u64().ok_or_else(|| OnnxError::unsupported(layer, "no units".into()))? as usize;
    let return_sequences = cfg["return_sequences"].as_bool().unwrap_or(false);
    let (op, gates, order): (&str, usize, &[usize]) = match layer.class_name() {
        "LSTM" => ("LSTM", 4, &[0, 3, 1, 2]),
        "GRU" => ("GRU", 3, &[0, 1, 2]),
        _ => ("RNN", 1, &[0]),
    };
    let activation = onnx_activation(layer, act("activation", Activation::Tanh)?)?;
    let activations: Vec<&str> = match op {
        "LSTM" => {
            let rec = onnx_activation(layer, act("recurrent_activation", Activation::Sigmoid)?)?;
            vec![rec, activation, activation]
        }
        "GRU" => vec![onnx_activation(layer, act("recurrent_activation", Activation::Sigmoid)?)?, activation],
        _ => vec![activation],
    };
    let params = layer.params();
    let (kernel, recurrent) = (&params[0], &params[1]);
    let features = kernel.shape()[0];
    let width = gates * units;
    let (w, r) = (format!("{name}/W"), format!("{name}/R"));
    graph.init_f32(&w, &[1, width, features], transposed_gates(kernel.value(), features, units, gates, order));
    graph.init_f32(&r, &[1, width, units], transposed_gates(recurrent.value(), units, units, gates, order));
    let reset_after = op == "GRU" && cfg["reset_after"].as_bool().unwrap_or(true);
    let mut b = vec![0.0f32; 2 * width];
    if let Some(bias) = params.get(2) {
        let v = bias.value();
        b[..width].copy_from_slice(&reorder(&v[..width], units, order));
        if reset_after {
            b[width..].copy_from_slice(&reorder(&v[width..], units, order));
        }
    }
    let b_name = format!("{name}/B");
    graph.init_f32(&b_name, &[1, 2 * width], b);
    // [N, T, in] → [T, N, in] (layout 0: onnxruntime does not run layout 1).
    let mut x = format!("{name}/time_major");
    graph.node("Transpose", &x, vec![cur.name], &x, vec![ints("perm", &[1, 0, 2])]);
    if cfg["go_backwards"].as_bool().unwrap_or(false) {
        // Keras' go_backwards: the steps reversed, then a forward pass whose outputs stay in
        // processing order (ONNX's `direction = reverse` would align them with the input).
        let reversed = format!("{name}/reversed");
        let [starts, ends, axes, steps] = ["starts", "ends", "axes", "steps"].map(|k| format!("{name}/reverse_{k}"));
        graph.init_i64(&starts, vec![-1]);
        graph.init_i64(&ends, vec![i64::MIN]);
        graph.init_i64(&axes, vec![0]);
        graph.init_i64(&steps, vec![-1]);
        graph.node("Slice", &reversed, vec![x, starts, ends, axes, steps], &reversed, vec![]);
        x = reversed;
    }
    let (y, y_h) = (format!("{name}/Y"), format!("{name}/Y_h"));
    let mut attrs = vec![int("hidden_size", units as i64), strings("activations", &activations)];
    if reset_after {
        attrs.push(int("linear_before_reset", 1));
    }
    graph.node_outputs(
        op,
        &format!("{name}/{}", op.to_lowercase()),
        vec![x, w, r, b_name],
        vec![y.clone(), y_h.clone()],
        attrs,
    );
    let out = if return_sequences {
        // Y [T, 1, N, u] → [T, N, u] → [N, T, u].
        let axes = format!("{name}/axes");
        graph.init_i64(&axes, vec![1]);
        let squeezed = format!("{name}/squeeze");
        graph.node("Squeeze", &squeezed, vec![y, axes], &squeezed, vec![]);
        let out = format!("{name}/sequences");
        graph.node("Transpose", &out, vec![squeezed], &out, vec![ints("perm", &[1, 0, 2])]);
        out
    } else {
        // Y_h [1, N, u] → [N, u].
        let axes = format!("{name}/axes");
        graph.init_i64(&axes, vec![0]);
        let out = format!("{name}/state");
        graph.node("Squeeze", &out, vec![y_h, axes], &out, vec![]);
        out
    };
    Ok(Cursor { name: out, dims: out_dims.to_vec(), channels_first: false })
}
