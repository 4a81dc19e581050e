//! Convolution and pooling as ONNX `Conv`, `MaxPool`, `AveragePool`, `GlobalAveragePool`
//! and `GlobalMaxPool`. ONNX is channels-first, so the tensor enters a channels-first
//! region (one `Transpose`) and stays there until a layer needs channels-last again; the
//! kernel `[kh, kw, cin, cout]` is stored as ONNX's `[cout, cin, kh, kw]`, and TF's
//! asymmetric `same` padding is written out as explicit `pads`.

use kiln_layers::{Activation, Layer};
use kiln_tensor::{Padding, Window2d};

use crate::OnnxError;
use crate::dense::activation;
use crate::graph::{Cursor, Graph, int, ints};

/// The window a 1-D (`[steps, c]`) or 2-D (`[h, w, c]`) layer slides over its input.
fn window(
    layer: &dyn Layer,
    cur: &Cursor,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    pool: bool,
) -> Result<Window2d, OnnxError> {
    let result = match (&cur.dims[..], pool) {
        (&[steps, c], false) => Window2d::new_1d(steps, c, kernel[1], strides[1], dilation[1], padding),
        (&[h, w, c], false) => Window2d::new([h, w, c], kernel, strides, dilation, padding),
        (&[steps, c], true) => Window2d::pool_1d(steps, c, kernel[1], strides[1], padding),
        (&[h, w, c], true) => Window2d::pool([h, w, c], kernel, strides, padding),
        _ => return Err(OnnxError::unsupported(layer, format!("input shape {:?}", cur.dims))),
    };
    result.map_err(|e| OnnxError::unsupported(layer, e.0))
}

/// `kernel_shape`, `strides`, `dilations` and `pads` of a window, over its spatial axes
/// (one for 1-D layers, two for 2-D).
fn window_attributes(g: &Window2d, spatial: usize, dilations: bool) -> Vec<crate::proto::AttributeProto> {
    let axes = |v: [usize; 2]| -> Vec<i64> { v[2 - spatial..].iter().map(|&d| d as i64).collect() };
    let mut pads = axes(g.pad_before());
    pads.extend(axes(g.pad_after()));
    let mut attrs =
        vec![ints("kernel_shape", &axes(g.kernel())), ints("strides", &axes(g.strides())), ints("pads", &pads)];
    if dilations {
        attrs.push(ints("dilations", &axes(g.dilation())));
    }
    attrs
}

/// Appends a `Conv1D`/`Conv2D` (`Conv`, then the activation).
pub(crate) fn conv(
    graph: &mut Graph,
    layer: &dyn Layer,
    cur: Cursor,
    out_dims: &[usize],
    geometry: ([usize; 2], [usize; 2], [usize; 2], Padding),
) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let (kernel_size, strides, dilation, padding) = geometry;
    let g = window(layer, &cur, kernel_size, strides, dilation, padding, false)?;
    let spatial = cur.dims.len() - 1;
    let params = layer.params();
    let kernel = params
        .iter()
        .find(|p| p.name() == "kernel")
        .ok_or_else(|| OnnxError::unsupported(layer, "no kernel".into()))?;
    let (cin, cout) = (g.input()[2], *kernel.shape().last().expect("a kernel has a shape"));
    let taps = g.kernel()[0] * g.kernel()[1];
    // [taps, cin, cout] → [cout, cin, taps]: the same taps in the same (row-major) order.
    let k = kernel.value();
    let mut w = vec![0.0f32; k.len()];
    for t in 0..taps {
        for i in 0..cin {
            for o in 0..cout {
                w[(o * cin + i) * taps + t] = k[(t * cin + i) * cout + o];
            }
        }
    }
    let mut w_dims = vec![cout, cin];
    w_dims.extend(&g.kernel()[2 - spatial..]);
    let cur = graph.channels_first(cur, name);
    let w_name = format!("{name}/kernel");
    graph.init_f32(&w_name, &w_dims, w);
    let mut inputs = vec![cur.name, w_name];
    if let Some(b) = params.iter().find(|p| p.name() == "bias") {
        let b_name = format!("{name}/bias");
        graph.init_f32(&b_name, &[cout], b.value().to_vec());
        inputs.push(b_name);
    }
    let out = format!("{name}/conv");
    graph.node("Conv", &out, inputs, &out, window_attributes(&g, spatial, true));
    let mut cur = Cursor { name: out, dims: out_dims.to_vec(), channels_first: true };
    // Softmax runs over the channels: the last axis, so back to channels-last first.
    if layer.activation() == Activation::Softmax {
        cur = graph.channels_last(cur, name);
    }
    let out = activation(graph, name, layer.activation(), cur.name.clone());
    Ok(Cursor { name: out, ..cur })
}

/// Appends a windowed pooling layer (`MaxPool`, or `AveragePool` counting real cells only).
pub(crate) fn pool(
    graph: &mut Graph,
    layer: &dyn Layer,
    cur: Cursor,
    out_dims: &[usize],
    geometry: ([usize; 2], [usize; 2], Padding),
    max: bool,
) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let (pool_size, strides, padding) = geometry;
    let g = window(layer, &cur, pool_size, strides, [1, 1], padding, true)?;
    let spatial = cur.dims.len() - 1;
    let cur = graph.channels_first(cur, name);
    let mut attrs = window_attributes(&g, spatial, false);
    let op = if max {
        "MaxPool"
    } else {
        // Keras divides by the window's real cells: ONNX's count_include_pad = 0.
        attrs.push(int("count_include_pad", 0));
        "AveragePool"
    };
    let out = format!("{name}/{}", op.to_lowercase());
    graph.node(op, &out, vec![cur.name], &out, attrs);
    Ok(Cursor { name: out, dims: out_dims.to_vec(), channels_first: true })
}

/// Appends a global pooling layer: `Global{Average,Max}Pool` (`[N, c, 1, …]`), then a
/// `Flatten` to `[N, c]` unless `keepdims`.
pub(crate) fn global(graph: &mut Graph, layer: &dyn Layer, cur: Cursor, out_dims: &[usize], max: bool) -> Cursor {
    let name = layer.name();
    let cur = graph.channels_first(cur, name);
    let op = if max { "GlobalMaxPool" } else { "GlobalAveragePool" };
    let pooled = format!("{name}/{}", op.to_lowercase());
    graph.node(op, &pooled, vec![cur.name], &pooled, vec![]);
    if out_dims.len() > 1 {
        // keepdims: [N, c, 1, …] is the channels-first form of [N, 1, …, c].
        return Cursor { name: pooled, dims: out_dims.to_vec(), channels_first: true };
    }
    let out = format!("{name}/flatten");
    graph.node("Flatten", &out, vec![pooled], &out, vec![int("axis", 1)]);
    Cursor { name: out, dims: out_dims.to_vec(), channels_first: false }
}
