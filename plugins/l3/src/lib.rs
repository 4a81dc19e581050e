//! kiln-l3: the L3 weight penalty `l3 · Σ|w|³`, as a kiln plugin.
//!
//! Like L2 it punishes large weights, but cubically: small weights are almost free, large
//! ones cost far more. Registered as `kiln_l3>L3`, config `{"l3": 0.01}`.

use kiln_plugin_api::RegularizerPlugin;
use serde::{Deserialize, Serialize};

/// `l3 · Σ|w|³`; gradient `3·l3·w·|w|`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L3 {
    /// The penalty factor (Keras' default for L1/L2 is 0.01; same here).
    #[serde(default = "default_l3")]
    pub l3: f32,
}

fn default_l3() -> f32 {
    0.01
}

impl RegularizerPlugin for L3 {
    const NAME: &'static str = "kiln_l3>L3";

    fn penalty(&self, values: &[f32]) -> Result<f32, String> {
        Ok(self.l3 * values.iter().map(|w| w.abs().powi(3)).sum::<f32>())
    }

    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), String> {
        // d|w|³/dw = 3·w·|w| (smooth, zero at 0).
        let c = scale * 3.0 * self.l3;
        grad.iter_mut().zip(values).for_each(|(g, &w)| *g += c * w * w.abs());
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if self.l3.is_finite() && self.l3 >= 0.0 { Ok(()) } else { Err(format!("l3 must be ≥ 0, got {}", self.l3)) }
    }
}

kiln_plugin_api::export_plugin!(regularizers = [L3]);
