//! kiln-onnx: a kiln model as an ONNX model, for runtimes other than kiln (onnxruntime,
//! tract, browsers…).
//!
//! A built `Sequential` becomes an opset-17 graph. Its input `input` is
//! `float32 [N, d1, …]` in the model's sample shape (channels last, as kiln and Keras
//! store images) with a free batch size `N`; its output is `output`. Layers map to:
//!
//! | kiln layer | ONNX |
//! |---|---|
//! | Dense on flat samples | `Gemm` (kernel `(in, out)`, bias), or `MatMul` without bias |
//! | Dense on shaped samples | `MatMul` + `Add` (last axis) |
//! | activations | `Relu`, `Sigmoid`, `Tanh`, `Softmax(axis=-1)`; nothing for linear |
//! | Dropout | nothing (the identity at inference) |
//! | Flatten | `Flatten(axis=1)` |
//! | Reshape | `Reshape` to `[-1, target…]` |
//!
//! Weights are initializers. Any other layer is an error naming it.
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

mod dense;
mod graph;
mod proto;
mod reshape;

use std::path::Path;

use kiln_layers::Layer;
use kiln_trainer::Sequential;
use prost::Message;

use graph::{Cursor, Graph, value_info};
use proto::{ModelProto, OperatorSetIdProto};

/// The ONNX operator set the graph is written for (17: the first with
/// `LayerNormalization`; `Softmax` keeps its opset-13 meaning, over one axis).
pub const OPSET: i64 = 17;
/// The ONNX IR version matching [`OPSET`] (ONNX 1.12).
pub const IR_VERSION: i64 = 8;

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
    /// The model is not built (its input shape is unknown).
    #[error("the model is not built: build it (or load a saved one) so its input shape is known")]
    NotBuilt,
    /// Writing the file failed.
    #[error(transparent)]
    File(#[from] kiln_fs::FileError),
}

impl OnnxError {
    /// `layer` cannot be exported, and why.
    pub(crate) fn unsupported(layer: &dyn Layer, message: String) -> Self {
        Self::Unsupported { layer: layer.name().to_string(), class: layer.class_name().to_string(), message }
    }
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
    let (input, shapes) = match (model.model_input_shape(), model.layer_shapes()) {
        (Some(input), Some(shapes)) => (input, shapes),
        _ => return Err(OnnxError::NotBuilt),
    };
    let mut graph = Graph::default();
    graph.proto.name = Some(model.model_name().to_string());
    let mut cur = Cursor { name: "input".to_string(), dims: input.dims().to_vec(), channels_first: false };
    for (layer, shape) in model.layers().iter().zip(shapes) {
        cur = add_layer(&mut graph, layer.as_ref(), cur, shape.dims())?;
    }
    let cur = graph.channels_last(cur, "output");
    // The graph's output must be written by a node: rename the last node's output when it
    // is the final value, else (an input passed through unchanged) add an Identity.
    match graph.proto.node.last_mut() {
        Some(last) if last.output.first() == Some(&cur.name) => last.output = vec!["output".to_string()],
        _ => graph.node("Identity", "identity", vec![cur.name.clone()], "output", vec![]),
    }
    graph.proto.input.push(value_info("input", input.dims()));
    graph.proto.output.push(value_info("output", &cur.dims));
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("kiln".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("{} exported by kiln-onnx", model.model_name())),
        graph: Some(graph.proto),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
    })
}

/// Appends `layer`'s nodes reading `cur`; returns the value the next layer reads.
fn add_layer(graph: &mut Graph, layer: &dyn Layer, cur: Cursor, out_dims: &[usize]) -> Result<Cursor, OnnxError> {
    match layer.class_name() {
        "Dropout" => Ok(cur),
        "Dense" => dense::export(graph, layer, cur, out_dims),
        "Flatten" => Ok(reshape::flatten(graph, layer, cur, out_dims)),
        "Reshape" => Ok(reshape::reshape(graph, layer, cur, out_dims)),
        other => Err(OnnxError::unsupported(
            layer,
            format!("`{other}` layers are not exported (Dense, Dropout, Flatten and Reshape are)"),
        )),
    }
}
