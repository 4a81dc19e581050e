//! Accurate reductions shared by the built-in regularizers.

/// `Σ|x|`, accumulated in f64 and rounded once, so the result does not depend on length.
pub(crate) fn sum_abs(x: &[f32]) -> f32 {
    x.iter().map(|&v| v.abs() as f64).sum::<f64>() as f32
}

/// `Σx²` (each square rounded to f32 as TensorFlow's `square` does), accumulated in f64.
pub(crate) fn sum_squares(x: &[f32]) -> f32 {
    x.iter().map(|&v| (v * v) as f64).sum::<f64>() as f32
}

/// TensorFlow's gradient of `abs`: `sign(x)`, with `sign(0) = 0`.
pub(crate) fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}
