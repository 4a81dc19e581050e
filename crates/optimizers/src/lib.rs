//! kiln-optimizers: gradient-descent update rules and the state they share.
//!
//! An [`Optimizer`] is an [`UpdateRule`] plus what every rule needs: the learning rate,
//! the iteration count and per-parameter slots, allocated by [`Optimizer::build`] so a
//! step allocates nothing. Every training step calls [`Optimizer::update`] for each
//! parameter, then [`Optimizer::finish_step`]. The rules are Keras 3's, operation for
//! operation: [`RMSprop`] (`v ← ρv + (1−ρ)g²; w ← w − lr·g/√(v+ε)`), [`Sgd`], [`Adam`].
//! A new optimizer is a rule: its config, its slot names and one `update`.
//!
//! ```
//! use kiln_optimizers::{Optimizer, RMSprop};
//!
//! let mut opt = Optimizer::new(RMSprop::default(), 0.01);
//! opt.build(&[("dense/kernel".to_string(), 2)]);
//! let mut w = [1.0f32, -1.0];
//! opt.update(0, &mut w, &mut [0.5, -0.5]);
//! opt.finish_step();
//! // First step: v = 0.1·g², so the update is lr·g/√(0.1·g² + ε) ≈ ±0.0316.
//! assert!((w[0] - (1.0 - 0.01 / 0.1f32.sqrt())).abs() < 1e-5);
//! assert_eq!(opt.iterations(), 1);
//! // A rule alone converts with Keras' default learning rate.
//! assert_eq!(Optimizer::from(RMSprop::default()).learning_rate(), 0.001);
//! ```

mod adam;
mod identifier;
mod optimizer;
mod rmsprop;
mod rule;
mod schedule;
mod sgd;
mod state;

pub use adam::{Adam, AdamW};
pub use identifier::{IntoOptimizer, KNOWN_OPTIMIZERS, UnknownOptimizer};
pub use optimizer::{Clip, Optimizer, PARALLEL_MIN, Slot};
pub use rmsprop::RMSprop;
pub use rule::{Step, UpdateRule};
pub use schedule::{LearningRate, LearningRateSchedule};
pub use sgd::Sgd;
