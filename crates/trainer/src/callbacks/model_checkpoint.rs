//! Save the model during training.

use std::path::PathBuf;

use super::monitor::{is_improvement, warn_missing_once};
use super::{Callback, Control, Mode};
use crate::{Logs, TrainError};

/// Keras' `ModelCheckpoint`: saves the model (a directory, see `Sequential::save`) or only
/// its weights (one safetensors file) after each epoch, or only when `monitor` improved
/// with `save_best_only` (when the monitored value is missing from the logs it saves, with
/// Keras' warning, as Keras does). `{epoch}` / `{epoch:02}` in the path are replaced by the epoch
/// number counted from 1. A diverged model (non-finite weights) is not saved: a warning
/// is printed and the previous checkpoint stays.
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

    fn path_for(&self, epoch: usize) -> PathBuf {
        let e = epoch + 1;
        PathBuf::from(
            self.filepath
                .replace("{epoch:02d}", &format!("{e:02}"))
                .replace("{epoch:02}", &format!("{e:02}"))
                .replace("{epoch}", &e.to_string()),
        )
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        // Keras resolves the mode whether or not `save_best_only` is on.
        self.maximize = self.mode.maximizes(&self.monitor, ctl.model(), "ModelCheckpoint")?;
        self.best = None;
        self.warned = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
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
        let path = self.path_for(epoch);
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
