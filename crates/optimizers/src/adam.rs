//! Adam, as Keras 3 writes it.

use serde::{Deserialize, Serialize};

use kiln_tensor::subnormal::{product_floor, square_floor, zero_below};

use crate::rule::{finite, flush, unit_interval};
use crate::{Step, UpdateRule};

/// Adam (Keras 3): with `t` = step number from 1,
/// `α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)`, `m ← m + (g−m)(1−β₁)`, `v ← v + (g²−v)(1−β₂)`,
/// `w ← w − m·α/(√v + ε)`. Defaults: `beta_1` 0.9, `beta_2` 0.999, `epsilon` 1e-7,
/// `amsgrad` off; learning rate 0.001.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Adam {
    /// Decay of the first moment, in `[0, 1]`.
    pub beta_1: f64,
    /// Decay of the second moment, in `[0, 1]`.
    pub beta_2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }
    }
}

impl Adam {
    /// Sets `beta_1`.
    pub fn beta_1(mut self, beta_1: f64) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Sets `beta_2`.
    pub fn beta_2(mut self, beta_2: f64) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Sets epsilon.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }
}

#[typetag::serde]
impl UpdateRule for Adam {
    fn slot_names(&self) -> &'static [&'static str] {
        if self.amsgrad { &["momentum", "velocity", "velocity_hat"] } else { &["momentum", "velocity"] }
    }

    fn update(&self, step: Step, value: &mut [f32], grad: &[f32], slots: &mut [&mut [f32]]) {
        let t = (step.iteration + 1) as f32;
        let (b1, b2, eps) = (self.beta_1 as f32, self.beta_2 as f32, self.epsilon as f32);
        // Keras: `1 - beta` on Python floats, rounded once; the bias-correction powers are
        // float32 operations on the float32 betas.
        let (c1, c2) = ((1.0 - self.beta_1) as f32, (1.0 - self.beta_2) as f32);
        let alpha = step.learning_rate * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        let (m, rest) = slots.split_first_mut().expect("momentum slot");
        let (v, rest) = rest.split_first_mut().expect("velocity slot");
        adam(value, grad, m, v, rest.first_mut().map(|vh| &mut **vh), [c1, c2, alpha, eps]);
    }

    fn update_with_squares(
        &self,
        step: Step,
        value: &mut [f32],
        grad: &[f32],
        squares: &[f32],
        slots: &mut [&mut [f32]],
    ) {
        let t = (step.iteration + 1) as f32;
        let (b1, b2, eps) = (self.beta_1 as f32, self.beta_2 as f32, self.epsilon as f32);
        let (c1, c2) = ((1.0 - self.beta_1) as f32, (1.0 - self.beta_2) as f32);
        let alpha = step.learning_rate * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        let (m, rest) = slots.split_first_mut().expect("momentum slot");
        let (v, rest) = rest.split_first_mut().expect("velocity slot");
        let mut v_hat = rest.first_mut().map(|vh| &mut **vh);
        let floors = Floors::new([c1, c2, alpha]);
        for i in 0..value.len() {
            let g = grad[i];
            m[i] = flush(m[i] + zero_below(g - m[i], floors.c1) * c1);
            // Keras: `(square(g) − v)·(1 − β₂)` with g sparse: squared per occurrence.
            v[i] = flush(v[i] + zero_below(squares[i] - v[i], floors.c2) * c2);
            let denom_v = match v_hat.as_deref_mut() {
                Some(vh) => {
                    // ops.maximum keeps a NaN of either side (Rust's `max` would drop it).
                    vh[i] = if v[i].is_nan() || vh[i].is_nan() { f32::NAN } else { vh[i].max(v[i]) };
                    vh[i]
                }
                None => v[i],
            };
            value[i] -= (zero_below(m[i], floors.alpha) * alpha) / (denom_v.sqrt() + eps);
        }
    }

    fn non_negative_slots(&self) -> &'static [&'static str] {
        &["velocity", "velocity_hat"]
    }

    fn validate(&self) -> Result<(), String> {
        unit_interval("beta_1", self.beta_1)?;
        unit_interval("beta_2", self.beta_2)?;
        finite("epsilon", self.epsilon)
    }
}

/// The Adam loop; `k = [1−β₁, 1−β₂, α, ε]`, vectorised. An operand whose product would
/// be subnormal counts as zero in it, as under TensorFlow's flush-to-zero
/// ([`kiln_tensor::subnormal`]); every other value goes through the same operations.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn adam(value: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], mut v_hat: Option<&mut [f32]>, k: [f32; 4]) {
    let [c1, c2, alpha, eps] = k;
    let floors = Floors::new([c1, c2, alpha]);
    for i in 0..value.len() {
        let g = grad[i];
        m[i] = flush(m[i] + zero_below(g - m[i], floors.c1) * c1);
        let gs = zero_below(g, floors.square);
        v[i] = flush(v[i] + zero_below(gs * gs - v[i], floors.c2) * c2);
        let denom_v = match v_hat.as_deref_mut() {
            Some(vh) => {
                // ops.maximum keeps a NaN of either side (Rust's `max` would drop it).
                vh[i] = if v[i].is_nan() || vh[i].is_nan() { f32::NAN } else { vh[i].max(v[i]) };
                vh[i]
            }
            None => v[i],
        };
        value[i] -= (zero_below(m[i], floors.alpha) * alpha) / (denom_v.sqrt() + eps);
    }
}

/// Below these magnitudes an operand's product would be subnormal (see [`adam`]).
#[derive(Clone, Copy)]
struct Floors {
    /// Of `g − m` in `(g − m)·(1−β₁)`.
    c1: f32,
    /// Of `g² − v` in `(g² − v)·(1−β₂)`.
    c2: f32,
    /// Of `g` in `g²`.
    square: f32,
    /// Of `m` in `m·α`.
    alpha: f32,
}

impl Floors {
    fn new([c1, c2, alpha]: [f32; 3]) -> Self {
        Self { c1: product_floor(c1), c2: product_floor(c2), square: square_floor(1.0), alpha: product_floor(alpha) }
    }
}

/// AdamW (Keras 3): [`Adam`]'s update with decoupled weight decay, which the
/// [`Optimizer`](crate::Optimizer) applies before each update (`w ← w − w·wd·lr`; default
/// `weight_decay` 0.004, as Keras' `AdamW`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdamW(pub Adam);

#[typetag::serde]
impl UpdateRule for AdamW {
    fn slot_names(&self) -> &'static [&'static str] {
        self.0.slot_names()
    }

    fn update(&self, step: Step, value: &mut [f32], grad: &[f32], slots: &mut [&mut [f32]]) {
        self.0.update(step, value, grad, slots);
    }

    fn update_with_squares(
        &self,
        step: Step,
        value: &mut [f32],
        grad: &[f32],
        squares: &[f32],
        slots: &mut [&mut [f32]],
    ) {
        self.0.update_with_squares(step, value, grad, squares, slots);
    }

    fn non_negative_slots(&self) -> &'static [&'static str] {
        self.0.non_negative_slots()
    }

    fn default_weight_decay(&self) -> Option<f64> {
        Some(0.004)
    }

    fn validate(&self) -> Result<(), String> {
        self.0.validate()
    }
}
