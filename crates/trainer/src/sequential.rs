//! The `Sequential` model: a stack of layers, built, compiled and trained.

use std::collections::HashMap;

use kiln_layers::{BuildContext, DEFAULT_MAX_WEIGHTS, Layer};

/// Most activation values one batch may hold across the layer outputs by default: 2²⁸
/// (1 GiB of `f32`; training keeps a gradient of each as well). A configuration is only
/// a claim, so this is checked before any buffer is sized; `Sequential::max_activations`
/// raises or lowers it.
pub const DEFAULT_MAX_ACTIVATIONS: usize = 1 << 28;
use kiln_optimizers::{IntoOptimizer, Optimizer};
use kiln_tensor::{Parallelism, Rng, Shape};

use crate::graph::{Graph, Source};
use crate::{History, IntoLoss, IntoMetric, Loss, NamedMetric, NamedTensor, TrainError, Weights};

/// A model of any graph of layers (Keras' `keras.Model`): the same type as
/// [`Sequential`], whose stack is the chain case. Build one with
/// [`Functional`](crate::Functional).
pub type Model = Sequential;

/// A linear stack of layers (Keras `keras.Sequential`), or, built with
/// [`Functional`](crate::Functional), any graph of layers with one or more inputs and one
/// output (Keras' Functional `keras.Model`; [`Model`] names the same type). Both run on
/// one engine: a stack is the graph where each layer reads the one before.
///
/// Build it with [`add`](Sequential::add), [`compile`](Sequential::compile) it with an
/// optimizer, a loss and metrics, then [`fit`](Sequential::fit). Layers are built lazily
/// from the data's width, or from a declared [`input_shape`](Sequential::input_shape) (or
/// explicitly with [`build`](Sequential::build)); all randomness comes from the model's `seed` through named streams (`init`, `shuffle`).
#[derive(Debug)]
pub struct Sequential {
    pub(crate) name: String,
    pub(crate) layers: Vec<Box<dyn Layer>>,
    pub(crate) built: Option<Built>,
    pub(crate) seed: u64,
    pub(crate) compiled: Option<Compiled>,
    pub(crate) par: Parallelism,
    /// Whether a mostly-zero dense input may reach the first layer as its non-zero values
    /// (`nonzeros.rs`).
    pub(crate) zero_skipping: bool,
    pub(crate) max_weights: usize,
    pub(crate) max_activations: usize,
    /// The sample shape declared with `input_shape` (Keras' `Input(shape=…)`), checked
    /// when the model builds.
    pub(crate) declared_input: Option<Vec<usize>>,
    /// A Functional model's graph (`None`: a stack).
    pub(crate) graph: Option<Graph>,
    pub(crate) history: Option<History>,
    /// How many layers of each class `push` has added, so naming the next unnamed one
    /// (`dense_3`) takes constant time, not a scan of every layer.
    class_counts: HashMap<&'static str, usize>,
}

/// What `build` fixed: the inputs' sample shapes, what each layer reads, and each layer's
/// output shape (with its width, `numel`, which the row-per-sample buffers use).
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The first input's sample shape.
    pub input_shape: Shape,
    /// Values per sample over all inputs.
    pub input_width: usize,
    /// Every input's sample shape.
    pub inputs: Vec<Shape>,
    /// For each layer, what it reads (the chain for a stack).
    pub wiring: Vec<Vec<Source>>,
    pub shapes: Vec<Shape>,
    pub widths: Vec<usize>,
}

/// What `compile` fixed: optimizer (with its state), loss and metrics.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub optimizer: Optimizer,
    pub loss: Loss,
    /// The metrics as compiled, under the names their Keras objects carry (`auc` twice
    /// for two AUCs), in Keras' order; what is saved, and what `mode="auto"` looks up.
    pub requested: Vec<NamedMetric>,
    /// The same metrics under their log keys (`auc`, `auc_1`, `weighted_accuracy`).
    pub metrics: Vec<NamedMetric>,
}

impl Compiled {
    /// Compile settings with the log keys worked out from the requested names.
    pub(crate) fn new(optimizer: Optimizer, loss: Loss, metrics: Vec<NamedMetric>) -> Self {
        let requested = crate::named_metric::keras_order(metrics);
        let metrics = crate::named_metric::keras_log_names(requested.clone());
        Self { optimizer, loss, requested, metrics }
    }
}

/// Refuses a metric whose value is not one number (per class or per threshold): each log
/// key holds one number. `compile` and `load` run it.
pub(crate) fn check_scalar(m: &NamedMetric) -> Result<(), TrainError> {
    if m.metric.is_per_class() {
        return Err(TrainError::Config(format!(
            "metric `{}`: average=None (PerClass) gives one score per class, but each log key holds one \
             number; compile it with micro, macro or weighted, or score per class with Metric::standalone()",
            m.name
        )));
    }
    if m.metric.is_per_threshold() {
        return Err(TrainError::Config(format!(
            "metric `{}`: {} thresholds give one value per threshold (Keras' result is a list), but each \
             log key holds one number; compile one metric per threshold, or score them all with \
             Metric::standalone() and result_per_threshold()",
            m.name,
            match &m.metric {
                crate::Metric::Precision { thresholds: Some(ts), .. }
                | crate::Metric::Recall { thresholds: Some(ts), .. } => ts.len(),
                _ => 0,
            }
        )));
    }
    Ok(())
}

