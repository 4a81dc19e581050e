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
    /// `U(−a, a)` with `a = √(3 / fan_in)`.
    LecunUniform,
    /// Truncated normal with `σ = √(2 / (fan_in + fan_out)) / 0.8796…` (Keras' constant
    /// that makes the truncated distribution's deviation the untruncated one's).
    GlorotNormal,
    /// Truncated normal with `σ = √(2 / fan_in) / 0.8796…`.
    HeNormal,
    /// Truncated normal with `σ = √(1 / fan_in) / 0.8796…`.
    LecunNormal,
    /// `N(mean, stddev²)`.
    RandomNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        stddev: f32,
    },
    /// `N(mean, stddev²)` redrawn beyond two standard deviations.
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        stddev: f32,
    },
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
    /// `gain · Q` of a reduced QR of a standard normal `max(r, c) × min(r, c)` matrix, with
    /// `Q`'s columns signed by `diag(R)` and transposed when `r < c` (Keras' `Orthogonal`,
    /// `r = fan_in` rows and `c = fan_out` columns): orthonormal rows or columns. Keras'
    /// default for recurrent kernels.
    Orthogonal {
        /// The scale (Keras' default 1).
        gain: f32,
    },
    /// Keras' `VarianceScaling`: `s = scale / max(1, n)` with `n` the fan `mode` names, then
    /// `U(−√(3s), √(3s))`, a normal of `σ = √s`, or one truncated at ±2σ with `σ = √s /
    /// 0.8796…` (the Glorot, He and Lecun initializers are its special cases).
    VarianceScaling {
        /// The scale (> 0; Keras' default 1).
        scale: f32,
        /// Which fan divides it.
        mode: FanMode,
        /// The distribution drawn from.
        distribution: Distribution,
    },
}

/// The fan `VarianceScaling` divides its scale by (Keras' `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// `fan_in`.
    FanIn,
    /// `fan_out`.
    FanOut,
    /// `(fan_in + fan_out) / 2`.
    FanAvg,
}

/// The distribution `VarianceScaling` draws from (Keras' `distribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// A normal truncated at two deviations (Keras' `truncated_normal`, also `normal`).
    TruncatedNormal,
    /// A normal (`untruncated_normal`).
    UntruncatedNormal,
    /// A uniform (`uniform`).
    Uniform,
}

