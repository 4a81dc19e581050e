//! The `UpdateRule` trait: what one optimizer does to one parameter in one step.

use std::fmt::Debug;

/// What every rule gets for a step: the learning rate (float32, as Keras' variable holds
/// it) and how many steps were completed before this one (Keras' `iterations`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The learning rate of this step.
    pub learning_rate: f32,
    /// Steps completed before this one (0 on the first step).
    pub iteration: u64,
}

/// An optimizer's update rule: its hyperparameters and the math of one step, nothing else.
///
/// The [`Optimizer`](crate::Optimizer) owns everything rules share — the learning rate,
/// the iteration count, one zeroed state buffer per slot name and parameter — and calls
/// [`update`](UpdateRule::update) for each parameter. Hyperparameters are `f64`, as
/// Python floats are in Keras, so `(1.0 - rho) as f32` is exactly Keras' constant.
#[typetag::serde(tag = "type")]
pub trait UpdateRule: Debug + Send + Sync + dyn_clone::DynClone {
    /// The state buffers kept per parameter, in Keras' spelling (`velocity`, `momentum`…).
    fn slot_names(&self) -> &'static [&'static str];

    /// Updates `value` in place from `grad`; `slots` are this parameter's buffers, in the
    /// order of [`slot_names`](UpdateRule::slot_names), each as long as `value`.
    ///
    /// The update must be elementwise — `value[i]` and `slots[k][i]` depend only on
    /// `grad[i]` and their own old values — because the optimizer may hand each thread a
    /// sub-range of the buffers (Keras' RMSprop, SGD and Adam all are).
    fn update(&self, step: Step, value: &mut [f32], grad: &[f32], slots: &mut [&mut [f32]]);

    /// [`update`](UpdateRule::update) with `squares[i]` in place of `grad[i]²` wherever the
    /// rule keeps a mean of squared gradients. Keras' TensorFlow optimizers square an
    /// Embedding's sparse (`IndexedSlices`) gradient per occurrence of each id, so a row
    /// seen twice in a batch adds `g₁² + g₂²` there, not `(g₁ + g₂)²`; the sum itself
    /// still drives the step. The default (rules without such a mean, as SGD) ignores it.
    fn update_with_squares(
        &self,
        step: Step,
        value: &mut [f32],
        grad: &[f32],
        squares: &[f32],
        slots: &mut [&mut [f32]],
    ) {
        let _ = squares;
        self.update(step, value, grad, slots);
    }

    /// The slots that can never be negative (means of squares); loading refuses negative
    /// values in them.
    fn non_negative_slots(&self) -> &'static [&'static str] {
        &[]
    }

    /// The learning rate Keras uses when none is given.
    fn default_learning_rate(&self) -> f64 {
        0.001
    }

    /// This rule at learning rate `learning_rate` (a number or a schedule), as Keras'
    /// `Adam(learning_rate=1e-3)`: `Adam::default().learning_rate(1e-3)` is
    /// `Optimizer::new(Adam::default(), 1e-3)`.
    ///
    /// ```
    /// use kiln_optimizers::{Adam, UpdateRule};
    ///
    /// let opt = Adam::default().learning_rate(1e-2);
    /// assert_eq!(opt.learning_rate(), 1e-2);
    /// ```
    fn learning_rate(self, learning_rate: impl Into<crate::LearningRate>) -> crate::Optimizer
    where
        Self: Sized + 'static,
    {
        crate::Optimizer::new(self, learning_rate)
    }

    /// The weight decay Keras uses when none is given (none; AdamW's is 0.004).
    fn default_weight_decay(&self) -> Option<f64> {
        None
    }

    /// Checks the hyperparameters (Keras-like messages naming the argument).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

dyn_clone::clone_trait_object!(UpdateRule);

/// Optimizer state decays geometrically where gradients are zero (RMSprop's `ρ·v`, Adam's
/// moments, momentum) and sinks into the subnormal range, where x86 arithmetic slows down
/// (measured: 1.4× per RMSprop step on AMD Zen 4; Intel is worse). TensorFlow avoids it by
/// running with flush-to-zero; changing MXCSR from Rust is undefined behaviour, so kiln
/// flushes the stored state explicitly instead — every Keras trace replays the same.
pub(crate) use kiln_tensor::subnormal::flush;

/// `value` must lie in `[0, 1]` (decay rates such as `rho`, `beta_1`). Keras checks
/// nothing; outside it a mean of squares could turn negative, which kiln's loading
/// refuses, so a model trained so could not be reloaded.
pub(crate) fn unit_interval(name: &str, value: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("argument `{name}` must be in [0, 1], received {name}={value}"))
    }
}

/// `value` must be finite and ≥ 0 (SGD's `momentum`).
pub(crate) fn non_negative(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("argument `{name}` must be a finite number ≥ 0, received {name}={value}"))
    }
}

/// `value` must be finite (`epsilon`, the learning rate, the weight decay): Keras takes
/// any float; JSON has no infinity or NaN to save one in.
pub(crate) fn finite(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(format!("argument `{name}` must be a finite number, received {name}={value}"))
    }
}
