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
//! | Conv1D, Conv2D | `Conv` (kernel as `[cout, cin, k…]`, explicit `pads`), then the activation |
//! | MaxPooling1D/2D | `MaxPool` |
//! | AveragePooling1D/2D | `AveragePool` (`count_include_pad = 0`) |
//! | Global{Average,Max}Pooling1D/2D | `Global{Average,Max}Pool`, then `Flatten` |
//! | BatchNormalization | `BatchNormalization` (moving statistics, Keras' `epsilon`) |
//! | Normalization | `Sub`, `Div` (`Mul`, `Add` with `invert`) by the layer's mean and `max(√variance, 1e-7)` |
//! | LayerNormalization | `LayerNormalization(axis=-1)` (Keras' `epsilon`, float32 statistics) |
//! | Embedding | `Gather(axis=0)`; the graph's input is then `int64` ids |
//! | SimpleRNN, LSTM, GRU | `RNN`, `LSTM` (gates i, o, f, c), `GRU` (`linear_before_reset` for Keras' `reset_after`), time-major |
//! | Add, Subtract, Multiply, Maximum, Minimum | chains of binary `Add`, `Sub`, `Mul`, `Max`, `Min`, left to right as Keras folds |
//! | Average | the `Add` chain, then `Div` by the input count |
//! | Concatenate | `Concat` (channels-last, on the axis counting the batch) |
//!
//! A Functional model (a graph of layers, [`Sequential::graph`]) becomes the same graph:
//! one graph input per model input, named as the model names it (`input_layer`,
//! `input_layer_1`, …; int64 when Embedding layers read it), each layer exported once and
//! read by every layer that reads it, merge layers reading channels-last values; its
//! output is `output`.
//!
//! ONNX's convolution and pooling operators are channels-first: the graph transposes into
//! that layout before the first of them and back only where a layer needs channels-last
//! (Dense, Flatten, Reshape, a softmax, the output), so consecutive convolutions and pools
//! share one region. Weights are initializers. Any other layer is an error naming it.
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

mod conv;
mod dense;
mod graph;
mod graph_model;
mod merge;
mod norm;
mod proto;
mod recurrent;
mod reshape;

use std::path::Path;

use kiln_layers::Layer;
use kiln_trainer::Sequential;
use prost::Message;

use graph::{Cursor, Graph, value_info};
use proto::{ModelProto, OperatorSetIdProto, ValueInfoProto};

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
    let mut graph = Graph::default();
    graph.proto.name = Some(model.model_name().to_string());
    let (inputs, cur) = match model.graph() {
        Some(wiring) => graph_model::add_layers(&mut graph, model, wiring)?,
        None => add_stack(&mut graph, model)?,
    };
    let cur = graph.channels_last(cur, "output");
    // The graph's output must be written by a node: rename the last node's output when it
    // is the final value (no node reads it: nodes come in order), else (an input passed
    // through unchanged) add an Identity.
    match graph.proto.node.last_mut() {
        Some(last) if last.output.first() == Some(&cur.name) => last.output = vec!["output".to_string()],
        _ => graph.node("Identity", "identity", vec![cur.name.clone()], "output", vec![]),
    }
    graph.proto.input = inputs;
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

/// Appends a stack's layers, each reading the one before; returns the graph's input
/// (`input`) and the last layer's value.
fn add_stack(graph: &mut Graph, model: &Sequential) -> Result<(Vec<ValueInfoProto>, Cursor), OnnxError> {
    let (input, shapes) = match (model.model_input_shape(), model.layer_shapes()) {
        (Some(input), Some(shapes)) => (input, shapes),
        _ => return Err(OnnxError::NotBuilt),
    };
    let mut cur = Cursor { name: "input".to_string(), dims: input.dims().to_vec(), channels_first: false };
    for (layer, shape) in model.layers().iter().zip(shapes) {
        cur = add_layer(graph, layer.as_ref(), cur, shape.dims())?;
    }
    // A model that starts with an Embedding reads token ids.
    let ids = model.layers().first().is_some_and(|l| l.input_ids_limit().is_some());
    let elem = if ids { proto::INT64 } else { proto::FLOAT };
    Ok((vec![graph::typed_value_info("input", input.dims(), elem)], cur))
}