/// The deviation of a standard normal truncated at ±2 (Keras divides by it so that the
/// truncated draws have the intended deviation).
const TRUNCATED_STDDEV_FACTOR: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// Checks the arguments: finite values, and `minval ≤ maxval` for `RandomUniform`.
    pub fn validate(self) -> Result<(), String> {
        match self {
            Self::Constant { value } if !value.is_finite() => {
                Err(format!("argument `value` must be finite, received value={value}"))
            }
            Self::RandomUniform { minval, maxval } if !(minval.is_finite() && maxval.is_finite()) => {
                Err(format!("arguments `minval` and `maxval` must be finite, received {minval} and {maxval}"))
            }
            Self::Orthogonal { gain } if !gain.is_finite() => Err(format!("`gain` must be finite, got {gain}")),
            // Keras: "Argument `scale` must be positive float."
            Self::VarianceScaling { scale, .. } if !(scale.is_finite() && scale > 0.0) => {
                Err(format!("argument `scale` must be a positive float, received scale={scale}"))
            }
            Self::RandomUniform { minval, maxval } if minval > maxval => {
                Err(format!("argument `minval` ({minval}) must not exceed `maxval` ({maxval})"))
            }
            Self::RandomNormal { mean, stddev } | Self::TruncatedNormal { mean, stddev }
                if !(mean.is_finite() && stddev.is_finite() && stddev >= 0.0) =>
            {
                Err(format!(
                    "arguments `mean` and `stddev` must be finite and stddev ≥ 0, received {mean} and {stddev}"
                ))
            }
            _ => Ok(()),
        }
    }

    /// Refuses to initialize the 1-D parameter set by the argument `what` (a bias, a
    /// scale) with `Orthogonal`, which needs two dimensions (Keras raises too:
    /// `random_initializers.py`, "The tensor to initialize must be at least
    /// two-dimensional").
    pub fn check_vector(self, what: &str) -> Result<(), String> {
        match self {
            Self::Orthogonal { .. } => {
                Err(format!("`{what}`: Orthogonal initializes parameters of two or more dimensions; this one has one"))
            }
            _ => Ok(()),
        }
    }

    /// Fills the 1-D parameter `values` (a bias, a scale) from `rng` with Keras' fans of a
    /// shape `(n,)`: `fan_in = fan_out = n` (`compute_fans`). Not for `Orthogonal`
    /// (see [`Initializer::check_vector`]).
    pub fn fill_vector(self, values: &mut [f32], rng: &mut Rng) {
        let n = values.len();
        self.fill(values, n, n, rng)
    }

    /// Fills `values` (a parameter with the given fan-in and fan-out) from `rng`.
    pub fn fill(self, values: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut Rng) {
        let uniform = |values: &mut [f32], limit: f32, rng: &mut Rng| {
            values.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
        };
        // Keras' VarianceScaling: `scale / max(1, n)`, then σ = √s / 0.8796… (truncated).
        let truncated = |values: &mut [f32], scale: f64, n: f64, rng: &mut Rng| {
            let stddev = ((scale / n.max(1.0)).sqrt() / TRUNCATED_STDDEV_FACTOR) as f32;
            values.iter_mut().for_each(|v| *v = rng.truncated_normal(0.0, stddev));
        };
        let (fan_in_f, fan_avg) = (fan_in as f64, (fan_in + fan_out) as f64 / 2.0);
        match self {
            Self::GlorotUniform => uniform(values, (6.0 / (fan_in + fan_out) as f32).sqrt(), rng),
            Self::HeUniform => uniform(values, (6.0 / fan_in.max(1) as f32).sqrt(), rng),
            Self::LecunUniform => uniform(values, (3.0 / fan_in.max(1) as f32).sqrt(), rng),
            Self::GlorotNormal => truncated(values, 1.0, fan_avg, rng),
            Self::HeNormal => truncated(values, 2.0, fan_in_f, rng),
            Self::LecunNormal => truncated(values, 1.0, fan_in_f, rng),
            Self::RandomNormal { mean, stddev } => values.iter_mut().for_each(|v| *v = mean + stddev * rng.normal()),
            Self::TruncatedNormal { mean, stddev } => {
                values.iter_mut().for_each(|v| *v = rng.truncated_normal(mean, stddev))
            }
            Self::Zeros => values.fill(0.0),
            Self::Ones => values.fill(1.0),
            Self::Constant { value } => values.fill(value),
            Self::RandomUniform { minval, maxval } => {
                values.iter_mut().for_each(|v| *v = rng.uniform_in(minval, maxval))
            }
            Self::Orthogonal { gain } => orthogonal(values, fan_in, fan_out, gain, rng),
            Self::VarianceScaling { scale, mode, distribution } => {
                let n = match mode {
                    FanMode::FanIn => fan_in_f,
                    FanMode::FanOut => fan_out as f64,
                    FanMode::FanAvg => fan_avg,
                };
                let s = f64::from(scale) / n.max(1.0);
                match distribution {
                    Distribution::TruncatedNormal => truncated(values, f64::from(scale), n, rng),
                    Distribution::UntruncatedNormal => {
                        let stddev = s.sqrt() as f32;
                        values.iter_mut().for_each(|v| *v = stddev * rng.normal());
                    }
                    Distribution::Uniform => uniform(values, (3.0 * s).sqrt() as f32, rng),
                }
            }
        }
    }
}

/// Keras' `Orthogonal` for a `rows × cols` parameter. The QR factorization is modified
/// Gram–Schmidt in f64, whose `R` has a positive diagonal: exactly `Q · sign(diag(R))`.
fn orthogonal(values: &mut [f32], rows: usize, cols: usize, gain: f32, rng: &mut Rng) {
    let (tall, short) = (rows.max(cols), rows.min(cols));
    // Column j of the `tall × short` draw, stored contiguously.
    let mut q: Vec<Vec<f64>> = (0..short).map(|_| (0..tall).map(|_| rng.normal() as f64).collect()).collect();
    for j in 0..short {
        for k in 0..j {
            let dot: f64 = q[j].iter().zip(&q[k]).map(|(a, b)| a * b).sum();
            let (done, rest) = q.split_at_mut(j);
            rest[0].iter_mut().zip(&done[k]).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = q[j].iter().map(|a| a * a).sum::<f64>().sqrt();
        q[j].iter_mut().for_each(|a| *a /= norm);
    }
    for r in 0..rows {
        for c in 0..cols {
            // `tall × short` is the parameter itself when rows ≥ cols, its transpose else.
            let v = if rows >= cols { q[c][r] } else { q[r][c] };
            values[r * cols + c] = gain * v as f32;
        }
    }
}
