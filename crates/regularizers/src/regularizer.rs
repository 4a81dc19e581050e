//! The `Regularizer` trait.

use std::fmt::Debug;

/// A penalty on a tensor: its value and its gradient.
///
/// `scale` multiplies the gradient: 1 for weights, `1/batch_size` for activity
/// regularization (Keras divides the activity penalty by the batch size).
#[typetag::serde(tag = "type")]
pub trait Regularizer: Debug + Send + Sync {
    /// The penalty of `values` (a weight tensor or a layer output), as a loss term.
    fn penalty(&self, values: &[f32]) -> f32;

    /// Adds `scale · ∂penalty/∂values` to `grad`.
    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32);

    /// Resolves anything the regularizer needs at run time (a plugin's implementation);
    /// called by the trainer before training. Built-ins have nothing to resolve.
    fn bind(&self) -> Result<(), String> {
        Ok(())
    }

    /// A boxed copy (regularizers are small configuration values).
    fn clone_box(&self) -> Box<dyn Regularizer>;
}

impl Clone for Box<dyn Regularizer> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
