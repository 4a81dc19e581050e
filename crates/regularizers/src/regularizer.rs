//! The `Regularizer` trait and its error.

use std::fmt::Debug;

/// A penalty on a tensor: its value and its gradient.
///
/// `scale` multiplies the gradient: 1 for weights, `1/batch_size` for activity
/// regularization (Keras divides the activity penalty by the batch size). Both methods
/// can fail — a regularizer implemented by a plugin may refuse or panic — and the
/// trainer stops with that error instead of crashing; the built-ins never fail.
#[typetag::serde(tag = "type")]
pub trait Regularizer: Debug + Send + Sync + dyn_clone::DynClone {
    /// The penalty of `values` (a weight tensor or a layer output), as a loss term.
    fn penalty(&self, values: &[f32]) -> Result<f32, RegularizerError>;

    /// Adds `scale · ∂penalty/∂values` to `grad`.
    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), RegularizerError>;

    /// Checks the configuration (Keras' `validate_float_arg`: factors finite and ≥ 0).
    /// Layers call it when they are built, so a model never trains with a bad factor.
    fn validate(&self) -> Result<(), RegularizerError> {
        Ok(())
    }
}

dyn_clone::clone_trait_object!(Regularizer);

/// A regularizer that refused its configuration or failed to compute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("regularizer {regularizer}: {message}")]
pub struct RegularizerError {
    /// The regularizer (`L2`, or a plugin's `pkg>Name`).
    pub regularizer: String,
    /// What went wrong.
    pub message: String,
}

impl RegularizerError {
    /// An error of `regularizer` saying `message`.
    pub fn new(regularizer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { regularizer: regularizer.into(), message: message.into() }
    }
}

/// Keras' `validate_float_arg`: `value` must be a finite number ≥ 0.
pub(crate) fn non_negative(regularizer: &str, name: &str, value: f32) -> Result<(), RegularizerError> {
    if value.is_finite() && value >= 0.0 {
        return Ok(());
    }
    Err(RegularizerError::new(
        regularizer,
        format!("invalid value for argument `{name}`: expected a non-negative float, received {name}={value}"),
    ))
}
