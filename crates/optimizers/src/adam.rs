//! Adam, as Keras 3 writes it.

use serde::{Deserialize, Serialize};

use crate::decimal::OneMinus;
use crate::state::SlotTable;
use crate::{Optimizer, Slot};

/// Adam (Keras 3): with `t` = step number from 1,
/// `α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)`, `m ← m + (g−m)(1−β₁)`, `v ← v + (g²−v)(1−β₂)`,
/// `w ← w − m·α/(√v + ε)`. Defaults: `learning_rate` 0.001, `beta_1` 0.9, `beta_2` 0.999,
/// `epsilon` 1e-7, `amsgrad` off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adam {
    /// Step size.
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f32,
    /// Decay of the first moment.
    #[serde(default = "defaults::beta_1")]
    pub beta_1: f32,
    /// Decay of the second moment.
    #[serde(default = "defaults::beta_2")]
    pub beta_2: f32,
    /// Added to the root of the second moment.
    #[serde(default = "defaults::epsilon")]
    pub epsilon: f32,
    /// Use the running maximum of the second moment (AMSGrad).
    #[serde(default)]
    pub amsgrad: bool,
    #[serde(skip)]
    state: SlotTable,
    #[serde(skip)]
    one_minus: (OneMinus, OneMinus),
}

mod defaults {
    pub fn learning_rate() -> f32 {
        0.001
    }
    pub fn beta_1() -> f32 {
        0.9
    }
    pub fn beta_2() -> f32 {
        0.999
    }
    pub fn epsilon() -> f32 {
        1e-7
    }
}

impl Adam {
    /// Adam with the given learning rate and Keras' other defaults.
    pub fn new(learning_rate: f32) -> Self {
        Self {
            learning_rate,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            state: SlotTable::default(),
            one_minus: (OneMinus::default(), OneMinus::default()),
        }
    }

    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.amsgrad { &["momentum", "velocity", "velocity_hat"] } else { &["momentum", "velocity"] }
    }
}

impl Default for Adam {
    fn default() -> Self {
        Self::new(defaults::learning_rate())
    }
}

#[typetag::serde]
impl Optimizer for Adam {
    fn build(&mut self, params: &[(String, usize)]) {
        self.state = SlotTable::build(params, self.slot_names().len());
    }

    fn update(&mut self, index: usize, value: &mut [f32], grad: &[f32]) {
        let t = (self.state.iterations + 1) as f32;
        let (b1, b2, eps) = (self.beta_1, self.beta_2, self.epsilon);
        // Keras: `1 - beta` on Python floats (see `decimal`); the bias-correction powers
        // are float32 operations on the float32 betas.
        let (c1, c2) = (self.one_minus.0.of(b1), self.one_minus.1.of(b2));
        let alpha = self.learning_rate * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        let slots = self.state.get_mut(index, value.len());
        let (m, rest) = slots.split_first_mut().expect("momentum slot");
        let (v, rest) = rest.split_first_mut().expect("velocity slot");
        let mut v_hat = rest.first_mut();
        for i in 0..value.len() {
            let g = grad[i];
            m[i] += (g - m[i]) * c1;
            v[i] += (g * g - v[i]) * c2;
            let denom_v = match v_hat.as_deref_mut() {
                Some(vh) => {
                    vh[i] = vh[i].max(v[i]);
                    vh[i]
                }
                None => v[i],
            };
            value[i] -= (m[i] * alpha) / (denom_v.sqrt() + eps);
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
