//! The wiring of a model's layers: which input or earlier layer each layer reads. A
//! `Sequential` stack is the chain `input → layer 0 → layer 1 → …`; a Functional model
//! (built with [`Functional`]) is any graph of layers with one or more inputs and one
//! output (Keras' `keras.Model(inputs, outputs)`).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Where a layer reads a tensor: a model input or an earlier layer's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// The model's `k`-th input.
    Input(usize),
    /// The output of the model's `i`-th layer (always an earlier one).
    Layer(usize),
}

/// One input of a Functional model: Keras' `InputLayer` name and the sample shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphInput {
    /// The input's name (`input_layer`, `input_layer_1`, …).
    pub name: String,
    /// One sample's shape, batch excluded (`[28, 28, 1]`).
    pub shape: Vec<usize>,
}

/// A Functional model's graph: its inputs and, for each layer in the model's order (a
/// topological one: a layer reads only inputs and earlier layers), what it reads. The last
/// layer is the output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// The model's inputs, in `fit([x₀, x₁, …])` order.
    pub inputs: Vec<GraphInput>,
    /// For layer `i`, the tensors it consumes (one, or several for a merge layer).
    pub inbound: Vec<Vec<Source>>,
}

/// The wiring of a chain of `layers` layers: each reads the one before, the first the input.
pub(crate) fn chain(layers: usize) -> Vec<Vec<Source>> {
    (0..layers).map(|i| vec![if i == 0 { Source::Input(0) } else { Source::Layer(i - 1) }]).collect()
}

/// A tensor of a [`Functional`] model under construction: a model input or a layer's
/// output, handed to the next [`apply`](Functional::apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node(pub(crate) Source);

/// Builds a Functional model (Keras' `keras.Model(inputs, outputs)`): declare inputs,
/// apply layers to earlier nodes (a node may feed several layers), merge nodes with
/// `Add`, `Concatenate`, …, then make the [`model`](Functional::model) of one output.
///
/// ```
/// use kiln_layers::{Activation, Add, Dense};
/// use kiln_trainer::Functional;
///
/// let mut g = Functional::new();
/// let x = g.input([10]);
/// let h = g.apply(Dense::new(16).activation(Activation::Relu), x);
/// let shortcut = g.apply(Dense::new(16).use_bias(false), x);
/// let sum = g.merge(Add::new(), &[h, shortcut]);
/// let out = g.apply(Dense::new(3).activation(Activation::Softmax), sum);
/// let model = g.model(out)?;
/// assert_eq!(model.param_count(), 176 + 160 + 51);
/// # Ok::<(), kiln_trainer::TrainError>(())
/// ```
#[derive(Debug, Default)]
pub struct Functional {
    name: Option<String>,
    seed: u64,
    graph: Graph,
    layers: Vec<Box<dyn kiln_layers::Layer>>,
    /// Inputs named by [`Functional::input`] so far (named ones do not count, as in Keras'
    /// `uniquify`).
    unnamed_inputs: usize,
}

impl Functional {
    /// An empty graph; the model will be named `functional`, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the model's name (`functional` by default).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the seed of the model's random streams (initial weights, shuffling, dropout).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Declares an input taking samples of shape `dims` (Keras' `keras.Input(shape=…)`),
    /// named `input_layer`, `input_layer_1`, … in declaration order, counting only the
    /// inputs named this way (Keras' `uniquify` skips the ones given a name).
    pub fn input(&mut self, dims: impl Into<Vec<usize>>) -> Node {
        let k = self.unnamed_inputs;
        self.unnamed_inputs += 1;
        let name = if k == 0 { "input_layer".to_string() } else { format!("input_layer_{k}") };
        self.named_input(name, dims)
    }

    /// Declares an input with a name of its own.
    pub fn named_input(&mut self, name: impl Into<String>, dims: impl Into<Vec<usize>>) -> Node {
        self.graph.inputs.push(GraphInput { name: name.into(), shape: dims.into() });
        Node(Source::Input(self.graph.inputs.len() - 1))
    }

    /// Applies a single-input layer to `x`; returns its output.
    pub fn apply(&mut self, layer: impl kiln_layers::Layer + 'static, x: Node) -> Node {
        self.push(Box::new(layer), &[x])
    }

    /// Applies a merge layer (`Add`, `Concatenate`, …) to `xs`, in order; returns its output.
    pub fn merge(&mut self, layer: impl kiln_layers::Layer + 'static, xs: &[Node]) -> Node {
        self.push(Box::new(layer), xs)
    }

