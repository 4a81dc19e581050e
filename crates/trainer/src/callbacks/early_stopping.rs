//! Stop when a monitored value stops improving.

use serde::{Deserialize, Serialize};

use super::{Callback, Control};
use crate::{Logs, TrainError, Weights};

/// Whether smaller or larger monitored values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `max` when the monitored name contains `acc` or `auc`, else `min` (Keras).
    #[default]
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl Mode {
    /// Whether larger values of `monitor` are better under this mode.
    pub fn maximizes(self, monitor: &str) -> bool {
        match self {
            Mode::Max => true,
            Mode::Min => false,
            Mode::Auto => monitor.contains("acc") || monitor.contains("auc"),
        }
    }

    /// Keras' `_is_improvement` for `monitor`: `value − |min_delta| > reference` when
    /// maximizing, `value + |min_delta| < reference` when minimizing; always true without
    /// a reference yet.
    pub fn improves(self, monitor: &str, value: f64, reference: Option<f64>, min_delta: f64) -> bool {
        let Some(reference) = reference else { return true };
        let delta = min_delta.abs();
        if self.maximizes(monitor) { value - delta > reference } else { value + delta < reference }
    }
}

/// Keras' `EarlyStopping`: stop after `patience` epochs without an improvement of at least
/// `min_delta` in `monitor`. With `restore_best_weights`, the best epoch's weights are put
/// back when training ends — whatever ended it (Keras' later behaviour, keras#18822).
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    /// The log key to watch.
    pub monitor: String,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Direction of improvement.
    pub mode: Mode,
    /// A value the monitor must beat for the patience counter to reset.
    pub baseline: Option<f64>,
    /// Put the best epoch's weights back at the end.
    pub restore_best_weights: bool,
    /// Epochs to wait before watching at all.
    pub start_from_epoch: usize,
    run: Run,
}

/// The per-run state.
#[derive(Debug, Clone, Default)]
struct Run {
    wait: usize,
    best: Option<f64>,
    best_epoch: Option<usize>,
    best_weights: Option<Weights>,
    stopped_epoch: Option<usize>,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            run: Run::default(),
        }
    }
}

impl EarlyStopping {
    /// Watches `monitor` with Keras' defaults.
    pub fn new(monitor: impl Into<String>) -> Self {
        Self { monitor: monitor.into(), ..Self::default() }
    }

    /// Sets the patience.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Sets `min_delta`.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// Turns weight restoring on or off.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The epoch (from 0) at which training was stopped, if it was.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.run.stopped_epoch
    }

    /// The epoch (from 0) with the best monitored value.
    pub fn best_epoch(&self) -> Option<usize> {
        self.run.best_epoch
    }

    fn improves(&self, value: f64, reference: Option<f64>) -> bool {
        self.mode.improves(&self.monitor, value, reference, self.min_delta)
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.run = Run::default();
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let Some(current) = logs.get(&self.monitor) else {
            let keys: Vec<&str> = logs.iter().map(|(k, _)| k).collect();
            tracing::warn!(monitor = %self.monitor, available = ?keys, "early stopping: monitored value missing");
            return Ok(());
        };
        if self.restore_best_weights && self.run.best_weights.is_none() {
            self.run.best_weights = Some(ctl.model().get_weights());
        }
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        self.run.wait += 1;
        if self.improves(current, self.run.best) {
            self.run.best = Some(current);
            self.run.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.run.best_weights = Some(ctl.model().get_weights());
            }
            if self.baseline.is_none() || self.improves(current, self.baseline) {
                self.run.wait = 0;
            }
            return Ok(());
        }
        if self.run.wait >= self.patience && epoch > 0 {
            self.run.stopped_epoch = Some(epoch);
            ctl.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if self.restore_best_weights {
            if let Some(w) = &self.run.best_weights {
                ctl.model_mut().set_weights(w)?;
            }
        }
        Ok(())
    }
}