/// Checks a loss's options for `fit` and `evaluate`: valid, and reduced to one number
/// (Keras' `reduction=None` leaves a vector, whose gradient is that of its sum but whose
/// logged value and sum with penalties are not defined the same way; use `"sum"`, or
/// [`Loss::call_per_sample`] outside training).
pub(crate) fn check_trainable(loss: Loss) -> Result<(), TrainError> {
    loss.validate()?;
    if loss.reduction() == crate::Reduction::None {
        return Err(TrainError::Config(format!(
            "{}: reduction `none` gives one loss per sample; fit and evaluate need one number (use `sum`, or \
             Loss::call_per_sample on predictions)",
            loss.name()
        )));
    }
    Ok(())
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model named `sequential`, seed 0, on `KILN_THREADS` threads (every core
    /// when it is unset; the results are the same bits on any number).
    pub fn new() -> Self {
        Self {
            name: "sequential".into(),
            layers: Vec::new(),
            built: None,
            seed: 0,
            compiled: None,
            par: Parallelism::from_env(),
            zero_skipping: true,
            max_weights: DEFAULT_MAX_WEIGHTS,
            max_activations: DEFAULT_MAX_ACTIVATIONS,
            declared_input: None,
            graph: None,
            history: None,
            class_counts: HashMap::new(),
        }
    }

    /// Appends a layer (builder style; Keras' name for it).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        self.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer, naming it Keras-style (`dense`, `dense_1`, …) when unnamed:
    /// as Keras' `auto_name`, only unnamed layers take a number, so `Dense(name="a")` then
    /// `Dense()` gives `a`, `dense`. Names must be unique: [`build`](Sequential::build)
    /// refuses duplicates.
    pub fn push(&mut self, mut layer: Box<dyn Layer>) {
        if layer.name().is_empty() {
            let same = self.class_counts.entry(layer.class_name()).or_insert(0);
            let base = crate::names::keras_snake_case(layer.class_name());
            layer.core_mut().name = if *same == 0 { base } else { format!("{base}_{same}") };
            *same += 1;
        }
        self.built = None;
        self.layers.push(layer);
    }

    /// Sets the seed of every random stream (initialisation, shuffling, dropout masks).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the model's name (`sequential` by default).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the most weights the model may declare (default
    /// [`DEFAULT_MAX_WEIGHTS`](kiln_layers::DEFAULT_MAX_WEIGHTS), 2²⁸), checked before
    /// anything is allocated.
    pub fn max_weights(mut self, max_weights: usize) -> Self {
        self.max_weights = max_weights;
        self
    }

    /// Sets the most activation values one batch may hold across the layers' outputs
    /// (default [`DEFAULT_MAX_ACTIVATIONS`], 2²⁸), checked from the planned shapes and the
    /// batch size before any buffer is allocated.
    pub fn max_activations(mut self, max_activations: usize) -> Self {
        self.max_activations = max_activations;
        self
    }

    /// Declares the shape of one input sample, batch excluded, channels last (Keras'
    /// `keras.Input(shape=(28, 28, 1))`): `[784]` for flat rows, `[28, 28, 1]` for grey
    /// images. Input rows then hold `28·28·1` values each, in row-major order. Without it
    /// the model takes flat rows as wide as the data. Checked when the model builds.
    pub fn input_shape(mut self, dims: impl Into<Vec<usize>>) -> Self {
        self.declared_input = Some(dims.into());
        self.built = None;
        self
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The seed.
    pub fn model_seed(&self) -> u64 {
        self.seed
    }

    /// Threads for products and elementwise work: `Parallelism::Sequential` or
    /// `Parallelism::threads(n)` (the same bits either way); overrides `KILN_THREADS`.
    pub fn set_parallelism(&mut self, par: Parallelism) {
        self.par = par;
    }

    /// The parallelism in use.
    pub fn parallelism(&self) -> Parallelism {
        self.par
    }

    /// Whether a dense input that is mostly zeros (MNIST digits: 81 % of pixels) may reach
    /// the first layer as its non-zero values alone, when that layer computes faster so
    /// (on by default; the choice is made per data set from its density and logged at
    /// debug level; [`Sequential::skips_zeros`] says which). A zero adds nothing to a
    /// product of finite weights, and each term is one fused multiply-add as in the dense
    /// products, so at most the order of additions changes: the results may differ from
    /// the dense products in the last bits (and an infinite weight meets no `0·∞ = NaN`).
    /// The density is sampled from the data
    /// each call is given, so `predict` on a few rows may take the other path than on the
    /// whole set. Turn it off to get the dense products' bits.
    pub fn set_zero_skipping(&mut self, on: bool) {
        self.zero_skipping = on;
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, mutably (e.g. to set a parameter by hand).
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&dyn Layer> {
        self.layers.iter().find(|l| l.name() == name).map(|l| l.as_ref())
    }

    /// The input width (values per sample) the model was built for.
    pub fn input_width(&self) -> Option<usize> {
        self.built.as_ref().map(|b| b.input_width)
    }

    /// The sample shape the model was built for (`[784]`, `[28, 28, 1]`).
    pub fn model_input_shape(&self) -> Option<&Shape> {
        self.built.as_ref().map(|b| &b.input_shape)
    }

    /// The output sample shape of each layer (after `build`).
    pub fn layer_shapes(&self) -> Option<&[Shape]> {
        self.built.as_ref().map(|b| b.shapes.as_slice())
    }

    /// The output width of each layer (after `build`).
    pub fn layer_widths(&self) -> Option<&[usize]> {
        self.built.as_ref().map(|b| b.widths.as_slice())
    }

    /// The output width (after `build`).
    pub fn output_width(&self) -> Option<usize> {
        self.built.as_ref().and_then(|b| b.widths.last().copied())
    }

    /// The history of the last `fit`, kept even when it stopped with an error (Keras'
    /// `model.history`).
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// Builds every layer for rows of `input_width` values: samples of the declared
    /// [`input_shape`](Sequential::input_shape) (whose values must number `input_width`),
    /// or flat rows `[input_width]` without one. See [`build_shape`](Sequential::build_shape).
    pub fn build(&mut self, input_width: usize) -> Result<(), TrainError> {
        if let Some(shapes) = self.graph_input_shapes()? {
            let expected: usize = shapes.iter().map(Shape::numel).sum();
            if expected != input_width {
                return Err(TrainError::WidthMismatch { data: "build", expected, found: input_width });
            }
            return self.build_inputs(&shapes);
        }
        let shape = self.shape_for(input_width, "build")?;
        self.build_shape(&shape)
    }

    /// Builds a model read from a config: from its graph's inputs, or for `input` (a stack
    /// whose config states no shape stays unbuilt).
    pub(crate) fn build_parsed(&mut self, input: Option<&Shape>) -> Result<(), TrainError> {
        match (self.graph_input_shapes()?, input) {
            (Some(shapes), _) => self.build_inputs(&shapes),
            (None, Some(shape)) => self.build_shape(shape),
            (None, None) => Ok(()),
        }
    }

    /// Checks a graph read from a file against this model's layers, as [`Functional`]
    /// checks one it builds.
    ///
    /// [`Functional`]: crate::Functional
    pub(crate) fn check_graph_config(&self, graph: &Graph) -> Result<(), TrainError> {
        if graph.inbound.len() != self.layers.len() {
            return Err(TrainError::Config(format!(
                "the Functional graph wires {} layers, the config lists {}",
                graph.inbound.len(),
                self.layers.len()
            )));
        }
        crate::graph::check_wiring(graph, &self.layers)?;
        crate::graph::check_reach(graph, &self.layers, self.layers.len().saturating_sub(1))?;
        crate::names::check_input_names(graph, &self.layers)
    }

    /// Builds every layer for samples of `input` shape, drawing initial weights from the
    /// `init` stream of the model's seed. Rebuilding re-initialises the weights (and the
    /// optimizer's state). Refuses duplicate layer names, shapes a layer cannot take, and
    /// models larger than [`max_weights`](Sequential::max_weights).
    pub fn build_shape(&mut self, input: &Shape) -> Result<(), TrainError> {
        self.build_inputs(std::slice::from_ref(input))
    }

    /// Builds every layer for inputs of these sample shapes (one per model input), each
    /// layer from the shapes of what it reads; see [`build_shape`](Sequential::build_shape).
    pub(crate) fn build_inputs(&mut self, inputs: &[Shape]) -> Result<(), TrainError> {
        if self.layers.is_empty() {
            return Err(TrainError::NoLayers);
        }
        self.check_names()?;
        let wiring = self.wiring()?;
        if let Some(g) = &self.graph {
            let declared: Vec<&[usize]> = g.inputs.iter().map(|i| i.shape.as_slice()).collect();
            let given: Vec<&[usize]> = inputs.iter().map(Shape::dims).collect();
            if declared != given {
                return Err(TrainError::Input(format!(
                    "the Functional model's inputs take samples of shapes {declared:?}, not {given:?}"
                )));
            }
        } else {
            self.check_planned_weights(&inputs[0])?;
        }
        let mut rng = Rng::stream(self.seed, "init");
        let mut ctx = BuildContext::new(&mut rng, self.max_weights);
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.layers.len());
        // In a stack a merge layer gets one tensor, which it refuses (Keras: "A merge layer
        // should be called on a list of inputs") through its single-input `build`.
        // Token ids are checked (whole, in range) where they enter the model: an Embedding
        // must read a model input, directly or through layers that only move values
        // (Flatten, Reshape); fed values some layer computed, it would index past its table.
        for (i, (layer, sources)) in self.layers.iter().zip(&wiring).enumerate() {
            if layer.input_ids_limit().is_none() {
                continue;
            }
            if let Some(j) = crate::ids::computing_source(&self.layers, &wiring, sources) {
                return Err(TrainError::Config(format!(
                    "layer #{i} `{}` ({}) reads values layer #{j} `{}` ({}) computes: it takes token ids, which \
                     kiln checks where they enter the model, so it must read a model input (through Flatten \
                     or Reshape at most)",
                    layer.name(),
                    layer.class_name(),
                    self.layers[j].name(),
                    self.layers[j].class_name()
                )));
            }
        }
        let graph = self.graph.is_some();
        for (layer, sources) in self.layers.iter_mut().zip(&wiring) {
            ctx.set_layer(layer.name());
            let shape_of = |s: &Source| match *s {
                Source::Input(k) => inputs[k].clone(),
                Source::Layer(j) => shapes[j].clone(),
            };
            let out = match layer.as_merge_mut().filter(|_| graph) {
                Some(merge) => merge.merge_build(&sources.iter().map(shape_of).collect::<Vec<_>>())?,
                None => {
                    let input = shape_of(&sources[0]);
                    layer.build(&input, &mut ctx)?
                }
            };
            // `build` makes fresh parameters: a frozen layer's must be frozen too.
            let trainable = layer.is_trainable();
            layer.set_trainable(trainable);
            shapes.push(out);
        }
        let widths = shapes.iter().map(Shape::numel).collect();
        self.built = Some(Built {
            input_shape: inputs[0].clone(),
            input_width: inputs.iter().map(Shape::numel).sum(),
            inputs: inputs.to_vec(),
            wiring,
            shapes,
            widths,
        });
        if let Some(c) = &mut self.compiled {
            c.optimizer.reset();
        }
        Ok(())
    }

    /// What each layer reads: the graph's wiring, or the chain for a stack. A layer added
    /// to a Functional model with `add`/`push` (which extend a stack) has no wiring.
    fn wiring(&self) -> Result<Vec<Vec<Source>>, TrainError> {
        let Some(g) = &self.graph else { return Ok(crate::graph::chain(self.layers.len())) };
        if let Some(extra) = self.layers.get(g.inbound.len()) {
            return Err(TrainError::Config(format!(
                "layer `{}` was added to a Functional model with add/push, which extend a Sequential stack;                  apply it in the graph with Functional::apply",
                extra.name()
            )));
        }
        if g.inbound.len() != self.layers.len() {
            return Err(TrainError::Config(format!(
                "the Functional graph wires {} layers, the model has {}",
                g.inbound.len(),
                self.layers.len()
            )));
        }
        Ok(g.inbound.clone())
    }

    /// Makes this model the graph `graph` over its layers (in order), not built yet.
    pub(crate) fn set_graph(&mut self, graph: Graph) -> Result<(), TrainError> {
        crate::names::check_input_names(&graph, &self.layers)?;
        self.graph = Some(graph);
        self.declared_input = None;
        self.built = None;
        Ok(())
    }

    /// Builds for the inputs the model declares: a Functional model's, or a stack's
    /// [`input_shape`](Sequential::input_shape) (an error names what is missing).
    pub fn build_declared(&mut self) -> Result<(), TrainError> {
        if let Some(shapes) = self.graph_input_shapes()? {
            return self.build_inputs(&shapes);
        }
        let dims = self.declared_input.clone().ok_or_else(|| {
            TrainError::Config("no declared input shape to build for (set input_shape, or build(width))".into())
        })?;
        let shape = Shape::new(dims).map_err(|e| TrainError::Config(format!("input_shape: {e}")))?;
        self.build_shape(&shape)
    }

    /// A Functional model's graph (`None` for a stack).
    pub fn graph(&self) -> Option<&Graph> {
        self.graph.as_ref()
    }

    /// The sample shape of every input (after `build`): one for a stack.
    pub fn model_input_shapes(&self) -> Option<&[Shape]> {
        self.built.as_ref().map(|b| b.inputs.as_slice())
    }

    /// What each layer reads (after `build`).
    pub fn layer_sources(&self) -> Option<&[Vec<Source>]> {
        self.built.as_ref().map(|b| b.wiring.as_slice())
    }

    /// The sample shape rows of `width` values stand for: the declared input shape (its
    /// values must number `width`), else a flat row.
    fn shape_for(&self, width: usize, data: &'static str) -> Result<Shape, TrainError> {
        match &self.declared_input {
            Some(dims) => {
                let shape = Shape::new(dims.clone()).map_err(|e| TrainError::Config(format!("input_shape: {e}")))?;
                if shape.numel() != width {
                    return Err(TrainError::Input(format!(
                        "{data}: rows of {width} values do not hold samples of the declared input shape {dims:?}                          ({} values each)",
                        shape.numel()
                    )));
                }
                Ok(shape)
            }
            None if width == 0 => Err(TrainError::Input(format!("{data}: rows of 0 values"))),
            None => Ok(Shape::flat(width)),
        }
    }

    /// Sums what the layers say they will create (as far as they say) and refuses a model
    /// past its weight budget before any layer allocates.
    pub(crate) fn check_planned_weights(&self, input: &Shape) -> Result<(), TrainError> {
        let (mut total, mut shape) = (0usize, input.clone());
        for layer in &self.layers {
            let Some((weights, out)) = layer.planned(&shape) else { return Ok(()) };
            total = total.saturating_add(weights);
            if total > self.max_weights {
                return Err(TrainError::Layer(kiln_layers::LayerError::Config {
                    layer: layer.name().to_string(),
                    message: format!(
                        "the layers up to this one declare {total} weights, past the {} the model may hold \
                         (raise it with Sequential::max_weights)",
                        self.max_weights
                    ),
                }));
            }
            shape = out;
        }
        Ok(())
    }

    /// Refuses, naming the layer, a batch of `batch` samples whose layer outputs would
    /// hold more than [`max_activations`](Sequential::max_activations) values in all —
    /// before a buffer is sized. `fit`, `evaluate` and `predict` call it once built; it
    /// is public so a configuration can be vetted before any data is loaded.
    pub fn check_activations(&self, batch: usize) -> Result<(), TrainError> {
        let Some(built) = &self.built else { return Ok(()) };
        let mut total = built.input_width.saturating_mul(batch);
        for ((layer, width), shape) in self.layers.iter().zip(&built.widths).zip(&built.shapes) {
            total = total.saturating_add(width.saturating_mul(batch));
            if total > self.max_activations {
                return Err(TrainError::Layer(kiln_layers::LayerError::Config {
                    layer: layer.name().to_string(),
                    message: format!(
                        "its output {shape} for a batch of {batch} samples takes the layer outputs up to \
                         here past the {} activation values the model may hold (lower batch_size or raise \
                         Sequential::max_activations)",
                        self.max_activations
                    ),
                }));
            }
        }
        Ok(())
    }

    /// Errors on the first layer name `load` could not use: empty, too long, or shared
    /// with an earlier layer (linear time).
    pub(crate) fn check_names(&self) -> Result<(), TrainError> {
        crate::names::check_layer_names(&self.layers)
    }

    /// Builds for rows of `width` values unless already built for them; errors on a
    /// different width.
    pub(crate) fn ensure_built(&mut self, width: usize, data: &'static str) -> Result<(), TrainError> {
        match self.input_width() {
            Some(w) if w == width => Ok(()),
            Some(w) => Err(TrainError::WidthMismatch { data, expected: w, found: width }),
            None => match self.graph_input_shapes()? {
                Some(shapes) => {
                    let expected: usize = shapes.iter().map(Shape::numel).sum();
                    if expected != width {
                        return Err(TrainError::WidthMismatch { data, expected, found: width });
                    }
                    self.build_inputs(&shapes)
                }
                None => {
                    let shape = self.shape_for(width, data)?;
                    self.build_shape(&shape)
                }
            },
        }
    }

    /// The sample shapes a Functional model's inputs declare (`None` for a stack).
    fn graph_input_shapes(&self) -> Result<Option<Vec<Shape>>, TrainError> {
        let Some(g) = &self.graph else { return Ok(None) };
        let shapes = g
            .inputs
            .iter()
            .map(|i| Shape::new(i.shape.clone()).map_err(|e| TrainError::Config(format!("input `{}`: {e}", i.name))));
        shapes.collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// Makes the model ready for `x` in batches of `batch_size`: built for its width (see
    /// [`ensure_built`](Sequential::ensure_built)), sparse rows only into a flat input, and
    /// a batch's activations within budget.
    pub(crate) fn ready_for(
        &mut self,
        x: crate::FeaturesRef<'_>,
        batch_size: usize,
        data: &'static str,
    ) -> Result<(), TrainError> {
        // Windows state their sample shape; a model that declared none takes it.
        if self.built.is_none() && self.declared_input.is_none() {
            self.declared_input = x.sample_dims();
        }
        self.check_input_count(x, data)?;
        self.ensure_built(x.width(), data)?;
        self.check_features(x, data)?;
        self.check_activations(batch_size.min(x.len()))
    }

    /// Refuses features that do not hold one part per model input.
    pub(crate) fn check_input_count(&self, x: crate::FeaturesRef<'_>, data: &'static str) -> Result<(), TrainError> {
        let (parts, inputs) = (x.parts().len(), self.graph.as_ref().map_or(1, |g| g.inputs.len()));
        if parts == inputs {
            return Ok(());
        }
        Err(TrainError::Input(format!(
            "{data}: {parts} input array(s) for a model of {inputs} input(s){}",
            self.graph.as_ref().map_or(String::new(), |g| format!(
                " ({})",
                g.inputs.iter().map(|i| format!("`{}` {:?}", i.name, i.shape)).collect::<Vec<_>>().join(", ")
            ))
        )))
    }

    /// Checks each input's features against the built model, as `ready_for` does for the
    /// training data (and `fit` for its validation data): one part per input, each as wide
    /// as its samples, sparse rows only into a flat input, values (not ids or sparse rows)
    /// into a merge layer, token ids only into an Embedding and within its `input_dim`.
    pub(crate) fn check_features(&self, x: crate::FeaturesRef<'_>, data: &'static str) -> Result<(), TrainError> {
        self.check_input_count(x, data)?;
        let built = self.built.as_ref().ok_or(TrainError::NotBuilt("checking the inputs"))?;
        for (k, (part, shape)) in x.parts().iter().zip(&built.inputs).enumerate() {
            let input = |what: &str| match &self.graph {
                Some(g) => format!("input `{}` ({what})", g.inputs[k].name),
                None => format!("the model's input ({what})"),
            };
            if part.width() != shape.numel() {
                return Err(TrainError::Input(format!(
                    "{data}: rows of {} values for {}",
                    part.width(),
                    input(&format!("samples of shape {shape}, {} values", shape.numel()))
                )));
            }
            if matches!(part, crate::FeaturesRef::Sparse(_)) && shape.rank() > 1 {
                return Err(TrainError::Input(format!(
                    "{data}: sparse (CSR) rows feed only a flat input, not {}",
                    input(&format!("shape {:?}", shape.dims()))
                )));
            }
            let readers = built.wiring.iter().enumerate().filter(|(_, s)| s.contains(&Source::Input(k)));
            for (i, _) in readers {
                let layer = self.layers[i].as_ref();
                let takes_values = layer.as_merge().is_none() && layer.input_ids_limit().is_none();
                if matches!(part, crate::FeaturesRef::Sparse(_)) && takes_values && !layer.reads_sparse() {
                    return Err(TrainError::Input(format!(
                        "{data}: layer `{}` ({}) reads {} but takes dense values only; densify the rows \
                         (CsrMatrix::to_dense) or put a Dense first",
                        layer.name(),
                        layer.class_name(),
                        input("sparse (CSR) rows")
                    )));
                }
                if layer.as_merge().is_some() && !part.is_values() {
                    return Err(TrainError::Input(format!(
                        "{data}: merge layer `{}` reads {} directly; it merges dense values only",
                        layer.name(),
                        input("sparse rows or token ids")
                    )));
                }
                crate::ids::check_ids(layer, *part, data)?;
                // An input read through Flatten or Reshape: its values are an Embedding's ids.
                if crate::ids::moves_values_only(layer) {
                    for e in crate::ids::readers_through(&self.layers, &built.wiring, i) {
                        crate::ids::check_ids(self.layers[e].as_ref(), *part, data)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses a loss or metric that would read a shaped output (`[t, k]` per sample) as
    /// one flat row: Keras reduces crossentropies and accuracies over the last axis per
    /// position, which kiln does not compute yet. Mean squared/absolute errors average
    /// over every value either way, so they stand.
    pub(crate) fn check_output_rank(&self) -> Result<(), TrainError> {
        let (Some(built), Some(c)) = (&self.built, &self.compiled) else { return Ok(()) };
        let Some(shape) = built.shapes.last().filter(|s| s.rank() > 1) else { return Ok(()) };
        if !c.loss.is_elementwise() {
            return Err(TrainError::Config(format!(
                "loss `{}` on outputs of shape {shape}: kiln computes losses on flat outputs (add a Flatten or \
                 a global pooling layer before the last one), or mean squared/absolute error on any shape",
                c.loss.name()
            )));
        }
        let elementwise =
            |m: &crate::Metric| matches!(m, crate::Metric::MeanAbsoluteError | crate::Metric::MeanSquaredError);
        if let Some(m) = c.metrics.iter().find(|m| !elementwise(&m.metric)) {
            return Err(TrainError::Config(format!(
                "metric `{}` on outputs of shape {shape}: kiln computes it on flat outputs only",
                m.name
            )));
        }
        Ok(())
    }

    /// Refuses gradient clipping together with an Embedding's per-occurrence gradient:
    /// Keras clips those `IndexedSlices` occurrence by occurrence, which kiln's summed
    /// gradient cannot reproduce (add an `embeddings_regularizer`, or drop the clipping).
    pub(crate) fn check_sparse_clipping(&self) -> Result<(), TrainError> {
        let Some(c) = &self.compiled else { return Ok(()) };
        // A limit not above 0 clips nothing, in Keras as here.
        if !c.optimizer.clip().is_active() {
            return Ok(());
        }
        match self.layers.iter().find(|l| l.params().iter().any(|p| p.squares().is_some())) {
            Some(l) => Err(TrainError::Config(format!(
                "layer `{}`: gradient clipping on an Embedding's sparse gradient is not computed as Keras \
                 does (it clips each occurrence); drop clipnorm/clipvalue/global_clipnorm or add an \
                 embeddings_regularizer",
                l.name()
            ))),
            None => Ok(()),
        }
    }

    /// Fixes the optimizer, the loss and the metrics; checks the optimizer's
    /// hyperparameters (a finite learning rate, decay rates in [0, 1], …) and the
    /// metrics' arguments ([`Metric::validate`](crate::Metric::validate)).
    ///
    /// `optimizer` is an [`Optimizer`], a bare rule (`RMSprop::default()`, with Keras'
    /// default learning rate) or a Keras identifier (`"rmsprop"`); `loss` a [`Loss`] or
    /// an identifier (`"mse"`); `metrics` [`Metric`](crate::Metric)s, [`NamedMetric`]s or
    /// identifiers (`["accuracy"]`), or [`NO_METRICS`](crate::NO_METRICS) for none.
    ///
    /// ```
    /// use kiln_layers::Dense;
    /// use kiln_trainer::Sequential;
    ///
    /// let mut model = Sequential::new().input_shape([4]).add(Dense::new(1));
    /// model.compile("rmsprop", "mse", ["mae"])?;
    /// assert!(model.compile("adma", "mse", ["mae"]).unwrap_err().to_string().contains("`adma` is not an optimizer"));
    /// # Ok::<(), kiln_trainer::TrainError>(())
    /// ```
    pub fn compile<M: IntoMetric>(
        &mut self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLoss,
        metrics: impl IntoIterator<Item = M>,
    ) -> Result<(), TrainError> {
        let optimizer = optimizer.into_optimizer().map_err(|e| TrainError::Config(e.to_string()))?;
        let loss = loss.into_loss()?;
        optimizer.validate().map_err(|e| TrainError::Config(format!("optimizer: {e}")))?;
        let metrics: Vec<NamedMetric> = metrics.into_iter().map(IntoMetric::into_metric).collect::<Result<_, _>>()?;
        // Keras refuses bad metric arguments when the metric is made; kiln's metrics are
        // plain values, so compile checks them (an AUC with no threshold would panic in fit).
        for m in &metrics {
            m.metric.validate().map_err(|e| TrainError::Config(format!("metric `{}`: {e}", m.name)))?;
            check_scalar(m)?;
        }
        check_trainable(loss)?;
        self.warn_logits_of_an_activation(loss);
        self.compiled = Some(Compiled::new(optimizer, loss, metrics));
        Ok(())
    }

    /// Keras' warning for `from_logits=True` on a sigmoid or softmax output, whose attached
    /// logits the loss then reads instead (see `Loss::of_layer`), in Keras' words.
    fn warn_logits_of_an_activation(&self, loss: Loss) {
        if self.layers.is_empty() {
            return;
        }
        // The layer whose output the model's is, at inference.
        let wiring = self.built.as_ref().map(|b| b.wiring.as_slice());
        let source = crate::step::logits_source(&self.layers, wiring, false);
        if loss.from_logits()
            && loss.ignore_class().is_none()
            && loss.attached_logits_of(self.layers[source].activation())
        {
            let op = if loss.name() == "binary_crossentropy" { "Sigmoid" } else { "Softmax" };
            let warning = format!(
                "`{}` received `from_logits=True`, but the `output` argument was produced by a {op} activation and \
                 thus does not represent logits. Was this intended?",
                loss.name()
            );
            eprintln!("warning: {warning}");
            tracing::warn!("{warning}");
        }
    }

    /// The optimizer, once compiled.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    /// The optimizer, mutably (e.g. to change the learning rate).
    pub fn optimizer_mut(&mut self) -> Option<&mut Optimizer> {
        self.compiled.as_mut().map(|c| &mut c.optimizer)
    }

    /// The learning rate the next step will use (a schedule evaluated at the optimizer's
    /// iteration count), once compiled.
    pub fn learning_rate(&self) -> Option<f32> {
        self.optimizer().map(Optimizer::learning_rate)
    }

    /// Sets a constant learning rate (stored as `f32`). Like Keras, this is refused when
    /// the rate comes from a schedule, and when the model is not compiled.
    pub fn set_learning_rate(&mut self, learning_rate: f64) -> Result<(), TrainError> {
        let opt = self.optimizer_mut().ok_or(TrainError::NotCompiled("set_learning_rate"))?;
        opt.set_learning_rate(learning_rate).map_err(TrainError::Config)
    }

    /// The loss, once compiled.
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss)
    }

    /// The compiled metrics.
    pub fn metrics(&self) -> &[NamedMetric] {
        self.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// The direction of the compiled metric whose Keras object is named `name` (the name
    /// before log-key deduplication: `auc`, not `auc_1`); the last such metric wins, as
    /// in Keras' `MonitorCallback._set_monitor_op`. `None` when no metric has that name.
    pub fn metric_direction(&self, name: &str) -> Option<crate::Direction> {
        let compiled = self.compiled.as_ref()?;
        compiled.requested.iter().rev().find(|m| m.name == name).map(|m| m.metric.direction())
    }

    /// `(layer/param, length)` of every trainable parameter, in update order: the list the
    /// optimizer's slots and the saved optimizer state follow.
    pub(crate) fn param_list(&self) -> Vec<(String, usize)> {
        self.layers
            .iter()
            .flat_map(|l| {
                let trainable = l.params().iter().filter(|p| p.is_trainable());
                trainable.map(move |p| (format!("{}/{}", l.name(), p.name()), p.len()))
            })
            .collect()
    }

    /// Builds the optimizer's state for the current parameters if it has none. A layer
    /// frozen or unfrozen since the optimizer was built takes effect at the next `compile`,
    /// as in Keras; until then training is refused, since the optimizer's slots no longer
    /// match the trainable weights.
    pub(crate) fn ensure_optimizer(&mut self) -> Result<(), TrainError> {
        let params = self.param_list();
        let c = self.compiled.as_mut().ok_or(TrainError::NotCompiled("fit"))?;
        if !c.optimizer.is_built() {
            c.optimizer.build(&params);
        } else if !c.optimizer.param_names().iter().eq(params.iter().map(|(name, _)| name)) {
            return Err(TrainError::Config(
                "the trainable weights changed since the optimizer was built (a layer was frozen or unfrozen): \
                 call `compile` again, as Keras requires"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Freezes (`false`) or unfreezes the layer called `name` (Keras'
    /// `model.get_layer(name).trainable = False`); see
    /// [`Layer::set_trainable`](kiln_layers::Layer::set_trainable). Call `compile` after it.
    pub fn set_trainable(&mut self, name: &str, trainable: bool) -> Result<(), TrainError> {
        let Some(k) = self.layers.iter().position(|l| l.name() == name) else {
            let known: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
            return Err(TrainError::Config(format!("no layer named `{name}` (layers: {})", known.join(", "))));
        };
        self.layers[k].set_trainable(trainable);
        Ok(())
    }

    /// Every parameter, named `layer/param`, in update order.
    pub fn get_weights(&self) -> Weights {
        let tensors = self.layers.iter().flat_map(|l| {
            l.params().iter().map(move |p| NamedTensor {
                name: format!("{}/{}", l.name(), p.name()),
                shape: p.shape().to_vec(),
                values: p.value().to_vec(),
            })
        });
        Weights(tensors.collect())
    }

    /// Overwrites parameters by name; every tensor must name an existing parameter of the
    /// right shape (checked before anything is written).
    pub fn set_weights(&mut self, weights: &Weights) -> Result<(), TrainError> {
        if self.built.is_none() {
            return Err(TrainError::NotBuilt("setting weights"));
        }
        set_layer_weights(&mut self.layers, weights)
    }

    /// Number of parameter values.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.param_count()).sum()
    }

    /// Number of trainable parameter values (the rest, such as BatchNormalization's moving
    /// statistics, the layers update themselves).
    pub fn trainable_param_count(&self) -> usize {
        self.layers.iter().flat_map(|l| l.params()).filter(|p| p.is_trainable()).map(|p| p.len()).sum()
    }
}

/// [`Sequential::set_weights`] on a list of built layers (a staged copy when restoring a
/// backup): every tensor is checked before anything is written.
pub(crate) fn set_layer_weights(layers: &mut [Box<dyn Layer>], weights: &Weights) -> Result<(), TrainError> {
    // One index of the layers by name: lookups stay linear in a model of many layers.
    let by_name: HashMap<&str, usize> = layers.iter().enumerate().map(|(i, l)| (l.name(), i)).collect();
    let mut targets = Vec::new();
    for t in &weights.0 {
        let (layer, param) = t
            .name
            .rsplit_once('/')
            .ok_or_else(|| TrainError::Input(format!("weight name `{}` is not `layer/param`", t.name)))?;
        let li = by_name
            .get(layer)
            .copied()
            .ok_or_else(|| TrainError::Input(format!("no layer `{layer}` for weight `{}`", t.name)))?;
        let pi = layers[li]
            .params()
            .iter()
            .position(|p| p.name() == param)
            .ok_or_else(|| TrainError::Input(format!("layer `{layer}` has no parameter `{param}`")))?;
        let shape = layers[li].params()[pi].shape();
        if shape != t.shape.as_slice() || t.values.len() != shape.iter().product::<usize>() {
            return Err(TrainError::Input(format!(
                "weight `{}`: expected shape {shape:?}, found {:?} with {} values",
                t.name,
                t.shape,
                t.values.len()
            )));
        }
        targets.push((li, pi, &t.values));
    }
    for (li, pi, values) in targets {
        let layer = &mut layers[li];
        let name = layer.name().to_string();
        layer.params_mut()[pi].set_value(&name, values)?;
    }
    Ok(())
}
