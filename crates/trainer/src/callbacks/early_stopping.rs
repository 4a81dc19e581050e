//! Stop when a monitored value stops improving.

use super::monitor::{available, is_improvement, warn_missing_once};
use super::{Callback, Control, Mode};
use crate::{Logs, TrainError, Weights};

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
    /// Larger is better (the mode, resolved when training starts).
    maximize: bool,
    /// The missing-monitor warning printed in this run, if any.
    warned: Option<String>,
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

    /// Sets the direction of improvement (default [`Mode::Auto`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets a value the monitor must beat for the patience counter to reset.
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Sets the number of epochs to wait before watching at all.
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// Turns weight restoring on or off.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The warning the last `fit` printed because the monitored value was missing from
    /// the logs (Keras' "Early stopping conditioned on metric … which is not available"),
    /// if it did.
    pub fn warning(&self) -> Option<&str> {
        self.run.warned.as_deref()
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
        is_improvement(self.run.maximize, value, reference, self.min_delta)
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let maximize = self.mode.maximizes(&self.monitor, ctl.model(), "EarlyStopping")?;
        self.run = Run { maximize, ..Run::default() };
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let Some(current) = logs.get(&self.monitor) else {
            warn_missing_once(&mut self.run.warned, || {
                format!(
                    "Early stopping conditioned on metric `{}` which is not available. Available metrics are: {}",
                    self.monitor,
                    available(logs)
                )
            });
            return Ok(());
        };
        // Keras returns before recording any weights while warming up: a run that ends
        // before `start_from_epoch` restores nothing.
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        if self.restore_best_weights && self.run.best_weights.is_none() {
            self.run.best_weights = Some(ctl.model().get_weights());
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
        if self.restore_best_weights
            && let Some(w) = &self.run.best_weights
        {
            ctl.model_mut().set_weights(w)?;
        }
        Ok(())
    }
}
