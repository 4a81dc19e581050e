//! L1 regularization: `l1 · Σ|w|`.

use serde::{Deserialize, Serialize};

use crate::regularizer::non_negative;
use crate::sums::{sign, sum_abs};
use crate::{Regularizer, RegularizerError};

/// `l1 · Σ|w|` (Keras `regularizers.L1`, default `l1 = 0.01`); gradient `l1 · sign(w)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct L1 {
    /// The penalty factor.
    #[serde(default = "default_l1")]
    pub l1: f32,
}

fn default_l1() -> f32 {
    0.01
}

impl L1 {
    /// An L1 penalty with factor `l1`.
    pub fn new(l1: f32) -> Self {
        Self { l1 }
    }
}

impl Default for L1 {
    fn default() -> Self {
        Self::new(default_l1())
    }
}

#[typetag::serde]
impl Regularizer for L1 {
    fn penalty(&self, values: &[f32]) -> Result<f32, RegularizerError> {
        Ok(self.l1 * sum_abs(values))
    }

    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), RegularizerError> {
        let c = scale * self.l1;
        grad.iter_mut().zip(values).for_each(|(g, &w)| *g += c * sign(w));
        Ok(())
    }

    fn validate(&self) -> Result<(), RegularizerError> {
        non_negative("L1", "l1", self.l1)
    }
}
