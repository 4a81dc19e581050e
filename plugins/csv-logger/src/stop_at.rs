//! Stop as soon as a monitored log value is good enough.

use kiln_plugin_api::{CallbackPlugin, Control, Logs};
use serde::{Deserialize, Serialize};

/// Stops training at the end of the first epoch whose `monitor` is at or below
/// `threshold` (`mode: "min"`, the default) or at or above it (`mode: "max"`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopAtThreshold {
    /// The log key to watch.
    #[serde(default = "default_monitor")]
    pub monitor: String,
    /// The value to reach.
    pub threshold: f64,
    /// `min` (smaller is better) or `max`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// The epoch at which training was stopped (state, not config).
    #[serde(skip)]
    pub stopped_epoch: Option<usize>,
}

fn default_monitor() -> String {
    "loss".into()
}

fn default_mode() -> String {
    "min".into()
}

impl CallbackPlugin for StopAtThreshold {
    const NAME: &'static str = "kiln_csv_logger>StopAtThreshold";

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control) -> Result<(), String> {
        let Some(&value) = logs.get(&self.monitor) else {
            let keys: Vec<_> = logs.keys().collect();
            return Err(format!("no `{}` in the logs (have {keys:?})", self.monitor));
        };
        let reached = if self.mode == "max" { value >= self.threshold } else { value <= self.threshold };
        if reached {
            self.stopped_epoch = Some(epoch);
            ctl.stop_training();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        match self.mode.as_str() {
            "min" | "max" => Ok(()),
            other => Err(format!("mode must be `min` or `max`, got `{other}`")),
        }
    }
}
