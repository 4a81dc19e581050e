//! Test fixture: plugin code that fails on request, to check that the host survives.

use kiln_plugin_api::{Control, Logs, PluginCallback, PluginRegularizer};
use serde::{Deserialize, Serialize};

/// A zero penalty that panics where `when` says: `create`, `penalty` or `never`;
/// `reject` makes creation fail with an ordinary error.
#[derive(Serialize, Deserialize)]
pub struct Panicky {
    /// Where to fail.
    pub when: String,
}

impl PluginRegularizer for Panicky {
    const NAME: &'static str = "kiln_panicky>Panicky";

    fn penalty(&self, _values: &[f32]) -> f32 {
        if self.when == "penalty" {
            panic!("Panicky::penalty panicked on purpose");
        }
        0.0
    }

    fn add_grad(&self, _values: &[f32], _grad: &mut [f32], _scale: f32) {
        if self.when == "penalty" {
            panic!("Panicky::add_grad panicked on purpose");
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self.when.as_str() {
            "create" => panic!("Panicky::validate panicked on purpose"),
            "reject" => Err("Panicky refuses `reject`".into()),
            _ => Ok(()),
        }
    }
}

/// Panics at the end of epoch `epoch`.
#[derive(Serialize, Deserialize)]
pub struct PanickyCallback {
    /// The epoch (from 0) whose end panics.
    pub epoch: usize,
}

impl PluginCallback for PanickyCallback {
    const NAME: &'static str = "kiln_panicky>PanickyCallback";

    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        if epoch == self.epoch {
            panic!("PanickyCallback panicked on purpose at epoch {epoch}");
        }
        Ok(())
    }
}

kiln_plugin_api::export_plugin!(regularizers = [Panicky], callbacks = [PanickyCallback]);
