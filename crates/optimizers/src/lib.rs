//! kiln-optimizers: gradient-descent update rules with per-parameter state.
//!
//! An [`Optimizer`] is built once with the model's parameter list, then, every training
//! step, [`Optimizer::update`] is called for each parameter followed by one
//! [`Optimizer::finish_step`]. State (velocities, moments) lives in the optimizer, sized at
//! build time, so a step allocates nothing. The rules are Keras 3's, operation for
//! operation: [`RMSprop`] (`v ← ρv + (1−ρ)g²; w ← w − lr·g/√(v+ε)`), [`Sgd`], [`Adam`].
//!
//! ```
//! use kiln_optimizers::{Optimizer, RMSprop};
//!
//! let mut opt = RMSprop::new(0.01);
//! opt.build(&[("dense/kernel".to_string(), 2)]);
//! let mut w = [1.0f32, -1.0];
//! opt.update(0, &mut w, &[0.5, -0.5]);
//! opt.finish_step();
//! // First step: v = 0.1·g², so the update is lr·g/√(0.1·g² + ε) ≈ ±0.0316.
//! assert!((w[0] - (1.0 - 0.01 / 0.1f32.sqrt())).abs() < 1e-5);
//! assert_eq!(opt.iterations(), 1);
//! ```

#![warn(missing_docs)]

mod adam;
mod decimal;
mod optimizer;
mod rmsprop;
mod sgd;
mod state;

pub use adam::Adam;
pub use optimizer::{Optimizer, Slot};
pub use rmsprop::RMSprop;
pub use sgd::Sgd;
