//! Stochastic gradient descent with optional (Nesterov) momentum.

use serde::{Deserialize, Serialize};

use crate::state::SlotTable;
use crate::{Optimizer, Slot};

/// SGD (Keras 3): `w ← w − lr·g`; with momentum `m ← μm − lr·g; w ← w + m`; Nesterov
/// `w ← w + μm − lr·g` (with the updated `m`). Defaults: `learning_rate` 0.01, no momentum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sgd {
    /// Step size.
    #[serde(default = "default_lr")]
    pub learning_rate: f32,
    /// Momentum factor (0 disables it).
    #[serde(default)]
    pub momentum: f32,
    /// Use Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    #[serde(skip)]
    state: SlotTable,
}

fn default_lr() -> f32 {
    0.01
}

impl Sgd {
    /// Plain SGD with the given learning rate.
    pub fn new(learning_rate: f32) -> Self {
        Self { learning_rate, momentum: 0.0, nesterov: false, state: SlotTable::default() }
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 { &["momentum"] } else { &[] }
    }
}

impl Default for Sgd {
    fn default() -> Self {
        Self::new(default_lr())
    }
}

#[typetag::serde(name = "SGD")]
impl Optimizer for Sgd {
    fn build(&mut self, params: &[(String, usize)]) {
        self.state = SlotTable::build(params, self.slot_names().len());
    }

    fn update(&mut self, index: usize, value: &mut [f32], grad: &[f32]) {
        let (lr, mu, nesterov) = (self.learning_rate, self.momentum, self.nesterov);
        let slots = self.state.get_mut(index, value.len());
        match slots.first_mut() {
            None => value.iter_mut().zip(grad).for_each(|(w, &g)| *w -= lr * g),
            Some(m) => {
                for i in 0..value.len() {
                    m[i] = m[i] * mu - grad[i] * lr;
                    if nesterov {
                        value[i] += m[i] * mu - grad[i] * lr;
                    } else {
                        value[i] += m[i];
                    }
                }
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
