//! `Dense` as ONNX: `Gemm` on flat samples (`MatMul` without bias), `MatMul` + `Add` on
//! shaped ones (Gemm is 2-D only), then the activation.

use kiln_layers::{Activation, Layer};

use crate::OnnxError;
use crate::graph::{Cursor, Graph, int};

/// Appends `layer` (a Dense) reading `cur`.
pub(crate) fn export(
    graph: &mut Graph,
    layer: &dyn Layer,
    cur: Cursor,
    out_dims: &[usize],
) -> Result<Cursor, OnnxError> {
    let name = layer.name();
    let unsupported = |message: String| OnnxError::unsupported(layer, message);
    let params = layer.params();
    let kernel = params.iter().find(|p| p.name() == "kernel").ok_or_else(|| unsupported("no kernel".into()))?;
    let [fan_in, units] = kernel.shape() else {
        return Err(unsupported(format!("kernel shape {:?} is not 2-D", kernel.shape())));
    };
    let (fan_in, units) = (*fan_in, *units);
    let bias = params.iter().find(|p| p.name() == "bias");
    if params.len() != 1 + usize::from(bias.is_some()) {
        return Err(unsupported("has parameters besides kernel and bias".into()));
    }
    // Dense reads the last axis: channels-last order.
    let cur = graph.channels_last(cur, name);
    let flat = cur.dims.len() == 1;
    let kernel_name = format!("{name}/kernel");
    graph.init_f32(&kernel_name, &[fan_in, units], kernel.value().to_vec());
    let product = format!("{name}/linear");
    match bias {
        Some(b) if flat => {
            let bias_name = format!("{name}/bias");
            graph.init_f32(&bias_name, &[units], b.value().to_vec());
            graph.node("Gemm", &format!("{name}/gemm"), vec![cur.name, kernel_name, bias_name], &product, vec![]);
        }
        Some(b) => {
            let bias_name = format!("{name}/bias");
            graph.init_f32(&bias_name, &[units], b.value().to_vec());
            let matmul = format!("{name}/matmul");
            graph.node("MatMul", &matmul, vec![cur.name, kernel_name], &matmul, vec![]);
            graph.node("Add", &format!("{name}/add"), vec![matmul, bias_name], &product, vec![]);
        }
        None => graph.node("MatMul", &format!("{name}/matmul"), vec![cur.name, kernel_name], &product, vec![]),
    }
    let out = activation(graph, name, layer.activation(), product);
    Ok(Cursor { name: out, dims: out_dims.to_vec(), channels_first: false })
}

/// Appends the activation node (none for linear); returns the value it writes.
pub(crate) fn activation(graph: &mut Graph, layer: &str, act: Activation, input: String) -> String {
    let (op, attrs) = match act {
        Activation::Linear => return input,
        Activation::Relu => ("Relu", vec![]),
        Activation::Sigmoid => ("Sigmoid", vec![]),
        Activation::Tanh => ("Tanh", vec![]),
        Activation::Softmax => ("Softmax", vec![int("axis", -1)]),
    };
    let out = format!("{layer}/{}", op.to_lowercase());
    graph.node(op, &out, vec![input], &out, attrs);
    out
}