    /// Applies a boxed layer to `xs` (what `.keras` import uses).
    pub fn push(&mut self, layer: Box<dyn kiln_layers::Layer>, xs: &[Node]) -> Node {
        self.layers.push(layer);
        self.graph.inbound.push(xs.iter().map(|n| n.0).collect());
        Node(Source::Layer(self.layers.len() - 1))
    }

    /// The model whose output is `output`, built: its layers named Keras-style where unnamed
    /// and listed in Keras' order (by depth from the inputs, as `model.layers`), the graph
    /// checked (every node from this builder, every layer and input reaching the output,
    /// single-input layers given one input), and the shapes checked layer by layer.
    pub fn model(self, output: Node) -> Result<crate::Sequential, crate::TrainError> {
        let mut model = self.assemble(output, true)?;
        model.build_declared()?;
        Ok(model)
    }

    /// [`model`](Functional::model) without building it, and with the layers in the order
    /// they were applied (not Keras' depth order): what an importer uses, whose weights
    /// file follows its config's order, and which may set a weight budget before building
    /// ([`Sequential::build_declared`](crate::Sequential::build_declared)).
    pub fn model_unbuilt(self, output: Node) -> Result<crate::Sequential, crate::TrainError> {
        self.assemble(output, false)
    }

    fn assemble(self, output: Node, keras_order: bool) -> Result<crate::Sequential, crate::TrainError> {
        let Self { name, seed, graph, layers, .. } = self;
        let out = match output.0 {
            Source::Layer(i) if i < layers.len() => i,
            Source::Layer(i) => return Err(config(format!("the output node (layer {i}) is not from this graph"))),
            Source::Input(k) => {
                return Err(config(format!(
                    "the output is input `{}` itself: apply at least one layer",
                    graph.inputs.get(k).map_or("?", |i| i.name.as_str())
                )));
            }
        };
        check_wiring(&graph, &layers)?;
        // Unnamed layers are named in the order they were applied (Keras names a layer when
        // it is made), before any reordering; the names serve the messages below too.
        let mut namer = crate::Sequential::new();
        layers.into_iter().for_each(|l| namer.push(l));
        let layers = std::mem::take(&mut namer.layers);
        let (graph, layers, out) = if keras_order { in_keras_order(graph, layers, out) } else { (graph, layers, out) };
        let mut model = crate::Sequential::new().seed(seed).name(name.unwrap_or_else(|| "functional".into()));
        layers.into_iter().for_each(|l| model.push(l));
        check_reach(&graph, model.layers(), out)?;
        model.set_graph(graph)?;
        Ok(model)
    }
}

fn config(message: String) -> crate::TrainError {
    crate::TrainError::Config(format!("Functional model: {message}"))
}

/// Refuses wiring that is not a graph of this builder: a source that is not an earlier
/// layer or a declared input, a single-input layer given several inputs, a merge layer
/// given none.
pub(crate) fn check_wiring(graph: &Graph, layers: &[Box<dyn kiln_layers::Layer>]) -> Result<(), crate::TrainError> {
    if graph.inputs.is_empty() {
        return Err(config("no input: declare one with Functional::input".into()));
    }
    for (i, (sources, layer)) in graph.inbound.iter().zip(layers).enumerate() {
        let label = || {
            if layer.name().is_empty() {
                format!("#{i} ({})", layer.class_name())
            } else {
                format!("`{}`", layer.name())
            }
        };
        for s in sources {
            let ok = match *s {
                Source::Input(k) => k < graph.inputs.len(),
                Source::Layer(j) => j < i,
            };
            if !ok {
                return Err(config(format!(
                    "layer {} reads a node that is not an earlier node of this graph",
                    label()
                )));
            }
        }
        match (layer.as_merge().is_some(), sources.len()) {
            (false, 1) => {}
            (false, n) => {
                return Err(config(format!(
                    "layer {} ({}) takes one input, not {n}: use Functional::apply",
                    label(),
                    layer.class_name()
                )));
            }
            (true, 0) => return Err(config(format!("merge layer {} has no input", label()))),
            (true, _) => {}
        }
    }
    Ok(())
}

