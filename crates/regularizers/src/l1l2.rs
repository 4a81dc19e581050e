//! Combined L1 and L2 regularization.

use serde::{Deserialize, Serialize};

use crate::regularizer::non_negative;
use crate::sums::{sign, sum_abs, sum_squares};
use crate::{Regularizer, RegularizerError};

/// `l1 · Σ|w| + l2 · Σw²` (Keras `regularizers.L1L2`; Keras 3 defaults both factors to 0,
/// `L1L2::default()` does the same).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct L1L2 {
    /// The L1 factor.
    #[serde(default)]
    pub l1: f32,
    /// The L2 factor.
    #[serde(default)]
    pub l2: f32,
}

impl L1L2 {
    /// A combined penalty with factors `l1` and `l2`.
    pub fn new(l1: f32, l2: f32) -> Self {
        Self { l1, l2 }
    }
}

#[typetag::serde]
impl Regularizer for L1L2 {
    fn penalty(&self, values: &[f32]) -> Result<f32, RegularizerError> {
        let mut p = 0.0;
        if self.l1 != 0.0 {
            p += self.l1 * sum_abs(values);
        }
        if self.l2 != 0.0 {
            p += self.l2 * sum_squares(values);
        }
        Ok(p)
    }

    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), RegularizerError> {
        let (c1, c2) = (scale * self.l1, scale * self.l2);
        grad.iter_mut().zip(values).for_each(|(g, &w)| *g += c1 * sign(w) + c2 * (w * 2.0));
        Ok(())
    }

    fn validate(&self) -> Result<(), RegularizerError> {
        non_negative("L1L2", "l1", self.l1)?;
        non_negative("L1L2", "l2", self.l2)
    }
}
