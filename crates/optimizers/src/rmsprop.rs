//! RMSprop, exactly as Keras 3 writes it.

use multiversion::multiversion;
use serde::{Deserialize, Serialize};

use kiln_tensor::subnormal::{self, zero_below};

use crate::rule::{finite, flush, unit_interval};
use crate::{Step, UpdateRule};

/// RMSprop (Keras 3): `v ← ρv + (1−ρ)g²`, `w ← w − lr·g/√(v+ε)` — ε *inside* the root,
/// no bias correction. Optional `centered` (subtracts the running mean gradient squared)
/// and `momentum` (`m ← μm + increment; w ← w − m`).
/// Defaults (Keras'): `rho` 0.9, `momentum` 0, `epsilon` 1e-7, not centered; learning
/// rate 0.001.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RMSprop {
    /// Decay of the squared-gradient average, in `[0, 1]`.
    pub rho: f64,
    /// Momentum factor (0 or below disables it, as Keras' `if self.momentum > 0`).
    pub momentum: f64,
    /// Added to the averaged square before the root.
    pub epsilon: f64,
    /// Normalise by the variance instead of the second moment.
    pub centered: bool,
}

impl Default for RMSprop {
    fn default() -> Self {
        Self { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }
    }
}

impl RMSprop {
    /// Sets `rho`.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets epsilon.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Turns centering on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
}

#[typetag::serde]
impl UpdateRule for RMSprop {
    fn slot_names(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["velocity"],
            (true, false) => &["velocity", "momentum"],
            (false, true) => &["velocity", "average_gradient"],
            (true, true) => &["velocity", "momentum", "average_gradient"],
        }
    }

    fn update(&self, step: Step, value: &mut [f32], grad: &[f32], slots: &mut [&mut [f32]]) {
        // Keras: Python floats meet float32 tensors, so each constant is the double
        // rounded once to float32 — including `1 - rho`, computed in double first.
        let (lr, rho, eps) = (step.learning_rate, self.rho as f32, self.epsilon as f32);
        let one_minus_rho = (1.0 - self.rho) as f32;
        let mu = self.momentum as f32;
        let (velocity, rest) = slots.split_first_mut().expect("velocity slot");
        if self.momentum <= 0.0 && !self.centered {
            plain(value, grad, velocity, [lr, rho, one_minus_rho, eps]);
            return;
        }
        let mut rest = rest.iter_mut();
        let momentum = if self.momentum > 0.0 { rest.next().map(|m| &mut **m) } else { None };
        let average = if self.centered { rest.next().map(|a| &mut **a) } else { None };
        general(value, grad, velocity, momentum, average, [lr, rho, one_minus_rho, eps, mu]);
    }

    fn update_with_squares(
        &self,
        step: Step,
        value: &mut [f32],
        grad: &[f32],
        squares: &[f32],
        slots: &mut [&mut [f32]],
    ) {
        let (lr, rho, eps) = (step.learning_rate, self.rho as f32, self.epsilon as f32);
        let k = [lr, rho, (1.0 - self.rho) as f32, eps, self.momentum as f32];
        let (velocity, rest) = slots.split_first_mut().expect("velocity slot");
        let mut rest = rest.iter_mut();
        let momentum = if self.momentum > 0.0 { rest.next().map(|m| &mut **m) } else { None };
        let average = if self.centered { rest.next().map(|a| &mut **a) } else { None };
        with_squares(value, grad, squares, velocity, momentum, average, k);
    }

    fn non_negative_slots(&self) -> &'static [&'static str] {
        &["velocity"]
    }

    fn validate(&self) -> Result<(), String> {
        unit_interval("rho", self.rho)?;
        // Keras keeps a momentum only when it is > 0 (`if self.momentum > 0`), as here.
        finite("momentum", self.momentum)?;
        finite("epsilon", self.epsilon)
    }
}

