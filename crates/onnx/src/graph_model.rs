//! Functional models (graphs of layers) as ONNX. Layers are exported once each, in the
//! model's order (a topological one), each reading the values of the inputs and layers it
//! reads: a layer feeding several layers is one ONNX value they all read. Model input `k`
//! is a graph input named as the model names it.

use std::collections::HashSet;

use kiln_layers::Layer;
use kiln_trainer::{Sequential, Source};

use crate::graph::{Cursor, Graph, typed_value_info};
use crate::proto::{FLOAT, INT64, ValueInfoProto};
use crate::{OnnxError, add_layer, merge};

/// Appends the layers of `model`, a Functional model of graph `wiring`; returns the
/// graph's inputs and the value of the output (the last layer).
pub(crate) fn add_layers(
    graph: &mut Graph,
    model: &Sequential,
    wiring: &kiln_trainer::Graph,
) -> Result<(Vec<ValueInfoProto>, Cursor), OnnxError> {
    let (Some(shapes), Some(sources), Some(input_shapes)) =
        (model.layer_shapes(), model.layer_sources(), model.model_input_shapes())
    else {
        return Err(OnnxError::NotBuilt);
    };
    let inputs: Vec<Cursor> = wiring
        .inputs
        .iter()
        .zip(input_shapes)
        .map(|(i, s)| Cursor { name: i.name.clone(), dims: s.dims().to_vec(), channels_first: false })
        .collect();
    let infos = input_infos(model, sources, &inputs)?;
    let mut outputs: Vec<Cursor> = Vec::with_capacity(sources.len());
    for ((layer, reads), shape) in model.layers().iter().zip(sources).zip(shapes) {
        let read = |s: &Source| match *s {
            Source::Input(k) => inputs[k].clone(),
            Source::Layer(j) => outputs[j].clone(),
        };
        let out = match layer.as_merge() {
            Some(_) => merge::export(graph, layer.as_ref(), reads.iter().map(read).collect(), shape.dims())?,
            None => add_layer(graph, layer.as_ref(), read(&reads[0]), shape.dims())?,
        };
        outputs.push(out);
    }
    check_input_names(graph, &inputs)?;
    let out = outputs.pop().ok_or(OnnxError::NotBuilt)?;
    Ok((infos, out))
}

/// Each input's declaration: int64 token ids when Embedding layers read it (as a stack's
/// first Embedding does), else float32. An input read both as ids and as values is
/// refused, naming the layer reading values: no one ONNX element type serves both.
fn input_infos(
    model: &Sequential,
    sources: &[Vec<Source>],
    inputs: &[Cursor],
) -> Result<Vec<ValueInfoProto>, OnnxError> {
    let mut infos = Vec::with_capacity(inputs.len());
    for (k, input) in inputs.iter().enumerate() {
        let readers: Vec<&dyn Layer> = model
            .layers()
            .iter()
            .zip(sources)
            .filter(|(_, reads)| reads.contains(&Source::Input(k)))
            .map(|(l, _)| l.as_ref())
            .collect();
        let ids = readers.iter().any(|l| l.input_ids_limit().is_some());
        if let Some(values) = readers.iter().find(|l| ids && l.input_ids_limit().is_none()) {
            return Err(OnnxError::unsupported(
                *values,
                format!("reads input `{}` as values, which an Embedding reads as int64 token ids", input.name),
            ));
        }
        infos.push(typed_value_info(&input.name, &input.dims, if ids { INT64 } else { FLOAT }));
    }
    Ok(infos)
}

/// Refuses an input named like a value the layers write, or `output`: ONNX names each
/// value once.
fn check_input_names(graph: &Graph, inputs: &[Cursor]) -> Result<(), OnnxError> {
    let nodes = graph.proto.node.iter().flat_map(|n| n.output.iter().map(String::as_str));
    let weights = graph.proto.initializer.iter().filter_map(|t| t.name.as_deref());
    let written: HashSet<&str> = nodes.chain(weights).chain(["output"]).collect();
    match inputs.iter().find(|i| written.contains(i.name.as_str())) {
        Some(input) => Err(OnnxError::Unsupported {
            layer: input.name.clone(),
            class: "InputLayer".into(),
            message: "the input's name is also the name of a value the exported graph writes: rename the input".into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use kiln_layers::{Activation, Add, BatchNormalization, Conv2D, Dense, Flatten, Maximum};
    use kiln_tensor::Padding;
    use kiln_trainer::Functional;

    use crate::proto::NodeProto;

    /// The nodes of a residual convnet whose first convolution feeds a convolution and two
    /// merges.
    fn residual_nodes() -> Vec<NodeProto> {
        let mut g = Functional::new();
        let x = g.input([5, 4, 2]);
        let stem = g.apply(Conv2D::new(3, [3, 3]).padding(Padding::Same).activation(Activation::Relu), x);
        let conv = g.apply(Conv2D::new(3, [3, 3]).padding(Padding::Same), stem);
        let normalized = g.apply(BatchNormalization::new(), conv);
        let residual = g.merge(Add::new(), &[normalized, stem, stem]);
        let gated = g.merge(Maximum::new(), &[residual, stem]);
        let flat = g.apply(Flatten::new(), gated);
        let out = g.apply(Dense::new(2), flat);
        let model = g.model(out).unwrap();
        crate::to_model_proto(&model).unwrap().graph.unwrap().node
    }

    #[test]
    fn a_layer_feeding_several_is_exported_once_and_transposed_once() {
        let nodes = residual_nodes();
        let op = |name: &str| nodes.iter().filter(|n| n.op_type.as_deref() == Some(name)).count();
        assert_eq!(op("Conv"), 2, "one Conv per convolution layer");
        let stem_to_last =
            nodes.iter().filter(|n| n.op_type.as_deref() == Some("Transpose") && n.input == ["conv2d/relu"]);
        assert_eq!(stem_to_last.count(), 1, "the stem's channels-last copy serves both merges");
        let outputs: Vec<&String> = nodes.iter().flat_map(|n| &n.output).collect();
        assert_eq!(outputs.len(), outputs.iter().collect::<HashSet<_>>().len(), "each value written once");
    }

    #[test]
    fn elementwise_merges_fold_left_to_right_in_binary_nodes() {
        let nodes = residual_nodes();
        let merges: Vec<(&str, &[String])> = nodes
            .iter()
            .filter(|n| n.name.as_deref().is_some_and(|m| m.starts_with("add/") || m.starts_with("maximum/")))
            .filter(|n| n.op_type.as_deref() != Some("Transpose"))
            .map(|n| (n.op_type.as_deref().unwrap(), n.input.as_slice()))
            .collect();
        let stem = "add/input1/to_channels_last".to_string();
        assert_eq!(
            merges,
            [
                ("Add", &["add/input0/to_channels_last".to_string(), stem.clone()][..]),
                ("Add", &["add/add_1".to_string(), stem.clone()][..]),
                ("Max", &["add/add_2".to_string(), stem][..]),
            ]
        );
    }
}