/// Appends `layer`'s nodes reading `cur`; returns the value the next layer reads.
fn add_layer(graph: &mut Graph, layer: &dyn Layer, cur: Cursor, out_dims: &[usize]) -> Result<Cursor, OnnxError> {
    match layer.class_name() {
        "Dropout" => Ok(cur),
        "Dense" => dense::export(graph, layer, cur, out_dims),
        // Softmax runs over the last axis of Keras' layout: back to channels-last first.
        "Activation" => {
            let cur = graph.channels_last(cur, layer.name());
            let out = dense::activation(graph, layer.name(), layer.activation(), cur.name);
            Ok(Cursor { name: out, dims: out_dims.to_vec(), channels_first: false })
        }
        "Flatten" => Ok(reshape::flatten(graph, layer, cur, out_dims)),
        "Reshape" => Ok(reshape::reshape(graph, layer, cur, out_dims)),
        "Conv1D" | "Conv2D" => {
            let cfg = config(layer)?;
            let geometry = (pair(&cfg, "kernel_size", 1)?, pair(&cfg, "strides", 1)?, pair(&cfg, "dilation_rate", 1)?);
            conv::conv(graph, layer, cur, out_dims, (geometry.0, geometry.1, geometry.2, padding(&cfg)?))
        }
        "MaxPooling1D" | "MaxPooling2D" | "AveragePooling1D" | "AveragePooling2D" => {
            let cfg = config(layer)?;
            let pool = pair(&cfg, "pool_size", 2)?;
            let strides = if cfg["strides"].is_null() { pool } else { pair(&cfg, "strides", 1)? };
            let max = layer.class_name().starts_with("Max");
            conv::pool(graph, layer, cur, out_dims, (pool, strides, padding(&cfg)?), max)
        }
        "GlobalAveragePooling1D" | "GlobalAveragePooling2D" => Ok(conv::global(graph, layer, cur, out_dims, false)),
        "GlobalMaxPooling1D" | "GlobalMaxPooling2D" => Ok(conv::global(graph, layer, cur, out_dims, true)),
        "BatchNormalization" => norm::batch_normalization(graph, layer, cur),
        "LayerNormalization" => norm::layer_normalization(graph, layer, cur),
        "Normalization" => norm::standardize(graph, layer, cur),
        "Embedding" => Ok(recurrent::embedding(graph, layer, cur, out_dims)),
        "SimpleRNN" | "LSTM" | "GRU" => recurrent::recurrent(graph, layer, cur, out_dims),
        other => Err(OnnxError::unsupported(
            layer,
            format!(
                "`{other}` layers are not exported (Dense, Dropout, Flatten, Reshape, convolution, pooling, normalization, Embedding and recurrent layers are, and merge layers in Functional models)"
            ),
        )),
    }
}

/// The layer's own configuration (its serialized form): the one source of its arguments.
fn config(layer: &dyn Layer) -> Result<serde_json::Value, OnnxError> {
    serde_json::to_value(layer).map_err(|e| OnnxError::unsupported(layer, format!("unreadable configuration: {e}")))
}

/// A window argument as `[h, w]`: a 2-D layer's pair, or a 1-D layer's number as `[1, n]`
/// (`default` when absent).
fn pair(cfg: &serde_json::Value, key: &str, default: usize) -> Result<[usize; 2], OnnxError> {
    let size = |v: &serde_json::Value| v.as_u64().map(|n| n as usize);
    let bad = || OnnxError::Unsupported {
        layer: cfg["name"].as_str().unwrap_or_default().to_string(),
        class: cfg["type"].as_str().unwrap_or_default().to_string(),
        message: format!("argument `{key}` = {} is not a size", cfg[key]),
    };
    match &cfg[key] {
        serde_json::Value::Null => Ok([1, default]),
        serde_json::Value::Array(v) => match v[..] {
            [ref a, ref b] => Ok([size(a).ok_or_else(bad)?, size(b).ok_or_else(bad)?]),
            _ => Err(bad()),
        },
        v => Ok([1, size(v).ok_or_else(bad)?]),
    }
}

fn padding(cfg: &serde_json::Value) -> Result<kiln_tensor::Padding, OnnxError> {
    serde_json::from_value(cfg["padding"].clone()).map_err(|e| OnnxError::Unsupported {
        layer: cfg["name"].as_str().unwrap_or_default().to_string(),
        class: cfg["type"].as_str().unwrap_or_default().to_string(),
        message: format!("argument `padding`: {e}"),
    })
}
