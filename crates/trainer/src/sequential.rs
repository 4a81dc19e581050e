//! The `Sequential` model: a stack of layers, built, compiled and trained.

use kiln_layers::Layer;
use kiln_optimizers::Optimizer;
use kiln_tensor::{Par, Rng};

use crate::{Loss, Metric, NamedTensor, TrainError, Weights};

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
    pub(crate) input_width: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) compiled: Option<Compiled>,
    pub(crate) par: Par,
}

/// What `compile` fixed: optimizer (with its state), loss and metrics.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub optimizer: Box<dyn Optimizer>,
    pub optimizer_built: bool,
    pub loss: Loss,
    pub from_logits: bool,
    pub metrics: Vec<Metric>,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model named `sequential`, seed 0, matrix products on `KILN_THREADS`
    /// threads (one, and bit-reproducible, when it is unset).
    pub fn new() -> Self {
        Self {
            name: "sequential".into(),
            layers: Vec::new(),
            input_width: None,
            seed: 0,
            compiled: None,
            par: kiln_tensor::par_for_threads(kiln_tensor::threads_from_env()),
        }
    }

    /// Appends a layer (builder style; Keras' name for it).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        self.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer, naming it Keras-style (`dense`, `dense_1`, …) when unnamed.
    pub fn push(&mut self, mut layer: Box<dyn Layer>) {
        if layer.name().is_empty() {
            let base = snake_case(layer.class_name());
            let same = self.layers.iter().filter(|l| l.class_name() == layer.class_name()).count();
            layer.set_name(if same == 0 { base } else { format!("{base}_{same}") });
        }
        self.input_width = None;
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

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The seed.
    pub fn model_seed(&self) -> u64 {
        self.seed
    }

    /// Threads for matrix products: `Par::Seq` (bit-reproducible) or `Par::rayon(n)`;
    /// overrides `KILN_THREADS`.
    pub fn set_parallelism(&mut self, par: Par) {
        self.par = par;
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, mutably.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&dyn Layer> {
        self.layers.iter().find(|l| l.name() == name).map(|l| l.as_ref())
    }

    /// The input width the model was built for.
    pub fn input_width(&self) -> Option<usize> {
        self.input_width
    }

    /// The output width (after `build`).
    pub fn output_width(&self) -> Option<usize> {
        self.input_width.and(self.layers.last().map(|l| l.output_width()))
    }

    /// Builds every layer for `input_width` features, drawing initial weights from the
    /// `init` stream of the model's seed. Rebuilding re-initialises the weights.
    pub fn build(&mut self, input_width: usize) -> Result<(), TrainError> {
        if self.layers.is_empty() {
            return Err(TrainError::State("the model has no layers".into()));
        }
        let mut rng = Rng::stream(self.seed, "init");
        let mut width = input_width;
        for layer in &mut self.layers {
            width = layer.build(width, &mut rng)?;
        }
        self.input_width = Some(input_width);
        if let Some(c) = &mut self.compiled {
            c.optimizer_built = false;
        }
        Ok(())
    }

    /// Builds for `width` unless already built for it; errors on a different width.
    pub(crate) fn ensure_built(&mut self, width: usize) -> Result<(), TrainError> {
        match self.input_width {
            Some(w) if w == width => Ok(()),
            Some(w) => {
                Err(TrainError::Input(format!("the model was built for {w} input features, the data has {width}")))
            }
            None => self.build(width),
        }
    }

    /// Fixes the optimizer, the loss and the metrics (Keras identifiers, e.g. `"accuracy"`).
    pub fn compile(
        &mut self,
        optimizer: impl Optimizer + 'static,
        loss: Loss,
        metrics: &[&str],
    ) -> Result<(), TrainError> {
        let metrics = metrics.iter().map(|m| Metric::from_keras(m)).collect::<Result<Vec<_>, _>>()?;
        self.compile_boxed(Box::new(optimizer), loss, metrics);
        self.bind_regularizers()
    }

    /// [`compile`](Sequential::compile) with an already boxed optimizer and parsed metrics.
    pub fn compile_boxed(&mut self, optimizer: Box<dyn Optimizer>, loss: Loss, metrics: Vec<Metric>) {
        self.compiled = Some(Compiled { optimizer, optimizer_built: false, loss, from_logits: false, metrics });
    }

    /// Reads the last layer's output as logits (Keras' `from_logits=True`): use with a
    /// linear last layer. Off by default, where softmax/sigmoid outputs are still turned
    /// back into logits as Keras does.
    pub fn set_from_logits(&mut self, from_logits: bool) -> Result<(), TrainError> {
        let c = self.compiled.as_mut().ok_or_else(|| TrainError::State("compile the model first".into()))?;
        c.from_logits = from_logits;
        Ok(())
    }

    /// Whether the loss reads the output as logits.
    pub fn from_logits(&self) -> bool {
        self.compiled.as_ref().is_some_and(|c| c.from_logits)
    }

    /// The optimizer, once compiled.
    pub fn optimizer(&self) -> Option<&dyn Optimizer> {
        self.compiled.as_ref().map(|c| c.optimizer.as_ref())
    }

    /// The optimizer, mutably (e.g. to change the learning rate).
    pub fn optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer + 'static)> {
        self.compiled.as_mut().map(|c| c.optimizer.as_mut())
    }

    /// The loss, once compiled.
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss)
    }

    /// The compiled metrics.
    pub fn metrics(&self) -> &[Metric] {
        self.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// `(name, length)` of every parameter, in update order.
    pub(crate) fn param_list(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for l in &self.layers {
            for p in l.param_names() {
                if let Some(v) = l.param(p) {
                    out.push((format!("{}/{p}", l.name()), v.len()));
                }
            }
        }
        out
    }

    /// Binds every regularizer (plugins resolve their implementation here); an unbound
    /// plugin fails with its own message, naming the plugin.
    pub(crate) fn bind_regularizers(&self) -> Result<(), TrainError> {
        let mut err = None;
        for l in &self.layers {
            l.visit_regularizers(&mut |r| {
                if let (None, Err(e)) = (&err, r.bind()) {
                    err = Some(TrainError::Config(format!("layer `{}`: {e}", l.name())));
                }
            });
        }
        err.map_or(Ok(()), Err)
    }

    /// Builds the optimizer's state for the current parameters if it is not yet.
    pub(crate) fn ensure_optimizer(&mut self) -> Result<(), TrainError> {
        let params = self.param_list();
        let c = self.compiled.as_mut().ok_or_else(|| TrainError::State("compile the model before fit".into()))?;
        if !c.optimizer_built {
            c.optimizer.build(&params);
            c.optimizer_built = true;
        }
        Ok(())
    }

    /// Every parameter, named `layer/param`, in layer order.
    pub fn get_weights(&self) -> Weights {
        let mut out = Vec::new();
        for l in &self.layers {
            for p in l.param_names() {
                if let (Some(v), Some(shape)) = (l.param(p), l.param_shape(p)) {
                    out.push(NamedTensor { name: format!("{}/{p}", l.name()), shape, values: v.to_vec() });
                }
            }
        }
        Weights(out)
    }

    /// Overwrites parameters by name; every tensor must name an existing parameter of the
    /// right shape (checked before anything is written).
    pub fn set_weights(&mut self, weights: &Weights) -> Result<(), TrainError> {
        if self.input_width.is_none() {
            return Err(TrainError::State("build the model before setting weights".into()));
        }
        let mut targets = Vec::new();
        for t in &weights.0 {
            let (layer, param) = t
                .name
                .rsplit_once('/')
                .ok_or_else(|| TrainError::Input(format!("weight name `{}` is not `layer/param`", t.name)))?;
            let li = self
                .layers
                .iter()
                .position(|l| l.name() == layer)
                .ok_or_else(|| TrainError::Input(format!("no layer `{layer}` for weight `{}`", t.name)))?;
            let shape = self.layers[li]
                .param_shape(param)
                .ok_or_else(|| TrainError::Input(format!("layer `{layer}` has no parameter `{param}`")))?;
            if shape != t.shape || t.values.len() != shape.iter().product::<usize>() {
                return Err(TrainError::Input(format!(
                    "weight `{}`: expected shape {shape:?}, found {:?} with {} values",
                    t.name,
                    t.shape,
                    t.values.len()
                )));
            }
            targets.push((li, param, &t.values));
        }
        for (li, param, values) in targets {
            self.layers[li].set_param(param, values)?;
        }
        Ok(())
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.param_count()).sum()
    }
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
