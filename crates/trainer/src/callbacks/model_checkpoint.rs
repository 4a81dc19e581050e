//! Save the model during training.

use std::path::PathBuf;

use super::monitor::{is_improvement, warn_missing_once};
use super::path_format::{Arg, format_path};
use super::{Callback, Control, Mode};
use crate::{Logs, TrainError};

/// Keras' `ModelCheckpoint`: saves the model (a directory, see `Sequential::save`) or only
/// its weights (one safetensors file) after each epoch, or only when `monitor` improved
/// with `save_best_only` (when the monitored value is missing from the logs it saves, with
/// Keras' warning, as Keras does). The path is formatted as Keras formats it, Python's
/// `str.format` with `epoch` (counted from 1) and the epoch's logs:
/// `"ck/m-{epoch:02d}-{val_loss:.2f}"` (see `path_format` for the spec kiln follows); a
/// name the logs lack is an error. A diverged model (non-finite weights) is not saved: a
/// warning is printed and the previous checkpoint stays.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    /// Target path template.
    pub filepath: String,
    /// The log key compared by `save_best_only`.
    pub monitor: String,
    /// Save only when the monitored value improved.
    pub save_best_only: bool,
    /// Save the weights file only, not the configuration.
    pub save_weights_only: bool,
    /// Direction of improvement.
    pub mode: Mode,
    best: Option<f64>,
    skipped: usize,
    /// Larger is better (the mode, resolved when training starts).
    maximize: bool,
    /// The missing-monitor warning printed in this run, if any.
    warned: Option<String>,
}

impl ModelCheckpoint {
    /// The warning the last `fit` printed because the monitored value was missing from
    /// the logs (Keras' words), if it did.
    pub fn warning(&self) -> Option<&str> {
        self.warned.as_deref()
    }

    /// Saves to `filepath` after every epoch.
    pub fn new(filepath: impl Into<String>) -> Self {
        Self {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            save_best_only: false,
            save_weights_only: false,
            mode: Mode::Auto,
            best: None,
            skipped: 0,
            maximize: false,
            warned: None,
        }
    }

    /// Saves only when `monitor` improved.
    pub fn save_best_only(mut self, monitor: impl Into<String>) -> Self {
        self.monitor = monitor.into();
        self.save_best_only = true;
        self
    }

    /// Keras' `initial_value_threshold`: with `save_best_only`, the value the monitored one
    /// must improve on before anything is saved (by default the first value saves).
    pub fn initial_value_threshold(mut self, threshold: f64) -> Self {
        self.best = Some(threshold);
        self
    }

    /// Sets the direction of improvement (default [`Mode::Auto`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Saves only the weights.
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }

    /// How many epochs' checkpoints were skipped because the model had diverged.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Keras' `filepath.format(epoch=epoch + 1, **logs)`.
    fn path_for(&self, epoch: usize, logs: &Logs) -> Result<PathBuf, TrainError> {
        let lookup = |name: &str| match name {
            "epoch" => Some(Arg::Int(epoch as i64 + 1)),
            key => logs.get(key).map(Arg::Float),
        };
        format_path(&self.filepath, lookup).map(PathBuf::from).map_err(|e| {
            TrainError::Config(format!(
                "ModelCheckpoint: Failed to format this callback filepath: {:?}. Reason: {e}",
                self.filepath
            ))
        })
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        // Keras resolves the mode whether or not `save_best_only` is on.
        self.maximize = self.mode.maximizes(&self.monitor, ctl.model(), "ModelCheckpoint")?;
        // The best value is kept from one `fit` to the next, as Keras keeps `self.best`
        // (it has no `on_train_begin`): a later, worse run does not overwrite the best file.
        self.warned = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        // Keras formats the path before deciding to save: a bad template fails every epoch.
        let path = self.path_for(epoch, logs)?;
        if self.save_best_only {
            match logs.get(&self.monitor) {
                // Keras' `_should_save_model`: a missing monitor saves, with a warning.
                None => warn_missing_once(&mut self.warned, || {
                    format!("Can save best model only with {} available.", self.monitor)
                }),
                Some(current) if is_improvement(self.maximize, current, self.best, 0.0) => self.best = Some(current),
                Some(_) => return Ok(()),
            }
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| TrainError::file(parent, e))?;
        }
        let saved = if self.save_weights_only { ctl.model().save_weights(&path) } else { ctl.model().save(&path) };
        match saved {
            // A diverged model is not saved: the last good checkpoint survives, as users of
            // Keras' TerminateOnNaN expect; training goes on (or stops, with that callback).
            Err(e @ TrainError::Diverged { .. }) => {
                eprintln!("warning: ModelCheckpoint: {e}; {} keeps its previous checkpoint", path.display());
                tracing::warn!(path = %path.display(), "checkpoint skipped: {e}");
                self.skipped += 1;
                Ok(())
            }
            other => other,
        }
    }
}
