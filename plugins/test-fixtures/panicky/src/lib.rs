//! Test fixture: plugin code that fails on request, to check that the host survives.

use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_plugin_api::{CallbackPlugin, Control, Logs, RegularizerPlugin};
use serde::{Deserialize, Serialize};

/// A zero penalty that fails where `when` says: panics in `create`, `penalty` or
/// `never`; `reject` makes creation fail with an ordinary error; `error-after` returns
/// an error from `penalty` once it has been called `calls` times.
#[derive(Serialize, Deserialize)]
pub struct Panicky {
    /// Where to fail.
    pub when: String,
    /// For `error-after`: how many calls succeed first.
    #[serde(default)]
    pub calls: usize,
    #[serde(skip)]
    seen: AtomicUsize,
}

impl RegularizerPlugin for Panicky {
    const NAME: &'static str = "kiln_panicky>Panicky";

    fn penalty(&self, _values: &[f32]) -> Result<f32, String> {
        match self.when.as_str() {
            "penalty" => panic!("Panicky::penalty panicked on purpose"),
            "error-after" if self.seen.fetch_add(1, Ordering::Relaxed) >= self.calls => {
                Err(format!("Panicky::penalty fails on purpose after {} calls", self.calls))
            }
            _ => Ok(0.0),
        }
    }

    fn add_grad(&self, _values: &[f32], _grad: &mut [f32], _scale: f32) -> Result<(), String> {
        if self.when == "penalty" {
            panic!("Panicky::add_grad panicked on purpose");
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        match self.when.as_str() {
            "create" => panic!("Panicky::validate panicked on purpose"),
            "reject" => Err("Panicky refuses `reject`".into()),
            _ => Ok(()),
        }
    }
}

/// Panics at the end of epoch `epoch`, or in `wants_batches` when `panic_wants_batches`.
#[derive(Serialize, Deserialize)]
pub struct PanickyCallback {
    /// The epoch (from 0) whose end panics.
    pub epoch: usize,
    /// Panic when asked whether batch hooks are wanted.
    #[serde(default)]
    pub panic_wants_batches: bool,
}

impl CallbackPlugin for PanickyCallback {
    const NAME: &'static str = "kiln_panicky>PanickyCallback";

    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        if epoch == self.epoch {
            panic!("PanickyCallback panicked on purpose at epoch {epoch}");
        }
        Ok(())
    }

    fn wants_batches(&self) -> bool {
        if self.panic_wants_batches {
            panic!("PanickyCallback::wants_batches panicked on purpose");
        }
        false
    }
}

kiln_plugin_api::export_plugin!(regularizers = [Panicky], callbacks = [PanickyCallback]);
