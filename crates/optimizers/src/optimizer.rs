//! The `Optimizer` trait.

use std::fmt::Debug;

/// One named state buffer of one parameter (Keras' optimizer "variables").
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The parameter's name, e.g. `dense_1/kernel`.
    pub param: &'a str,
    /// The state's name in Keras' spelling: `velocity`, `momentum`, `average_gradient`.
    pub slot: &'static str,
    /// The state values, laid out like the parameter.
    pub values: &'a [f32],
}

/// An update rule with per-parameter state.
///
/// Call [`build`](Optimizer::build) once with `(name, length)` of every parameter, then per
/// step [`update`](Optimizer::update) each parameter by its index and finally
/// [`finish_step`](Optimizer::finish_step). Serialization covers the configuration
/// (hyperparameters), not the state.
#[typetag::serde(tag = "type")]
pub trait Optimizer: Debug + Send + Sync {
    /// Allocates zeroed state for the given parameters (discarding any earlier state).
    fn build(&mut self, params: &[(String, usize)]);

    /// Applies one update to parameter `index` given its gradient.
    fn update(&mut self, index: usize, value: &mut [f32], grad: &[f32]);

    /// Ends the step: advances the iteration counter.
    fn finish_step(&mut self);

    /// Number of completed steps.
    fn iterations(&self) -> u64;

    /// The current learning rate.
    fn learning_rate(&self) -> f32;

    /// Replaces the learning rate (used by schedules and callbacks).
    fn set_learning_rate(&mut self, learning_rate: f32);

    /// Every state buffer, for inspection, parity checks and checkpoints.
    fn slots(&self) -> Vec<Slot<'_>>;

    /// Overwrites the state buffer `slot` of parameter `index` (restoring a checkpoint).
    /// Returns false when no such buffer exists or the length differs.
    fn set_slot(&mut self, index: usize, slot: &str, values: &[f32]) -> bool;

    /// Sets the iteration counter (restoring a checkpoint).
    fn set_iterations(&mut self, iterations: u64);

    /// A copy of the configuration with fresh, unbuilt state.
    fn clone_config(&self) -> Box<dyn Optimizer>;
}