/// Refuses, by name, a layer or an input the output (layer `out`) does not depend on:
/// nothing would train it, and Keras leaves it out of the model.
pub(crate) fn check_reach(
    graph: &Graph,
    layers: &[Box<dyn kiln_layers::Layer>],
    out: usize,
) -> Result<(), crate::TrainError> {
    if out >= layers.len() || out >= graph.inbound.len() {
        return Err(config("no layers: apply at least one".into()));
    }
    let reach = reaching(&graph.inbound, graph.inputs.len(), out);
    let unreached: Vec<&str> = layers.iter().zip(&reach.layers).filter(|(_, r)| !**r).map(|(l, _)| l.name()).collect();
    if !unreached.is_empty() {
        return Err(config(format!(
            "layer(s) `{}` do not reach the output: remove them, or bring them into the output's path",
            unreached.join("`, `")
        )));
    }
    match reach.inputs.iter().position(|r| !r) {
        Some(k) => Err(config(format!("input `{}` does not reach the output", graph.inputs[k].name))),
        None => Ok(()),
    }
}

/// Which layers and inputs the output depends on.
struct Reach {
    layers: Vec<bool>,
    inputs: Vec<bool>,
}

fn reaching(inbound: &[Vec<Source>], inputs: usize, out: usize) -> Reach {
    let mut reach = Reach { layers: vec![false; inbound.len()], inputs: vec![false; inputs] };
    reach.layers[out] = true;
    for i in (0..=out).rev() {
        if !reach.layers[i] {
            continue;
        }
        for s in &inbound[i] {
            match *s {
                Source::Layer(j) => reach.layers[j] = true,
                Source::Input(k) => reach.inputs[k] = true,
            }
        }
    }
    reach
}

/// Keras' order of a graph's operations, inputs included (`Functional._operations`, from
/// `map_graph` in `keras/src/ops/function.py`): by depth (the longest path to the output)
/// from deepest, ties by first visit in a depth-first walk from the output through each
/// node's inputs in order. Only what the output depends on is listed.
pub(crate) fn keras_order(inbound: &[Vec<Source>], out: usize) -> Vec<Source> {
    // The walk, with an explicit stack (a deep stack of layers must not overflow ours).
    let mut first_visit: HashMap<Source, usize> = HashMap::new();
    let mut finished: HashSet<Source> = HashSet::new();
    let mut post_order = Vec::new();
    let mut stack: Vec<(Source, usize)> = vec![(Source::Layer(out), 0)];
    first_visit.insert(Source::Layer(out), 0);
    while let Some(&mut (node, ref mut next)) = stack.last_mut() {
        let parents: &[Source] = match node {
            Source::Layer(i) => &inbound[i],
            Source::Input(_) => &[],
        };
        match parents.get(*next) {
            Some(&parent) => {
                *next += 1;
                if !finished.contains(&parent) {
                    let n = first_visit.len();
                    first_visit.entry(parent).or_insert(n);
                    stack.push((parent, 0));
                }
            }
            None => {
                stack.pop();
                finished.insert(node);
                post_order.push(node);
            }
        }
    }
    let mut depth: HashMap<Source, usize> = HashMap::new();
    for &node in post_order.iter().rev() {
        let d = *depth.entry(node).or_insert(0);
        if let Source::Layer(i) = node {
            for &parent in &inbound[i] {
                let p = depth.entry(parent).or_insert(0);
                *p = (*p).max(d + 1);
            }
        }
    }
    let mut order = post_order;
    order.sort_by_key(|s| (std::cmp::Reverse(depth[s]), first_visit[s]));
    order
}

/// The graph with its layers in Keras' order ([`keras_order`]), so that summaries, weight
/// lists and the optimizer's slots list them as Keras does; returns the output's new index.
fn in_keras_order(
    graph: Graph,
    layers: Vec<Box<dyn kiln_layers::Layer>>,
    out: usize,
) -> (Graph, Vec<Box<dyn kiln_layers::Layer>>, usize) {
    let mut order: Vec<usize> = keras_order(&graph.inbound, out)
        .into_iter()
        .filter_map(|s| match s {
            Source::Layer(i) => Some(i),
            Source::Input(_) => None,
        })
        .collect();
    // Layers the output does not depend on keep their place after it; `check_reach` names them.
    let listed: HashSet<usize> = order.iter().copied().collect();
    order.extend((0..layers.len()).filter(|i| !listed.contains(i)));
    let mut new_index = vec![0; layers.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let remap = |s: &Source| match *s {
        Source::Layer(j) => Source::Layer(new_index[j]),
        input => input,
    };
    let inbound = order.iter().map(|&old| graph.inbound[old].iter().map(remap).collect()).collect();
    let mut slots: Vec<Option<Box<dyn kiln_layers::Layer>>> = layers.into_iter().map(Some).collect();
    let layers = order.iter().map(|&old| slots[old].take().expect("each layer once")).collect();
    (Graph { inputs: graph.inputs, inbound }, layers, new_index[out])
}