/// RMSprop with momentum and/or centering; `k = [lr, ρ, 1−ρ, ε, μ]`. Vectorised like
/// [`plain`] (and so encoded with VEX: no SSE transition penalty after faer's assembly),
/// with the same flush-to-zero [`Floors`].
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn general(
    value: &mut [f32],
    grad: &[f32],
    velocity: &mut [f32],
    mut momentum: Option<&mut [f32]>,
    mut average: Option<&mut [f32]>,
    k: [f32; 5],
) {
    let [lr, rho, one_minus_rho, eps, mu] = k;
    let floors = Floors::new(lr, one_minus_rho);
    for i in 0..value.len() {
        let g = grad[i];
        let gs = zero_below(g, floors.square);
        let v = flush(rho * velocity[i] + one_minus_rho * (gs * gs));
        velocity[i] = v;
        let denominator = match average.as_deref_mut() {
            Some(avg) => {
                let a = flush(rho * avg[i] + one_minus_rho * zero_below(g, floors.average));
                avg[i] = a;
                let a = zero_below(a, floors.mean);
                v - a * a + eps
            }
            None => v + eps,
        };
        let increment = (lr * zero_below(g, floors.step)) / denominator.sqrt();
        match momentum.as_deref_mut() {
            Some(m) => {
                m[i] = flush(mu * m[i] + increment);
                value[i] -= m[i];
            }
            None => value[i] -= increment,
        }
    }
}

/// [`general`] with `squares` in place of `g²` in the velocity (an Embedding's sparse
/// gradient, see [`UpdateRule::update_with_squares`]).
fn with_squares(
    value: &mut [f32],
    grad: &[f32],
    squares: &[f32],
    velocity: &mut [f32],
    mut momentum: Option<&mut [f32]>,
    mut average: Option<&mut [f32]>,
    k: [f32; 5],
) {
    let [lr, rho, one_minus_rho, eps, mu] = k;
    let floors = Floors::new(lr, one_minus_rho);
    for i in 0..value.len() {
        let g = grad[i];
        let v = flush(rho * velocity[i] + one_minus_rho * zero_below(squares[i], floors.average));
        velocity[i] = v;
        let denominator = match average.as_deref_mut() {
            Some(avg) => {
                let a = flush(rho * avg[i] + one_minus_rho * zero_below(g, floors.average));
                avg[i] = a;
                let a = zero_below(a, floors.mean);
                v - a * a + eps
            }
            None => v + eps,
        };
        let increment = (lr * zero_below(g, floors.step)) / denominator.sqrt();
        match momentum.as_deref_mut() {
            Some(m) => {
                m[i] = flush(mu * m[i] + increment);
                value[i] -= m[i];
            }
            None => value[i] -= increment,
        }
    }
}

/// The hot loop of plain RMSprop (no momentum, not centered), vectorised, `k = [lr, ρ,
/// 1−ρ, ε]`: `v ← ρv + (1−ρ)g²` (flushed, see `flush`), `w ← w − lr·g/√(v+ε)` over whole
/// buffers. A gradient whose `(1−ρ)g²` or `lr·g` would be subnormal counts as zero there,
/// as under TensorFlow's flush-to-zero ([`kiln_tensor::subnormal`]); every other value
/// goes through the same operations in the same order.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn plain(value: &mut [f32], grad: &[f32], velocity: &mut [f32], k: [f32; 4]) {
    let [lr, rho, one_minus_rho, eps] = k;
    let floors = Floors::new(lr, one_minus_rho);
    for ((w, &g), v) in value.iter_mut().zip(grad).zip(velocity.iter_mut()) {
        let gs = zero_below(g, floors.square);
        let nv = flush(rho * *v + one_minus_rho * (gs * gs));
        *v = nv;
        *w -= (lr * zero_below(g, floors.step)) / (nv + eps).sqrt();
    }
}

/// Below these magnitudes a gradient's product would be subnormal, and counts as zero in
/// it, as under TensorFlow's flush-to-zero ([`kiln_tensor::subnormal`]).
#[derive(Clone, Copy)]
struct Floors {
    /// In `(1−ρ)·g²`.
    square: f32,
    /// In `(1−ρ)·g` (the centered average) and `(1−ρ)·s` (a given square `s`).
    average: f32,
    /// Of the centered average `a` in `a²`.
    mean: f32,
    /// In `lr·g`.
    step: f32,
}

impl Floors {
    fn new(lr: f32, one_minus_rho: f32) -> Self {
        Self {
            square: subnormal::square_floor(one_minus_rho),
            average: subnormal::product_floor(one_minus_rho),
            mean: subnormal::square_floor(1.0),
            step: subnormal::product_floor(lr),
        }
    }
}
