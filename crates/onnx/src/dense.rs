//! `Dense` as ONNX: `Gemm` on flat samples (`MatMul` without bias), `MatMul` + `Add` on
//! shaped ones (Gemm is 2-D only), then the activation.

use kiln_layers::{Activation, Layer};

use crate::OnnxError;
use crate::graph::{Cursor, Graph, float, int};

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

/// Appends the activation's nodes (none for linear); returns the value they write. The
/// activations ONNX has as one operator (opset 17) map to it; silu, gelu and mish are
/// composed from `Sigmoid`, `Erf`, `Softplus`, `Tanh` and `Mul`, relu6 is `Clip`.
pub(crate) fn activation(graph: &mut Graph, layer: &str, act: Activation, input: String) -> String {
    let single = |graph: &mut Graph, op: &str, x: String, attrs| {
        let out = format!("{layer}/{}", op.to_lowercase());
        graph.node(op, &out, vec![x], &out, attrs);
        out
    };
    let binary = |graph: &mut Graph, op: &str, suffix: &str, a: String, b: String| {
        let out = format!("{layer}/{suffix}");
        graph.node(op, &out, vec![a, b], &out, vec![]);
        out
    };
    let constant = |graph: &mut Graph, suffix: &str, v: f32| {
        let name = format!("{layer}/{suffix}");
        graph.init_f32(&name, &[], vec![v]);
        name
    };
    match act {
        Activation::Linear => input,
        Activation::Relu => single(graph, "Relu", input, vec![]),
        Activation::Sigmoid => single(graph, "Sigmoid", input, vec![]),
        Activation::Tanh => single(graph, "Tanh", input, vec![]),
        Activation::Softmax => single(graph, "Softmax", input, vec![int("axis", -1)]),
        Activation::Elu => single(graph, "Elu", input, vec![float("alpha", 1.0)]),
        Activation::Selu => single(graph, "Selu", input, vec![float("alpha", 1.673_263_2), float("gamma", 1.050_701)]),
        Activation::LeakyRelu => single(graph, "LeakyRelu", input, vec![float("alpha", 0.2)]),
        Activation::Softplus => single(graph, "Softplus", input, vec![]),
        Activation::Softsign => single(graph, "Softsign", input, vec![]),
        Activation::Exponential => single(graph, "Exp", input, vec![]),
        Activation::HardSigmoid => {
            single(graph, "HardSigmoid", input, vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)])
        }
        Activation::Relu6 => {
            let (lo, hi) = (constant(graph, "zero", 0.0), constant(graph, "six", 6.0));
            let out = format!("{layer}/clip");
            graph.node("Clip", &out, vec![input, lo, hi], &out, vec![]);
            out
        }
        Activation::Silu => {
            let s = single(graph, "Sigmoid", input.clone(), vec![]);
            binary(graph, "Mul", "silu", input, s)
        }
        Activation::Mish => {
            let sp = single(graph, "Softplus", input.clone(), vec![]);
            let t = single(graph, "Tanh", sp, vec![]);
            binary(graph, "Mul", "mish", input, t)
        }
        // 0.5·x·(1 + erf(x/√2))
        Activation::Gelu => {
            let c = constant(graph, "inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
            let scaled = binary(graph, "Mul", "scaled", input.clone(), c);
            let erf = single(graph, "Erf", scaled, vec![]);
            let one = constant(graph, "one", 1.0);
            let plus = binary(graph, "Add", "plus_one", erf, one);
            let half = constant(graph, "half", 0.5);
            let half_x = binary(graph, "Mul", "half_x", input, half);
            binary(graph, "Mul", "gelu", half_x, plus)
        }
    }
}
