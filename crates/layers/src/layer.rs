//! The `Layer` trait.

use std::fmt::Debug;

use kiln_regularizers::Regularizer;
use kiln_tensor::{Matrix, Parallelism, RngState, Shape};

use crate::{Activation, BuildContext, LayerCore, LayerError, LayerInput, Merge, Param};

/// What the gradient handed to [`Layer::backward`] is taken with respect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradOf {
    /// The layer's output (after its activation).
    Output,
    /// The layer's pre-activation logits: the loss was computed from logits (softmax or
    /// sigmoid output with cross-entropy, as Keras does), so the activation is skipped.
    Logits,
}

/// A layer of a model: one input, or several for a merge layer (see [`Merge`]).
///
/// A layer writes five methods: [`core`](Layer::core) / [`core_mut`](Layer::core_mut)
/// (its name, parameters and output buffer), [`build`](Layer::build),
/// [`forward`](Layer::forward) and [`backward`](Layer::backward). Everything else —
/// regularization penalties and their gradients, optimizer updates, saving — the model
/// does by walking [`params`](Layer::params).
///
/// Lifecycle: `build` once with the input's sample [`Shape`]; per batch `forward`, then
/// (in training) `backward` with the same input. Buffers grow to the largest batch seen
/// and are reused.
///
/// # Shapes
/// Every activation is one row per sample: a sample of shape `[h, w, c]` is a row of
/// `h·w·c` values in row-major, channels-last order (Keras' default `data_format`).
/// - input: `[batch, input.numel()]` (dense, or CSR rows for a flat input)
/// - output: `[batch, output.numel()]`, `output` as returned by `build`
#[typetag::serde(tag = "type")]
pub trait Layer: Debug + Send + Sync + dyn_clone::DynClone {
    /// The layer's name, parameters and output.
    fn core(&self) -> &LayerCore;

    /// The layer's name, parameters and output, mutably.
    fn core_mut(&mut self) -> &mut LayerCore;

    /// Creates the parameters (in `core().params`, through [`BuildContext::param`]) for
    /// samples of shape `input`, drawing initial values from [`BuildContext::rng`], and
    /// returns the shape of an output sample. A shape the layer cannot take is an error
    /// naming the layer.
    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError>;

    /// Computes the output for `input` into `core().output`. `training` turns on
    /// training-only behaviour (dropout) and caches what `backward` needs.
    fn forward(&mut self, input: LayerInput<'_>, training: bool, par: Parallelism);

    /// Back-propagates `grad` (w.r.t. the output or the logits, see [`GradOf`]; it may be
    /// overwritten) for the same `input` as the last `forward`: writes every parameter's
    /// gradient (data term only; the model adds penalty gradients) and `∂loss/∂input`
    /// into `grad_input` when given.
    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Parallelism,
    );

