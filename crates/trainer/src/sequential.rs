//! The `Sequential` model: a stack of layers, built, compiled and trained.

use std::collections::HashMap;

use kiln_layers::{BuildContext, DEFAULT_MAX_WEIGHTS, Layer};
use kiln_optimizers::Optimizer;
use kiln_tensor::{Parallelism, Rng};

use crate::{History, Loss, NamedMetric, NamedTensor, TrainError, Weights};

/// A linear stack of layers (Keras `keras.Sequential`).
///
/// Build it with [`add`](Sequential::add), [`compile`](Sequential::compile) it with an
/// optimizer, a loss and metrics, then [`fit`](Sequential::fit). Layers are built lazily
/// from the data's width (or explicitly with [`build`](Sequential::build)); all
/// randomness comes from the model's `seed` through named streams (`init`, `shuffle`).
#[derive(Debug)]
pub struct Sequential {
    pub(crate) name: String,
    pub(crate) layers: Vec<Box<dyn Layer>>,
    pub(crate) built: Option<Built>,
    pub(crate) seed: u64,
    pub(crate) compiled: Option<Compiled>,
    pub(crate) par: Parallelism,
    pub(crate) max_weights: usize,
    pub(crate) history: Option<History>,
    /// How many layers of each class `push` has added, so naming the next unnamed one
    /// (`dense_3`) takes constant time, not a scan of every layer.
    class_counts: HashMap<&'static str, usize>,
}

/// What `build` fixed: the input width and each layer's output width.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub input_width: usize,
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

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model named `sequential`, seed 0, on `KILN_THREADS` threads (one, and
    /// bit-reproducible, when it is unset).
    pub fn new() -> Self {
        Self {
            name: "sequential".into(),
            layers: Vec::new(),
            built: None,
            seed: 0,
            compiled: None,
            par: Parallelism::from_env(),
            max_weights: DEFAULT_MAX_WEIGHTS,
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

    /// Appends a boxed layer, naming it Keras-style (`dense`, `dense_1`, …) when unnamed.
    /// Names must be unique: [`build`](Sequential::build) refuses duplicates.
    pub fn push(&mut self, mut layer: Box<dyn Layer>) {
        let same = self.class_counts.entry(layer.class_name()).or_insert(0);
        if layer.name().is_empty() {
            let base = snake_case(layer.class_name());
            layer.core_mut().name = if *same == 0 { base } else { format!("{base}_{same}") };
        }
        *same += 1;
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

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The seed.
    pub fn model_seed(&self) -> u64 {
        self.seed
    }

    /// Threads for products and elementwise work: `Parallelism::Sequential`
    /// (bit-reproducible) or `Parallelism::threads(n)`; overrides `KILN_THREADS`.
    pub fn set_parallelism(&mut self, par: Parallelism) {
        self.par = par;
    }

    /// The parallelism in use.
    pub fn parallelism(&self) -> Parallelism {
        self.par
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

    /// The input width the model was built for.
    pub fn input_width(&self) -> Option<usize> {
        self.built.as_ref().map(|b| b.input_width)
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

    /// Builds every layer for `input_width` features, drawing initial weights from the
    /// `init` stream of the model's seed. Rebuilding re-initialises the weights (and the
    /// optimizer's state). Refuses duplicate layer names and models larger than
    /// [`max_weights`](Sequential::max_weights).
    pub fn build(&mut self, input_width: usize) -> Result<(), TrainError> {
        if self.layers.is_empty() {
            return Err(TrainError::NoLayers);
        }
        self.check_names()?;
        self.check_planned_weights(input_width)?;
        let mut rng = Rng::stream(self.seed, "init");
        let mut ctx = BuildContext::new(&mut rng, self.max_weights);
        let mut width = input_width;
        let mut widths = Vec::with_capacity(self.layers.len());
        for layer in &mut self.layers {
            ctx.set_layer(layer.name());
            width = layer.build(width, &mut ctx)?;
            widths.push(width);
        }
        self.built = Some(Built { input_width, widths });
        if let Some(c) = &mut self.compiled {
            c.optimizer.reset();
        }
        Ok(())
    }

    /// Sums what the layers say they will create (as far as they say) and refuses a model
    /// past its weight budget before any layer allocates.
    pub(crate) fn check_planned_weights(&self, input_width: usize) -> Result<(), TrainError> {
        let (mut total, mut width) = (0usize, input_width);
        for layer in &self.layers {
            let Some((weights, out)) = layer.planned(width) else { return Ok(()) };
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
            width = out;
        }
        Ok(())
    }

    /// Errors on the first layer name `load` could not use: empty, too long, or shared
    /// with an earlier layer (linear time).
    pub(crate) fn check_names(&self) -> Result<(), TrainError> {
        crate::names::check_layer_names(&self.layers)
    }

    /// Builds for `width` unless already built for it; errors on a different width.
    pub(crate) fn ensure_built(&mut self, width: usize, data: &'static str) -> Result<(), TrainError> {
        match self.input_width() {
            Some(w) if w == width => Ok(()),
            Some(w) => Err(TrainError::WidthMismatch { data, expected: w, found: width }),
            None => self.build(width),
        }
    }

    /// Fixes the optimizer, the loss and the metrics; checks the optimizer's
    /// hyperparameters (learning rate finite and > 0, decay rates in [0, 1), …) and the
    /// metrics' arguments ([`Metric::validate`](crate::Metric::validate)).
    ///
    /// `optimizer` is an [`Optimizer`] or a bare rule (`RMSprop::default()`, with Keras'
    /// default learning rate); `metrics` are [`Metric`](crate::Metric)s or
    /// [`NamedMetric`]s.
    pub fn compile<M: Into<NamedMetric>>(
        &mut self,
        optimizer: impl Into<Optimizer>,
        loss: Loss,
        metrics: impl IntoIterator<Item = M>,
    ) -> Result<(), TrainError> {
        let optimizer = optimizer.into();
        optimizer.validate().map_err(|e| TrainError::Config(format!("optimizer: {e}")))?;
        let metrics: Vec<NamedMetric> = metrics.into_iter().map(Into::into).collect();
        // Keras refuses bad metric arguments when the metric is made; kiln's metrics are
        // plain values, so compile checks them (an AUC with no threshold would panic in fit).
        for m in &metrics {
            m.metric.validate().map_err(|e| TrainError::Config(format!("metric `{}`: {e}", m.name)))?;
            if m.metric.is_per_class() {
                return Err(TrainError::Config(format!(
                    "metric `{}`: average=None (PerClass) gives one score per class, but each log key holds one \
                     number; compile it with micro, macro or weighted, or score per class with Metric::standalone()",
                    m.name
                )));
            }
        }
        self.compiled = Some(Compiled::new(optimizer, loss, metrics));
        Ok(())
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

    /// `(layer/param, length)` of every parameter, in update order: the one list the
    /// optimizer, the weights and the saved files all follow.
    pub(crate) fn param_list(&self) -> Vec<(String, usize)> {
        self.layers
            .iter()
            .flat_map(|l| l.params().iter().map(move |p| (format!("{}/{}", l.name(), p.name()), p.len())))
            .collect()
    }

    /// Builds the optimizer's state for the current parameters if it has none.
    pub(crate) fn ensure_optimizer(&mut self) -> Result<(), TrainError> {
        let params = self.param_list();
        let c = self.compiled.as_mut().ok_or(TrainError::NotCompiled("fit"))?;
        if !c.optimizer.is_built() {
            c.optimizer.build(&params);
        }
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

/// `Dense` → `dense`, `ActivityRegularization` → `activity_regularization`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}
