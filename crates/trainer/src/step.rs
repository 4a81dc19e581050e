//! One forward/backward pass over the layer stack, with every penalty of every layer.

use kiln_layers::{GradOf, Layer, LayerInput, penalties};
use kiln_regularizers::RegularizerError;
use kiln_tensor::{Matrix, Parallelism};

use crate::TrainError;

/// Gradient buffers for one pass: one per layer output, plus scratch for activity terms.
#[derive(Debug, Default)]
pub(crate) struct Grads {
    pub per_layer: Vec<Matrix>,
    scratch: Matrix,
}

impl Grads {
    /// Buffers for `layers` layers (sized by the first batch, then reused).
    pub fn new(layers: usize) -> Self {
        Self { per_layer: vec![Matrix::default(); layers], scratch: Matrix::default() }
    }

    /// The gradient w.r.t. the last layer's output, which the loss writes.
    pub fn last(&mut self) -> &mut Matrix {
        self.per_layer.last_mut().expect("at least one layer")
    }
}

/// A regularizer error of `layer`'s `target` as a trainer error (built only on failure:
/// the happy path of a training step allocates nothing).
fn penalty_error<'a>(layer: &'a dyn Layer, target: &'a str) -> impl FnOnce(RegularizerError) -> TrainError + 'a {
    move |source| TrainError::Regularizer { layer: layer.name().to_string(), target: target.to_string(), source }
}

/// Runs every layer's `forward`, each fed by the previous layer's output.
pub(crate) fn forward(layers: &mut [Box<dyn Layer>], input: LayerInput<'_>, training: bool, par: Parallelism) {
    for i in 0..layers.len() {
        let (prev, rest) = layers.split_at_mut(i);
        let x = if i == 0 { input } else { LayerInput::Dense(prev[i - 1].output().view()) };
        rest[0].forward(x, training, par);
    }
}

/// Runs every layer's `backward` from the last, adding each layer's activity gradient
/// first and every parameter's penalty gradient after; `grads.per_layer[i]` is the
/// gradient w.r.t. layer `i`'s output (or logits for the last layer when `last_grad_of`
/// says so).
pub(crate) fn backward(
    layers: &mut [Box<dyn Layer>],
    input: LayerInput<'_>,
    grads: &mut Grads,
    last_grad_of: GradOf,
    par: Parallelism,
) -> Result<(), TrainError> {
    let last = layers.len() - 1;
    for i in (0..layers.len()).rev() {
        let (prev, rest) = layers.split_at_mut(i);
        let x = if i == 0 { input } else { LayerInput::Dense(prev[i - 1].output().view()) };
        let (gprev, grest) = grads.per_layer.split_at_mut(i);
        let of = if i == last { last_grad_of } else { GradOf::Output };
        let layer = &mut rest[0];
        penalties::add_activity_grad(layer.as_ref(), &mut grest[0], of, &mut grads.scratch)
            .map_err(penalty_error(layer.as_ref(), "activity_regularizer"))?;
        // The first layer's input gradient is never needed: skip its product.
        let grad_input = if i == 0 { None } else { Some(&mut gprev[i - 1]) };
        layer.backward(x, &mut grest[0], of, grad_input, par);
    }
    for layer in layers.iter_mut() {
        if let Err(source) = penalties::add_weight_grads(layer.params_mut()) {
            return Err(TrainError::Regularizer { layer: layer.name().to_string(), target: "weights".into(), source });
        }
    }
    Ok(())
}

/// Calls `f` with every weight penalty of the model, in parameter order.
pub(crate) fn for_each_weight_penalty(layers: &[Box<dyn Layer>], mut f: impl FnMut(f32)) -> Result<(), TrainError> {
    for l in layers {
        penalties::weight_penalties(l.params(), &mut f).map_err(penalty_error(l.as_ref(), "weights"))?;
    }
    Ok(())
}

/// Data loss plus every penalty, in Keras' order: activity terms of all layers first,
/// then weight penalties in parameter order (computed now, or given when the weights do
/// not change between batches, as while evaluating: the same terms in the same order,
/// so the sum rounds identically).
pub(crate) fn total_loss(
    layers: &[Box<dyn Layer>],
    data_loss: f32,
    weight_penalties: Option<&[f32]>,
) -> Result<f32, TrainError> {
    let mut total = data_loss;
    for l in layers {
        let p = penalties::activity_penalty(l.as_ref()).map_err(penalty_error(l.as_ref(), "activity_regularizer"))?;
        if p != 0.0 {
            total += p;
        }
    }
    match weight_penalties {
        Some(given) => Ok(given.iter().fold(total, |t, p| t + p)),
        None => {
            for_each_weight_penalty(layers, |p| total += p)?;
            Ok(total)
        }
    }
}