    /// The Keras class name shown by `summary()`: the type's name by default (`Dense`).
    fn class_name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }

    /// The activation applied last (`Linear` for layers without one). Losses use it to
    /// decide whether to work from logits.
    fn activation(&self) -> Activation {
        Activation::Linear
    }

    /// The pre-activation values of the last `forward`, when the layer keeps them.
    fn logits(&self) -> Option<&Matrix> {
        None
    }

    /// Whether this layer hands its input back unchanged in a `forward` with `training`
    /// (Keras returns the very tensor: Dropout at inference or at rate 0,
    /// `Activation("linear")`), so that the logits a softmax or sigmoid before it attached
    /// still reach the loss. `false` by default.
    fn passes_input_through(&self, training: bool) -> bool {
        let _ = training;
        false
    }

    /// What [`build`](Layer::build) for `input` would create, without creating it:
    /// `(weights, output shape)`. The model sums these before building anything, so a
    /// configuration declaring more than its weight or activation budget allocates
    /// nothing. `None` (the default) means "unknown": the weight budget is then charged as
    /// the layer builds, and the activation budget from the built shapes.
    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let _ = input;
        None
    }

    /// `Some(n)` for a layer that reads token ids in `0..n` (Embedding): the model then
    /// feeds it integer inputs, checked against `n` before training. `None` (the default):
    /// the layer reads values.
    fn input_ids_limit(&self) -> Option<usize> {
        None
    }

    /// Whether `forward` and `backward` take a batch of sparse (CSR) rows
    /// (`LayerInput::Sparse`), as Dense, Dropout, Flatten and Reshape do. False by
    /// default: the model then refuses sparse data into this layer with an error naming
    /// it, so a layer written for dense values never meets a sparse batch.
    fn reads_sparse(&self) -> bool {
        false
    }

    /// Whether, as a model's first layer, this layer computes faster when a dense input
    /// is handed over as its non-zero values alone (CSR rows), given the fraction of the
    /// input's values that are non-zero. Only layers that read sparse input and give the
    /// same sums either way say yes (a zero input adds nothing to a product); `fit`,
    /// `evaluate` and `predict` then gather such batches. False by default.
    fn prefers_nonzeros(&self, density: f64) -> bool {
        let _ = density;
        false
    }

    /// A penalty on the layer's output (Keras' `activity_regularizer`), divided by the
    /// batch size; the model applies it.
    fn activity_regularizer(&self) -> Option<&dyn Regularizer> {
        None
    }

    /// The [`Merge`] methods of a layer that combines several inputs (`Add`,
    /// `Concatenate`, …); `None` (the default) for a single-input layer.
    fn as_merge(&self) -> Option<&dyn Merge> {
        None
    }

    /// [`as_merge`](Layer::as_merge), mutably: what the model calls to build and run a
    /// merge layer.
    fn as_merge_mut(&mut self) -> Option<&mut dyn Merge> {
        None
    }

    /// The layer's name (`dense`, `dense_1`, …).
    fn name(&self) -> &str {
        &self.core().name
    }

    /// Keras' `layer.trainable` (default true).
    fn is_trainable(&self) -> bool {
        self.core().trainable
    }

    /// Freezes (`false`) or unfreezes the layer, as Keras' `layer.trainable = False`: its
    /// weights leave the optimizer, clipping, weight decay and the weight penalties, and a
    /// frozen `BatchNormalization` normalizes with its moving statistics even in training.
    /// The gradient still flows through it to earlier layers. Takes effect at the next
    /// `compile`, as in Keras.
    fn set_trainable(&mut self, trainable: bool) {
        let core = self.core_mut();
        core.trainable = trainable;
        core.params.iter_mut().for_each(|p| p.set_frozen(!trainable));
    }

    /// The parameters, in update order.
    fn params(&self) -> &[Param] {
        &self.core().params
    }

    /// The parameters, mutably.
    fn params_mut(&mut self) -> &mut [Param] {
        &mut self.core_mut().params
    }

    /// The parameter called `name`.
    fn param_mut(&mut self, name: &str) -> Option<&mut Param> {
        self.params_mut().iter_mut().find(|p| p.name() == name)
    }

    /// Overwrites the values of the parameter called `name` (the length must match).
    fn set_param(&mut self, name: &str, values: &[f32]) -> Result<(), LayerError> {
        let layer = self.name().to_string();
        let available = self.params().iter().map(Param::name).collect::<Vec<_>>().join(", ");
        match self.param_mut(name) {
            Some(p) => p.set_value(&layer, values),
            None => Err(LayerError::UnknownParam { layer, param: name.to_string(), available }),
        }
    }

    /// The output of the last `forward`.
    fn output(&self) -> &Matrix {
        &self.core().output
    }

    /// Number of parameter values.
    fn param_count(&self) -> usize {
        self.params().iter().map(Param::len).sum()
    }

    /// Where the layer's random generator is (Dropout's mask stream), so a resumed run
    /// draws the masks an uninterrupted one would. `None` (the default): the layer draws
    /// nothing at training time, or has not been built.
    fn rng_state(&self) -> Option<RngState> {
        None
    }

    /// Makes the next training `forward` keep exactly the values where `keep` is 1 (0:
    /// drop), instead of drawing its own mask; `keep` has one entry per value of the batch.
    /// Trace replay uses it to follow masks another library drew. The default refuses:
    /// the layer draws no masks.
    fn replay_mask(&mut self, keep: &[f32]) -> Result<(), LayerError> {
        let _ = keep;
        Err(LayerError::Config { layer: self.name().to_string(), message: "draws no masks to replay".to_string() })
    }

    /// Moves the layer's random generator to `state` (from [`rng_state`](Layer::rng_state)).
    /// The default refuses: the layer has no generator.
    fn set_rng_state(&mut self, state: &RngState) -> Result<(), LayerError> {
        let _ = state;
        Err(LayerError::Config {
            layer: self.name().to_string(),
            message: "has no random generator to restore".to_string(),
        })
    }
}

dyn_clone::clone_trait_object!(Layer);

/// Keras' `trainable=False` constructor argument, for any layer:
/// `Dense::new(8).trainable(false)`.
pub trait Trainable: Layer + Sized {
    /// This layer frozen (`false`) or trainable; see [`Layer::set_trainable`].
    fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }
}

impl<L: Layer + Sized> Trainable for L {}
