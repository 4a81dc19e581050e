//! The `Layer` trait.

use std::fmt::Debug;

use kiln_tensor::{Matrix, Par, Rng};

use crate::{Activation, LayerError, LayerInput};

/// What the gradient handed to [`Layer::backward`] is taken with respect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradOf {
    /// The layer's output (after its activation).
    Output,
    /// The layer's pre-activation logits: the loss was computed from logits (softmax or
    /// sigmoid output with cross-entropy, as Keras does), so the activation is skipped.
    Logits,
}

/// A layer of a sequential model.
///
/// Lifecycle: [`build`](Layer::build) once with the input width; per batch
/// [`forward`](Layer::forward) then (in training) [`backward`](Layer::backward) with the
/// same input. Buffers grow to the largest batch seen and are reused afterwards.
#[typetag::serde(tag = "type")]
pub trait Layer: Debug + Send + Sync {
    /// The layer's name (`dense`, `dense_1`, …), unique within a model.
    fn name(&self) -> &str;

    /// Renames the layer.
    fn set_name(&mut self, name: String);

    /// The Keras class name shown by `summary()` (`Dense`, `Dropout`).
    fn class_name(&self) -> &'static str;

    /// Creates the parameters for `input_width` input features, drawing initial values
    /// from `rng`, and returns the output width.
    fn build(&mut self, input_width: usize, rng: &mut Rng) -> Result<usize, LayerError>;

    /// The output width (valid after `build`).
    fn output_width(&self) -> usize;

    /// Computes the output for `input` into the layer's own buffer. `training` turns on
    /// training-only behaviour (dropout) and caches what `backward` needs.
    fn forward(&mut self, input: LayerInput<'_>, training: bool, par: Par);

    /// The output of the last `forward`.
    fn output(&self) -> &Matrix;

    /// The activation applied last (`Linear` for layers without one). Losses use it to
    /// decide whether to work from logits.
    fn activation(&self) -> Activation {
        Activation::Linear
    }

    /// The pre-activation values of the last `forward`, when the layer keeps them.
    fn logits(&self) -> Option<&Matrix> {
        None
    }

    /// Back-propagates `grad` (w.r.t. the output or the logits, see [`GradOf`]; it may be
    /// overwritten) for the same `input` as the last `forward`: writes the parameter
    /// gradients, including regularizer terms, and `∂loss/∂input` into `grad_input` when
    /// given.
    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Par,
    );

    /// Parameter names in order (`kernel`, `bias`).
    fn param_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Shape of a parameter.
    fn param_shape(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }

    /// Values of a parameter (row-major).
    fn param(&self, _name: &str) -> Option<&[f32]> {
        None
    }

    /// Overwrites a parameter's values.
    fn set_param(&mut self, name: &str, _values: &[f32]) -> Result<(), LayerError> {
        Err(LayerError::UnknownParam {
            layer: self.name().to_string(),
            param: name.to_string(),
            available: "none".into(),
        })
    }

    /// Calls `f(name, values, gradient)` for each parameter, in order, after `backward`.
    #[allow(clippy::type_complexity)] // a closure signature, clearer spelled out
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut [f32], &[f32])) {}

    /// The activity-regularization penalty of the last `forward` (0 without one).
    fn activity_penalty(&self) -> f32 {
        0.0
    }

    /// Calls `f(penalty)` for each parameter that has a regularizer, in parameter order.
    fn visit_weight_penalties(&self, _f: &mut dyn FnMut(f32)) {}

    /// Calls `f` on every regularizer the layer holds (kernel, bias, activity).
    fn visit_regularizers(&self, _f: &mut dyn FnMut(&dyn kiln_regularizers::Regularizer)) {}

    /// Number of parameters.
    fn param_count(&self) -> usize {
        self.param_names().iter().filter_map(|n| self.param(n)).map(<[f32]>::len).sum()
    }

    /// A copy of the layer (configuration and parameters).
    fn clone_box(&self) -> Box<dyn Layer>;
}

impl Clone for Box<dyn Layer> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
