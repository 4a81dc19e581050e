//! Learning-rate schedules: Keras 3's `keras.optimizers.schedules`, evaluated in float32
//! as Keras evaluates them, at the optimizer's iteration count before each update.

use serde::{Deserialize, Serialize};

/// A learning rate that depends on the step (Keras' `LearningRateSchedule`). Its fields
/// carry Keras' names and defaults, so a Keras config deserializes straight into it;
/// kiln writes it as `{"type": "ExponentialDecay", "initial_learning_rate": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum LearningRateSchedule {
    /// `lr₀ · rateᵖ` with `p = step / decay_steps` (floored when `staircase`).
    ExponentialDecay {
        /// `lr₀`.
        initial_learning_rate: f64,
        /// Steps per decay period (> 0).
        decay_steps: f64,
        /// Factor per period.
        decay_rate: f64,
        /// Decay at whole periods only.
        #[serde(default)]
        staircase: bool,
    },
    /// `values[0]` while `step ≤ boundaries[0]`, `values[i]` while `boundaries[i−1] < step ≤
    /// boundaries[i]`, the last value after the last boundary.
    PiecewiseConstantDecay {
        /// Increasing step boundaries.
        boundaries: Vec<f64>,
        /// One more value than boundaries.
        values: Vec<f64>,
    },
    /// `lr₀ / (1 + rate · p)`, `p = step / decay_steps` (floored when `staircase`).
    InverseTimeDecay {
        /// `lr₀`.
        initial_learning_rate: f64,
        /// Steps per decay period (> 0).
        decay_steps: f64,
        /// Rate per period.
        decay_rate: f64,
        /// Decay at whole periods only.
        #[serde(default)]
        staircase: bool,
    },
    /// `(lr₀ − end) · (1 − p)^power + end`, `p = min(step, decay_steps) / decay_steps`; with
    /// `cycle`, `decay_steps` grows to the next multiple of itself past `step` instead.
    PolynomialDecay {
        /// `lr₀`.
        initial_learning_rate: f64,
        /// Steps to reach `end_learning_rate` (> 0).
        decay_steps: f64,
        /// The final rate (default 0.0001).
        #[serde(default = "end_lr")]
        end_learning_rate: f64,
        /// The polynomial's power (default 1, linear).
        #[serde(default = "one")]
        power: f64,
        /// Restart the decay at each multiple of `decay_steps`.
        #[serde(default)]
        cycle: bool,
    },
    /// Cosine decay from `lr₀` (or, after a linear warm-up of `warmup_steps` to
    /// `warmup_target`, from the target) to `alpha · lr` over `decay_steps`:
    /// `lr · ((1 − α) · ½(1 + cos(π · step / decay_steps)) + α)`.
    CosineDecay {
        /// `lr₀`.
        initial_learning_rate: f64,
        /// Steps of the decay (> 0).
        decay_steps: f64,
        /// The floor, as a fraction of the rate decayed from (default 0).
        #[serde(default)]
        alpha: f64,
        /// The rate reached by the warm-up; `None`: no warm-up.
        #[serde(default)]
        warmup_target: Option<f64>,
        /// Steps of the linear warm-up (default 0).
        #[serde(default)]
        warmup_steps: f64,
    },
}

fn end_lr() -> f64 {
    0.0001
}

fn one() -> f64 {
    1.0
}

/// The step as `PiecewiseConstantDecay` compares it: the optimizer's integer iteration
/// count, or a float32 variable.
#[derive(Clone, Copy)]
enum Step {
    Int(i64),
    Float(f32),
}

/// Keras' `PiecewiseConstantDecay.__call__`: the sum of each range's value times whether
/// `step` is in it (`step ≤ b₀`, `bᵢ₋₁ < step ≤ bᵢ`, `step > b_last`), in float32, each
/// boundary as `cast` makes it in the step's type. NaN for a schedule `validate` refuses
/// (no boundary, or not one value more than boundaries).
fn piecewise<T: PartialOrd + Copy>(step: T, boundaries: &[f64], cast: impl Fn(f64) -> T, values: &[f64]) -> f32 {
    let (Some(&first), Some(&last)) = (boundaries.first(), boundaries.last()) else { return f32::NAN };
    if values.len() != boundaries.len() + 1 {
        return f32::NAN;
    }
    let mut r = 0.0f32;
    if step <= cast(first) {
        r += f(values[0]);
    }
    if step > cast(last) {
        r += f(values[values.len() - 1]);
    }
    for (w, &v) in boundaries.windows(2).zip(&values[1..values.len() - 1]) {
        if step > cast(w[0]) && step <= cast(w[1]) {
            r += f(v);
        }
    }
    r
}

