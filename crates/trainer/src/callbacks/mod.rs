//! Callbacks: hooks into `fit` (Keras' `keras.callbacks`).

mod csv_logger;
mod early_stopping;
mod lr_scheduler;
mod model_checkpoint;
mod reduce_lr;
#[cfg(feature = "tensorboard")]
mod tensorboard;
mod terminate_on_nan;

pub use csv_logger::CsvLogger;
pub use early_stopping::{EarlyStopping, Mode};
pub use lr_scheduler::LearningRateScheduler;
pub use model_checkpoint::ModelCheckpoint;
pub use reduce_lr::ReduceLrOnPlateau;
#[cfg(feature = "tensorboard")]
pub use tensorboard::{TensorBoard, UpdateFreq};
pub use terminate_on_nan::TerminateOnNaN;

use crate::{Logs, Sequential, TrainError};

/// What the last training step measured, for callbacks that look at single batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchStats {
    /// Samples in the batch.
    pub size: usize,
    /// The loss the step differentiated: data loss plus every penalty, pre-update weights.
    pub loss: f32,
    /// The data loss alone.
    pub data_loss: f32,
}

/// A callback's handle on the training run: the model, the stop flag and the log entries
/// it adds.
pub struct Control<'a> {
    model: &'a mut Sequential,
    stop_training: bool,
    batch: Option<BatchStats>,
    added_logs: Vec<(String, f64)>,
}

impl<'a> Control<'a> {
    pub(crate) fn new(model: &'a mut Sequential, batch: Option<BatchStats>) -> Self {
        Self { model, stop_training: false, batch, added_logs: Vec::new() }
    }

    /// Adds `key = value` to the epoch's logs, as a Keras callback writes into its `logs`
    /// dict (`ReduceLROnPlateau` adds `learning_rate`): callbacks after this one, the
    /// progress line and the [`History`](crate::History) see it. Only `on_epoch_end` may
    /// add logs; elsewhere the entries are dropped.
    pub fn add_log(&mut self, key: impl Into<String>, value: f64) {
        self.added_logs.push((key.into(), value));
    }

    /// The entries added with [`add_log`](Control::add_log).
    pub(crate) fn take_added_logs(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.added_logs)
    }

    /// The model being trained.
    pub fn model(&self) -> &Sequential {
        self.model
    }

    /// The model being trained, mutably (to restore weights, change the learning rate…).
    pub fn model_mut(&mut self) -> &mut Sequential {
        self.model
    }

    /// Asks `fit` to stop after the current batch or epoch (Keras' `model.stop_training`).
    pub fn stop_training(&mut self) {
        self.stop_training = true;
    }

    /// Whether a stop was requested through this handle.
    pub fn stop_requested(&self) -> bool {
        self.stop_training
    }

    /// The last training step's numbers (inside batch hooks).
    pub fn batch_stats(&self) -> Option<BatchStats> {
        self.batch
    }
}

/// Hooks called by `fit` (Keras' `keras.callbacks.Callback`). Every hook has a
/// do-nothing default; a failing hook stops training with its error.
///
/// `fit` borrows callbacks (`FitOptions::callback(&mut cb)`), so their state — the epoch
/// `EarlyStopping` stopped at, what a logger recorded — can be read after it returns.
/// They are `Send` because with several threads the training loop runs on a pool thread.
pub trait Callback: Send {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// Before each epoch (`epoch` counts from 0).
    fn on_epoch_begin(&mut self, _epoch: usize, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// Before each training batch (only called when [`wants_batches`](Callback::wants_batches)).
    fn on_train_batch_begin(&mut self, _batch: usize, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// After each training batch, with the running means of the epoch so far.
    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// After each epoch, with its logs (validation included).
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// After the last epoch, however training ended.
    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        Ok(())
    }

    /// Whether the batch hooks do anything (lets `fit` skip them and the batch logs).
    fn wants_batches(&self) -> bool {
        false
    }
}
