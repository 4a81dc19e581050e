//! Regularization of any layer, done by the model rather than by each layer: weight
//! penalties come from each [`Param`]'s regularizer, activity penalties from
//! [`Layer::activity_regularizer`]. A layer written outside kiln gets both for free.

use kiln_regularizers::RegularizerError;
use kiln_tensor::{Matrix, kernels};

use crate::{GradOf, Layer, Param};

/// The activity penalty of `layer`'s last output: `penalty(output) / batch` (Keras divides
/// by the batch size), 0 without an activity regularizer or for an empty batch.
pub fn activity_penalty(layer: &dyn Layer) -> Result<f32, RegularizerError> {
    let out = layer.output();
    match layer.activity_regularizer() {
        Some(reg) if out.rows() > 0 => Ok(reg.penalty(out.as_slice())? / out.rows() as f32),
        _ => Ok(0.0),
    }
}

/// Adds the activity penalty's gradient to `grad`, which is w.r.t. `layer`'s output or,
/// with `GradOf::Logits`, its logits (the penalty's gradient is then pushed through the
/// activation in `scratch`). Call it just before `layer.backward`.
pub fn add_activity_grad(
    layer: &dyn Layer,
    grad: &mut Matrix,
    grad_of: GradOf,
    scratch: &mut Matrix,
) -> Result<(), RegularizerError> {
    let Some(reg) = layer.activity_regularizer() else { return Ok(()) };
    let out = layer.output();
    let scale = 1.0 / out.rows() as f32;
    if grad_of == GradOf::Output {
        return reg.add_grad(out.as_slice(), grad.as_mut_slice(), scale);
    }
    scratch.resize(out.rows(), out.cols());
    scratch.fill(0.0);
    reg.add_grad(out.as_slice(), scratch.as_mut_slice(), scale)?;
    layer.activation().backward(
        layer.logits().map(Matrix::as_slice),
        out.as_slice(),
        scratch.as_mut_slice(),
        out.cols(),
        kiln_tensor::Parallelism::Sequential,
    );
    kernels::axpy(1.0, scratch.as_slice(), grad.as_mut_slice());
    Ok(())
}

/// Calls `f(penalty)` for each trainable parameter that has a regularizer, in order (a
/// frozen layer's weights add no penalty: Keras sums the regularizers of
/// `trainable_weights`, `Layer._get_regularization_losses`).
pub fn weight_penalties(params: &[Param], mut f: impl FnMut(f32)) -> Result<(), RegularizerError> {
    for p in params.iter().filter(|p| p.is_trainable()) {
        if let Some(reg) = p.regularizer() {
            f(reg.penalty(p.value())?);
        }
    }
    Ok(())
}

/// Adds each regularizer's gradient to its trainable parameter's gradient (after
/// `backward`).
pub fn add_weight_grads(params: &mut [Param]) -> Result<(), RegularizerError> {
    for p in params.iter_mut().filter(|p| p.is_trainable()) {
        if let Some((reg, value, grad)) = p.regularized_parts() {
            reg.add_grad(value, grad, 1.0)?;
        }
    }
    Ok(())
}
