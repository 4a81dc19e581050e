//! L2 regularization: `l2 · Σw²`.

use serde::{Deserialize, Serialize};

use crate::regularizer::non_negative;
use crate::sums::sum_squares;
use crate::{Regularizer, RegularizerError};

/// `l2 · Σw²` (Keras `regularizers.L2`, default `l2 = 0.01`, no ½); gradient `2·l2·w`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct L2 {
    /// The penalty factor.
    #[serde(default = "default_l2")]
    pub l2: f32,
}

fn default_l2() -> f32 {
    0.01
}

impl L2 {
    /// An L2 penalty with factor `l2`.
    pub fn new(l2: f32) -> Self {
        Self { l2 }
    }
}

impl Default for L2 {
    fn default() -> Self {
        Self::new(default_l2())
    }
}

#[typetag::serde]
impl Regularizer for L2 {
    fn penalty(&self, values: &[f32]) -> Result<f32, RegularizerError> {
        Ok(self.l2 * sum_squares(values))
    }

    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), RegularizerError> {
        // TensorFlow: upstream (scale·l2) times square's gradient (w·2).
        let c = scale * self.l2;
        grad.iter_mut().zip(values).for_each(|(g, &w)| *g += c * (w * 2.0));
        Ok(())
    }

    fn validate(&self) -> Result<(), RegularizerError> {
        non_negative("L2", "l2", self.l2)
    }
}
