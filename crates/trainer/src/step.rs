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
    let mut total = data_loss;
    for l in layers {
        let p = l.activity_penalty();
        if p != 0.0 {
            total += p;
        }
    }
    for l in layers {
        l.visit_weight_penalties(&mut |p| total += p);
    }
    total
}
