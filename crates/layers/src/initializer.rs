//! Initial values for parameters.

use kiln_tensor::Rng;
use serde::{Deserialize, Serialize};

/// How a parameter's initial values are drawn. Serialized as `{"type": "GlorotUniform"}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Initializer {
    /// `U(−a, a)` with `a = √(6 / (fan_in + fan_out))` (Keras' default for kernels).
    #[default]
    GlorotUniform,
    /// `U(−a, a)` with `a = √(6 / fan_in)`.
    HeUniform,
    /// All zeros (Keras' default for biases).
    Zeros,
    /// All ones.
    Ones,
    /// Every value equal to `value`.
    Constant {
        /// The value.
        value: f32,
    },
    /// `U(minval, maxval)`.
    RandomUniform {
        /// Lower bound.
        minval: f32,
        /// Upper bound.
        maxval: f32,
    },
}

impl Initializer {
    /// Fills `values` (a parameter with the given fan-in and fan-out) from `rng`.
    pub fn fill(self, values: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut Rng) {
        let uniform = |values: &mut [f32], limit: f32, rng: &mut Rng| {
            values.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
        };
        match self {
            Self::GlorotUniform => uniform(values, (6.0 / (fan_in + fan_out) as f32).sqrt(), rng),
            Self::HeUniform => uniform(values, (6.0 / fan_in.max(1) as f32).sqrt(), rng),
            Self::Zeros => values.fill(0.0),
            Self::Ones => values.fill(1.0),
            Self::Constant { value } => values.fill(value),
            Self::RandomUniform { minval, maxval } => {
                values.iter_mut().for_each(|v| *v = rng.uniform_in(minval, maxval))
            }
        }
    }
}
