//! Keras' `1 − β` constants, computed the way Python computes them.
//!
//! Keras writes `1 - self.rho` with `rho` a Python float (`0.9`), so the constant is
//! `1 − 0.9` in double precision, rounded to float32: exactly `0.1f32`. kiln stores
//! hyperparameters as `f32` (`0.9f32 = 0.89999998…`), and `1 − 0.9f32` would be
//! `0.100000024`. Recovering the shortest decimal that rounds to the stored `f32` gives
//! back the number the user wrote, and with it Keras' constant.

/// `1 − x` as Keras computes it for a hyperparameter written as the decimal `x`.
pub(crate) fn one_minus(x: f32) -> f32 {
    // `{}` prints the shortest decimal that parses back to the same f32.
    let decimal: f64 = x.to_string().parse().expect("a printed f32 parses");
    (1.0 - decimal) as f32
}

/// A cached [`one_minus`], recomputed only when the hyperparameter changes, so an update
/// step never formats (allocates).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OneMinus {
    bits: Option<u32>,
    value: f32,
}

impl OneMinus {
    /// `1 − x`, Keras style.
    pub fn of(&mut self, x: f32) -> f32 {
        if self.bits != Some(x.to_bits()) {
            self.bits = Some(x.to_bits());
            self.value = one_minus(x);
        }
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_double_arithmetic() {
        assert_eq!(one_minus(0.9), 0.1f32);
        assert_eq!(one_minus(0.999), 0.001f32);
        assert_ne!(1.0 - 0.9f32, 0.1f32, "the naive f32 result differs");
        let mut cache = OneMinus::default();
        assert_eq!(cache.of(0.95), 0.05f32);
        assert_eq!(cache.of(0.5), 0.5f32);
    }
}