/// Python's `float(x)` of a float32 tensor, back to the f32 Keras computes with.
fn f(x: f64) -> f32 {
    x as f32
}

impl LearningRateSchedule {
    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Self::ExponentialDecay { .. } => "ExponentialDecay",
            Self::PiecewiseConstantDecay { .. } => "PiecewiseConstantDecay",
            Self::InverseTimeDecay { .. } => "InverseTimeDecay",
            Self::PolynomialDecay { .. } => "PolynomialDecay",
            Self::CosineDecay { .. } => "CosineDecay",
        }
    }

    /// The rate at `step` (completed updates before this one), in float32 arithmetic; this
    /// is what training uses.
    pub fn at(&self, step: u64) -> f32 {
        self.eval(step as f32, Step::Int(step as i64))
    }

    /// The rate at a float32 step, which may be negative or fractional (Keras' schedules
    /// called on a float variable, as `PiecewiseConstantDecay`'s test does at −999.0): the
    /// decays compute with it as they do with `step as f32`; `PiecewiseConstantDecay`
    /// casts its boundaries to float32 and compares them with it, as Keras casts the
    /// boundaries to the step's dtype.
    pub fn at_float(&self, step: f32) -> f32 {
        self.eval(step, Step::Float(step))
    }

    /// The rate at step `s` (as float32), `step` being the same step in the dtype Keras'
    /// `PiecewiseConstantDecay` compares its boundaries in.
    fn eval(&self, s: f32, step: Step) -> f32 {
        match *self {
            Self::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let mut p = s / f(decay_steps);
                if staircase {
                    p = p.floor();
                }
                f(initial_learning_rate) * f(decay_rate).powf(p)
            }
            // Keras makes a Python float boundary a float32 tensor, then casts it to the
            // step's type (an integer step truncates that); a Python int stays exact. A
            // whole-valued boundary is taken as an int (a float one above 2²⁴ would round).
            Self::PiecewiseConstantDecay { ref boundaries, ref values } => match step {
                Step::Int(step) => {
                    piecewise(step, boundaries, |b| if b.fract() == 0.0 { b as i64 } else { f(b) as i64 }, values)
                }
                Step::Float(step) => piecewise(step, boundaries, f, values),
            },
            Self::InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let mut p = s / f(decay_steps);
                if staircase {
                    p = p.floor();
                }
                f(initial_learning_rate) / (1.0 + f(decay_rate) * p)
            }
            Self::PolynomialDecay { initial_learning_rate, decay_steps, end_learning_rate, power, cycle } => {
                let (lr0, end) = (f(initial_learning_rate), f(end_learning_rate));
                let mut steps = f(decay_steps);
                let mut t = s;
                if cycle {
                    let multiplier = if t == 0.0 { 1.0 } else { (t / f(decay_steps)).ceil() };
                    steps *= multiplier;
                } else {
                    t = t.min(steps);
                }
                let p = t / steps;
                (lr0 - end) * (1.0 - p).powf(f(power)) + end
            }
            Self::CosineDecay { initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps } => {
                let (lr0, steps) = (f(initial_learning_rate), f(decay_steps));
                let decay = |t: f32, from: f32| {
                    let cosine = 0.5 * (1.0 + (std::f32::consts::PI * (t / steps)).cos());
                    from * (f(1.0 - alpha) * cosine + f(alpha))
                };
                match warmup_target {
                    None => decay(s.min(steps), lr0),
                    Some(target) => {
                        let (target, warm) = (f(target), f(warmup_steps));
                        let t = s.min(steps + warm);
                        if t < warm { (target - lr0) * (t / warm) + lr0 } else { decay(t - warm, target) }
                    }
                }
            }
        }
    }

    /// Checks the arguments as Keras' constructors do (naming the argument).
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{}: argument `{name}` must be > 0, received {name}={v}", self.class_name()))
            }
        };
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{}: argument `{name}` must be finite, received {name}={v}", self.class_name()))
            }
        };
        match self {
            Self::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, .. }
            | Self::InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, .. } => {
                finite("initial_learning_rate", *initial_learning_rate)?;
                finite("decay_rate", *decay_rate)?;
                positive("decay_steps", *decay_steps)
            }
            Self::PiecewiseConstantDecay { boundaries, values } => {
                if boundaries.is_empty() {
                    // Keras' constructor takes it; its first call fails (`boundaries[0]`).
                    return Err("PiecewiseConstantDecay: `boundaries` must not be empty".into());
                }
                if values.len() != boundaries.len() + 1 {
                    return Err(format!(
                        "PiecewiseConstantDecay: the length of `boundaries` ({}) should be 1 less than the length \
                         of `values` ({})",
                        boundaries.len(),
                        values.len()
                    ));
                }
                boundaries.iter().chain(values).try_for_each(|&v| finite("boundaries/values", v))
            }
            Self::PolynomialDecay { initial_learning_rate, decay_steps, end_learning_rate, power, .. } => {
                finite("initial_learning_rate", *initial_learning_rate)?;
                finite("end_learning_rate", *end_learning_rate)?;
                finite("power", *power)?;
                positive("decay_steps", *decay_steps)
            }
            Self::CosineDecay { initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps } => {
                finite("initial_learning_rate", *initial_learning_rate)?;
                finite("alpha", *alpha)?;
                if let Some(t) = warmup_target {
                    finite("warmup_target", *t)?;
                }
                if !(warmup_steps.is_finite() && *warmup_steps >= 0.0) {
                    return Err(format!("CosineDecay: argument `warmup_steps` must be ≥ 0, received {warmup_steps}"));
                }
                positive("decay_steps", *decay_steps)
            }
        }
    }
}

