//! RMSprop, exactly as Keras 3 writes it.

use serde::{Deserialize, Serialize};

use crate::decimal::OneMinus;
use crate::state::SlotTable;
use crate::{Optimizer, Slot};

/// RMSprop (Keras 3): `v ← ρv + (1−ρ)g²`, `w ← w − lr·g/√(v+ε)` — ε *inside* the root,
/// no bias correction. Optional `centered` (subtracts the running mean gradient squared)
/// and `momentum` (`m ← μm + increment; w ← w − m`).
/// Defaults: `learning_rate` 0.001, `rho` 0.9, `momentum` 0, `epsilon` 1e-7, not centered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RMSprop {
    /// Step size.
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f32,
    /// Decay of the squared-gradient average.
    #[serde(default = "defaults::rho")]
    pub rho: f32,
    /// Momentum factor (0 disables it).
    #[serde(default)]
    pub momentum: f32,
    /// Added to the averaged square before the root.
    #[serde(default = "defaults::epsilon")]
    pub epsilon: f32,
    /// Normalise by the variance instead of the second moment.
    #[serde(default)]
    pub centered: bool,
    #[serde(skip)]
    state: SlotTable,
    #[serde(skip)]
    one_minus_rho: OneMinus,
}

mod defaults {
    pub fn learning_rate() -> f32 {
        0.001
    }
    pub fn rho() -> f32 {
        0.9
    }
    pub fn epsilon() -> f32 {
        1e-7
    }
}

impl RMSprop {
    /// RMSprop with the given learning rate and Keras' other defaults.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            learning_rate,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            state: SlotTable::default(),
            one_minus_rho: OneMinus::default(),
        }
    }

    /// Sets `rho`.
    pub fn rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets epsilon.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Turns centering on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    fn slot_names(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["velocity"],
            (true, false) => &["velocity", "momentum"],
            (false, true) => &["velocity", "average_gradient"],
            (true, true) => &["velocity", "momentum", "average_gradient"],
        }
    }
}

impl Default for RMSprop {
    fn default() -> Self {
        Self::new(defaults::learning_rate())
    }
}

#[typetag::serde]
impl Optimizer for RMSprop {
    fn build(&mut self, params: &[(String, usize)]) {
        self.state = SlotTable::build(params, self.slot_names().len());
    }

    fn update(&mut self, index: usize, value: &mut [f32], grad: &[f32]) {
        let (lr, rho, eps, mu, centered) = (self.learning_rate, self.rho, self.epsilon, self.momentum, self.centered);
        let one_minus_rho = self.one_minus_rho.of(rho);
        let slots = self.state.get_mut(index, value.len());
        if mu <= 0.0 && !centered {
            kernels::plain(value, grad, &mut slots[0], lr, rho, one_minus_rho, eps);
            return;
        }
        let (velocity, rest) = slots.split_first_mut().expect("velocity slot");
        let (mut momentum, mut average) = (None, None);
        let mut rest = rest.iter_mut();
        if mu > 0.0 {
            momentum = rest.next();
        }
        if centered {
            average = rest.next();
        }
        for i in 0..value.len() {
            let g = grad[i];
            let v = rho * velocity[i] + one_minus_rho * (g * g);
            velocity[i] = v;
            let denominator = match average.as_deref_mut() {
                Some(avg) => {
                    let a = rho * avg[i] + one_minus_rho * g;
                    avg[i] = a;
                    v - a * a + eps
                }
                None => v + eps,
            };
            let increment = (lr * g) / denominator.sqrt();
            match momentum.as_deref_mut() {
                Some(m) => {
                    m[i] = mu * m[i] + increment;
                    value[i] -= m[i];
                }
                None => value[i] -= increment,
            }
        }
    }

    fn finish_step(&mut self) {
        self.state.iterations += 1;
    }

    fn iterations(&self) -> u64 {
        self.state.iterations
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.learning_rate = learning_rate;
    }

    fn slots(&self) -> Vec<Slot<'_>> {
        self.state.slots(self.slot_names())
    }

    fn set_slot(&mut self, index: usize, slot: &str, values: &[f32]) -> bool {
        let names = self.slot_names();
        self.state.set(names, index, slot, values)
    }

    fn set_iterations(&mut self, iterations: u64) {
        self.state.iterations = iterations;
    }

    fn clone_config(&self) -> Box<dyn Optimizer> {
        Box::new(Self { state: SlotTable::default(), ..self.clone() })
    }
}

/// The hot loop of plain RMSprop (no momentum, not centered), vectorised.
mod kernels {
    kiln_tensor::multiversion! {
        /// `v ← ρv + (1−ρ)g²; w ← w − lr·g/√(v+ε)` over whole buffers.
        fn plain(value: &mut [f32], grad: &[f32], velocity: &mut [f32], lr: f32, rho: f32, one_minus_rho: f32, eps: f32) {
            for ((w, &g), v) in value.iter_mut().zip(grad).zip(velocity.iter_mut()) {
                let nv = rho * *v + one_minus_rho * (g * g);
                *v = nv;
                *w -= (lr * g) / (nv + eps).sqrt();
            }
        }
    }
}
