//! kiln-onnx: a kiln model as an ONNX model, for runtimes other than kiln (onnxruntime,
//! tract, browsers…).
//!
//! A `Sequential` of `Dense` and `Dropout` layers becomes an opset-13 graph: each Dense is
//! a `Gemm` (kernel `(in, out)`, bias) or, without bias, a `MatMul`, followed by its
//! activation (`Relu`, `Sigmoid`, `Tanh`, `Softmax` over the last axis; nothing for
//! linear); Dropout is the identity at inference and adds no node. The input `input` is
//! `float32 [N, in]` with a free batch size `N`; the output is `output`. Weights are
//! stored as initializers. Any other layer is an error naming it.
//!
//! ```
//! use kiln_layers::{Activation, Dense, Dropout};
//! use kiln_trainer::Sequential;
//!
//! let mut model = Sequential::new()
//!     .add(Dense::new(4).activation(Activation::Relu))
//!     .add(Dropout::new(0.5))
//!     .add(Dense::new(2).activation(Activation::Softmax));
//! model.build(3)?;
//! let bytes = kiln_onnx::to_onnx_bytes(&model)?;
//! assert!(bytes.len() > 4 * model.param_count());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod proto;

use std::path::Path;

use kiln_layers::{Activation, Layer};
use kiln_trainer::Sequential;
use prost::Message;

use proto::{
    ATTRIBUTE_INT, AttributeProto, Dimension, FLOAT, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};

/// The ONNX operator set the graph is written for (Gemm, MatMul, Relu, Sigmoid, Tanh and
/// Softmax with its opset-13 meaning: over one axis).
pub const OPSET: i64 = 13;
/// The ONNX IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 7;

/// Why a model cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The model has a layer (or a layer setting) ONNX export does not cover.
    #[error("layer `{layer}` ({class}): {message}")]
    Unsupported {
        /// The layer's name.
        layer: String,
        /// Its class.
        class: String,
        /// What is not supported.
        message: String,
    },
    /// The model is not built (its input width is unknown).
    #[error("the model is not built: build it (or load a saved one) so its input width is known")]
    NotBuilt,
    /// Writing the file failed.
    #[error(transparent)]
    File(#[from] kiln_fs::FileError),
}

/// The model as an ONNX `ModelProto`, encoded.
pub fn to_onnx_bytes(model: &Sequential) -> Result<Vec<u8>, OnnxError> {
    Ok(to_model_proto(model)?.encode_to_vec())
}

/// Writes the model as an ONNX file at `path`, atomically (a failed write leaves what was
/// there).
pub fn export_onnx(model: &Sequential, path: &Path) -> Result<(), OnnxError> {
    let bytes = to_onnx_bytes(model)?;
    kiln_fs::write_atomic(path, &bytes)?;
    Ok(())
}

fn to_model_proto(model: &Sequential) -> Result<ModelProto, OnnxError> {
    let width = model.input_width().ok_or(OnnxError::NotBuilt)?;
    let mut graph = GraphProto { name: Some(model.model_name().to_string()), ..Default::default() };
    let mut current = "input".to_string();
    let mut current_width = width;
    for layer in model.layers() {
        if let Some((out, out_width)) = add_layer(&mut graph, layer.as_ref(), &current)? {
            current = out;
            current_width = out_width;
        }
    }
    // The graph's output must be a node's output: a model of Dropout layers only gets one.
    if current == "input" {
        graph.node.push(node("Identity", "identity", vec![current], "output", vec![]));
    }
    // The last node writes the graph's output (no node reads what it wrote before).
    let last = graph.node.last_mut().expect("at least one node");
    last.output = vec!["output".to_string()];
    graph.input.push(value_info("input", width));
    graph.output.push(value_info("output", current_width));
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("kiln".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("{} exported by kiln-onnx", model.model_name())),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
    })
}

/// Appends `layer`'s nodes reading `input`; returns its output name and width (`None`
/// for a layer that is the identity at inference).
fn add_layer(graph: &mut GraphProto, layer: &dyn Layer, input: &str) -> Result<Option<(String, usize)>, OnnxError> {
    let name = layer.name();
    let unsupported = |message: String| OnnxError::Unsupported {
        layer: name.to_string(),
        class: layer.class_name().to_string(),
        message,
    };
    match layer.class_name() {
        "Dropout" => Ok(None),
        "Dense" => {
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
            let kernel_name = format!("{name}/kernel");
            graph.initializer.push(tensor(&kernel_name, &[fan_in, units], kernel.value()));
            let product = format!("{name}/linear");
            match bias {
                Some(b) => {
                    let bias_name = format!("{name}/bias");
                    graph.initializer.push(tensor(&bias_name, &[units], b.value()));
                    let inputs = vec![input.to_string(), kernel_name, bias_name];
                    graph.node.push(node("Gemm", &format!("{name}/gemm"), inputs, &product, vec![]));
                }
                None => {
                    let inputs = vec![input.to_string(), kernel_name];
                    graph.node.push(node("MatMul", &format!("{name}/matmul"), inputs, &product, vec![]));
                }
            }
            let out = match layer.activation() {
                Activation::Linear => product,
                act => {
                    let (op, attrs) = match act {
                        Activation::Relu => ("Relu", vec![]),
                        Activation::Sigmoid => ("Sigmoid", vec![]),
                        Activation::Tanh => ("Tanh", vec![]),
                        Activation::Softmax => ("Softmax", vec![int_attribute("axis", -1)]),
                        Activation::Linear => unreachable!("handled above"),
                    };
                    let out = format!("{name}/{}", op.to_lowercase());
                    graph.node.push(node(op, &out, vec![product], &out, attrs));
                    out
                }
            };
            Ok(Some((out, units)))
        }
        other => Err(unsupported(format!("`{other}` layers are not exported (Dense and Dropout are)"))),
    }
}

fn node(op: &str, name: &str, input: Vec<String>, output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input,
        output: vec![output.to_string()],
        name: Some(name.to_string()),
        op_type: Some(op.to_string()),
        attribute,
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: Some(name.to_string()), i: Some(value), r#type: Some(ATTRIBUTE_INT) }
}

fn tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(FLOAT),
        float_data: values.to_vec(),
        name: Some(name.to_string()),
    }
}

/// A `float32 [N, width]` value with a free batch dimension `N`.
fn value_info(name: &str, width: usize) -> ValueInfoProto {
    let dims = vec![
        Dimension { dim_value: None, dim_param: Some("N".into()) },
        Dimension { dim_value: Some(width as i64), dim_param: None },
    ];
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor { elem_type: Some(FLOAT), shape: Some(TensorShapeProto { dim: dims }) }),
        }),
    }
}
