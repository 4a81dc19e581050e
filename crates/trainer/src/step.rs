//! One forward/backward pass over the layer stack.

use kiln_layers::{GradOf, Layer, LayerInput};
use kiln_tensor::{Matrix, Par};

/// Runs every layer's `forward`, each fed by the previous layer's output.
pub(crate) fn forward(layers: &mut [Box<dyn Layer>], input: LayerInput<'_>, training: bool, par: Par) {
    for i in 0..layers.len() {
        let (prev, rest) = layers.split_at_mut(i);
        let x = if i == 0 { input } else { LayerInput::Dense(prev[i - 1].output().view()) };
        rest[0].forward(x, training, par);
    }
}

/// Runs every layer's `backward` from the last; `grads[i]` is the gradient w.r.t. layer
/// `i`'s output (or logits for the last layer when `last_grad_of` says so).
pub(crate) fn backward(
    layers: &mut [Box<dyn Layer>],
    input: LayerInput<'_>,
    grads: &mut [Matrix],
    last_grad_of: GradOf,
    par: Par,
) {
    let last = layers.len() - 1;
    for i in (0..layers.len()).rev() {
        let (prev, rest) = layers.split_at_mut(i);
        let x = if i == 0 { input } else { LayerInput::Dense(prev[i - 1].output().view()) };
        let (gprev, grest) = grads.split_at_mut(i);
        // The first layer's input gradient is never needed: skip its product.
        let grad_input = if i == 0 { None } else { Some(&mut gprev[i - 1]) };
        let of = if i == last { last_grad_of } else { GradOf::Output };
        rest[0].backward(x, &mut grest[0], of, grad_input, par);
    }
}

/// Data loss plus every penalty, in Keras' order: activity terms of all layers first,
/// then weight penalties in parameter order.
pub(crate) fn total_loss(layers: &[Box<dyn Layer>], data_loss: f32) -> f32 {
    let mut total = with_activity(layers, data_loss);
    for l in layers {
        l.visit_weight_penalties(&mut |p| total += p);
    }
    total
}

/// `total_loss` with the weight penalties computed beforehand (by `weight_penalties`):
/// while evaluating, weights do not change, so they need computing once, not per batch.
/// The terms are added in the same order, so the sum rounds exactly as `total_loss`'s.
pub(crate) fn total_loss_with(layers: &[Box<dyn Layer>], data_loss: f32, weight_penalties: &[f32]) -> f32 {
    weight_penalties.iter().fold(with_activity(layers, data_loss), |total, p| total + p)
}

/// Every weight penalty of the model, in parameter order.
pub(crate) fn weight_penalties(layers: &[Box<dyn Layer>]) -> Vec<f32> {
    let mut out = Vec::new();
    for l in layers {
        l.visit_weight_penalties(&mut |p| out.push(p));
    }
    out
}

/// `data_loss` plus the activity penalties of the last forward pass, in layer order.
fn with_activity(layers: &[Box<dyn Layer>], data_loss: f32) -> f32 {
    let mut total = data_loss;
    for l in layers {
        let p = l.activity_penalty();
        if p != 0.0 {
            total += p;
        }
    }
    total
}