/// A learning rate: a constant, or a [`LearningRateSchedule`]. Anything that takes a
/// learning rate takes either (`0.01` converts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LearningRate {
    /// A fixed rate (float32, as Keras' variable holds it).
    Constant(f32),
    /// A rate evaluated at each step.
    Schedule(LearningRateSchedule),
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        Self::Constant(v as f32)
    }
}

impl From<f32> for LearningRate {
    fn from(v: f32) -> Self {
        Self::Constant(v)
    }
}

impl From<LearningRateSchedule> for LearningRate {
    fn from(s: LearningRateSchedule) -> Self {
        Self::Schedule(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_keras_formulas() {
        let e = LearningRateSchedule::ExponentialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 10.0,
            decay_rate: 0.5,
            staircase: true,
        };
        assert_eq!((e.at(0), e.at(9), e.at(10), e.at(25)), (0.1, 0.1, 0.05, 0.025));
        let p =
            LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![2.0, 4.0], values: vec![1.0, 0.5, 0.1] };
        assert_eq!([0, 2, 3, 4, 5].map(|s| p.at(s)), [1.0, 1.0, 0.5, 0.5, 0.1]);
        let c = LearningRateSchedule::CosineDecay {
            initial_learning_rate: 0.0,
            decay_steps: 10.0,
            alpha: 0.0,
            warmup_target: Some(1.0),
            warmup_steps: 4.0,
        };
        assert_eq!((c.at(0), c.at(2), c.at(4)), (0.0, 0.5, 1.0));
        assert!(c.at(14) < 1e-6 && c.at(100) < 1e-6);
        let poly = LearningRateSchedule::PolynomialDecay {
            initial_learning_rate: 1.0,
            decay_steps: 4.0,
            end_learning_rate: 0.0,
            power: 1.0,
            cycle: false,
        };
        assert_eq!([0, 2, 4, 8].map(|s| poly.at(s)), [1.0, 0.5, 0.0, 0.0]);
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = LearningRateSchedule::ExponentialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 0.0,
            decay_rate: 0.5,
            staircase: false,
        };
        assert!(e.validate().unwrap_err().contains("decay_steps"));
        let p = LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![1.0], values: vec![1.0] };
        assert!(p.validate().unwrap_err().contains("1 less"));
        // Unvalidated, it gives NaN rather than panicking.
        assert!(p.at(0).is_nan());
        let empty = LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![], values: vec![0.1] };
        assert!(empty.validate().unwrap_err().contains("empty") && empty.at(3).is_nan());
    }

    #[test]
    fn float_boundaries_become_float32_before_the_integer_step_meets_them() {
        // Keras 3.15.1: boundaries [0.57·100] = [56.99999999999999] is 57.0 as float32, so
        // iteration 57 still takes values[0]; [10.9, 20] truncates 10.9 to 10.
        let p = LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![0.57 * 100.0], values: vec![1.0, 0.5] };
        assert_eq!([56, 57, 58].map(|s| p.at(s)), [1.0, 1.0, 0.5]);
        let p =
            LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![10.9, 20.0], values: vec![1.0, 0.5, 0.25] };
        assert_eq!([10, 11, 20, 21].map(|s| p.at(s)), [1.0, 0.5, 0.5, 0.25]);
    }
}
