//! Stochastic gradient descent with optional (Nesterov) momentum.

use serde::{Deserialize, Serialize};

use kiln_tensor::subnormal::{product_floor, zero_below};

use crate::rule::{flush, non_negative};
use crate::{Step, UpdateRule};

/// SGD (Keras 3): `w ← w − lr·g`; with momentum `m ← μm − lr·g; w ← w + m`; Nesterov
/// `w ← w + μm − lr·g` (with the updated `m`). Defaults: no momentum; learning rate 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sgd {
    /// Momentum factor (0 disables it).
    pub momentum: f64,
    /// Use Nesterov momentum.
    pub nesterov: bool,
}

impl Sgd {
    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

#[typetag::serde(name = "SGD")]
impl UpdateRule for Sgd {
    fn slot_names(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 { &["momentum"] } else { &[] }
    }

    fn update(&self, step: Step, value: &mut [f32], grad: &[f32], slots: &mut [&mut [f32]]) {
        sgd(value, grad, slots.first_mut().map(|m| &mut **m), step.learning_rate, self.momentum as f32, self.nesterov);
    }

    fn default_learning_rate(&self) -> f64 {
        0.01
    }

    fn validate(&self) -> Result<(), String> {
        // Keras' sgd.py refuses a momentum outside [0, 1] ("`momentum` must be a float
        // between [0, 1]."); beyond 1 the momentum grows without bound.
        non_negative("momentum", self.momentum)?;
        if self.momentum > 1.0 {
            return Err(format!("argument `momentum` must be between 0 and 1, received momentum={}", self.momentum));
        }
        Ok(())
    }
}

/// The SGD loop (plain, momentum or Nesterov), vectorised. An operand whose product would
/// be subnormal counts as zero in it, as under TensorFlow's flush-to-zero
/// ([`kiln_tensor::subnormal`]); every other value goes through the same operations.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn sgd(value: &mut [f32], grad: &[f32], momentum: Option<&mut [f32]>, lr: f32, mu: f32, nesterov: bool) {
    let (lr_floor, mu_floor) = (product_floor(lr), product_floor(mu));
    match momentum {
        None => value.iter_mut().zip(grad).for_each(|(w, &g)| *w -= lr * zero_below(g, lr_floor)),
        Some(m) => {
            for i in 0..value.len() {
                let g = zero_below(grad[i], lr_floor);
                m[i] = flush(zero_below(m[i], mu_floor) * mu - g * lr);
                if nesterov {
                    value[i] += zero_below(m[i], mu_floor) * mu - g * lr;
                } else {
                    value[i] += m[i];
                }
            }
        }
    }
}
