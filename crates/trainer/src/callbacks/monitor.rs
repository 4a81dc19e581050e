//! Which way a monitored value improves: Keras' `MonitorCallback`
//! (keras/src/callbacks/monitor_callback.py), shared by EarlyStopping, ReduceLROnPlateau
//! and ModelCheckpoint.

use serde::{Deserialize, Serialize};

use crate::{Direction, Sequential, TrainError};

/// Whether smaller or larger monitored values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keras' `auto` (since 3.11): `loss` and `val_loss` are minimized; any other name,
    /// less a `val_` prefix, must be a compiled metric, whose [`Direction`] decides;
    /// anything else is an error when training starts.
    #[default]
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl Mode {
    /// Whether larger values of `monitor` are better for `model`: Keras'
    /// `MonitorCallback._set_monitor_op`. `callback` names the caller in the error Keras
    /// raises when `auto` cannot tell.
    pub fn maximizes(self, monitor: &str, model: &Sequential, callback: &str) -> Result<bool, TrainError> {
        match self {
            Mode::Max => Ok(true),
            Mode::Min => Ok(false),
            Mode::Auto => {
                let name = monitor.strip_prefix("val_").unwrap_or(monitor);
                match model.metric_direction(name) {
                    Some(direction) => Ok(direction == Direction::Up),
                    None if name == "loss" => Ok(false),
                    None => Err(TrainError::Config(format!(
                        "{callback} callback received monitor={monitor}, but kiln isn't able to automatically \
                         determine whether that metric should be maximized or minimized (it is neither `loss` nor \
                         a compiled metric: {}). Pass `mode(Mode::Max)` in order to monitor based on the highest \
                         metric value, or `mode(Mode::Min)` in order to use the lowest value.",
                        compiled_names(model)
                    ))),
                }
            }
        }
    }
}

/// The compiled metrics' names, for the error above.
fn compiled_names(model: &Sequential) -> String {
    let names: Vec<&str> = model.metrics().iter().map(|m| m.name.as_str()).collect();
    if names.is_empty() { "none are compiled".into() } else { names.join(", ") }
}

/// Keras' `_is_improvement`: `value − |min_delta| > reference` when maximizing,
/// `value + |min_delta| < reference` when minimizing; always true without a reference.
pub(crate) fn is_improvement(maximize: bool, value: f64, reference: Option<f64>, min_delta: f64) -> bool {
    let Some(reference) = reference else { return true };
    let delta = min_delta.abs();
    if maximize { value - delta > reference } else { value + delta < reference }
}

/// Prints Keras' warning for a monitored value missing from the logs on stderr, once per
/// `fit` (Python shows a repeated warning once), and keeps it in `warned`, the caller's
/// per-run record that its `warning()` method shows.
pub(crate) fn warn_missing_once(warned: &mut Option<String>, message: impl FnOnce() -> String) {
    if warned.is_none() {
        let message = message();
        eprintln!("warning: {message}");
        tracing::warn!("{message}");
        *warned = Some(message);
    }
}

/// The keys of `logs`, comma-separated as Keras lists them.
pub(crate) fn available(logs: &crate::Logs) -> String {
    logs.iter().map(|(k, _)| k).collect::<Vec<_>>().join(",")
}
