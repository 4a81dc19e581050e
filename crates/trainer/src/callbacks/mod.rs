//! Callbacks: hooks into `fit` (Keras' `keras.callbacks`).

mod backup_and_restore;
mod csv_logger;
mod early_stopping;
mod lr_scheduler;
mod model_checkpoint;
mod monitor;
mod path_format;
mod reduce_lr;
#[cfg(feature = "tensorboard")]
mod tensorboard;
mod terminate_on_nan;

pub use backup_and_restore::BackupAndRestore;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use lr_scheduler::LearningRateScheduler;
pub use model_checkpoint::ModelCheckpoint;
pub use monitor::Mode;
pub use reduce_lr::ReduceLrOnPlateau;
#[cfg(feature = "tensorboard")]
pub use tensorboard::{TensorBoard, UpdateFreq};
pub use terminate_on_nan::TerminateOnNaN;

use kiln_tensor::{Rng, RngState};

use crate::fit_settings::FitSettings;
use crate::{Logs, Sequential, TrainError};

/// What `fit` carries from epoch to epoch besides the model: the next epoch and the
/// shuffle generator. [`BackupAndRestore`] saves and restores it through [`Control`].
pub(crate) struct LoopState {
    /// The `epochs` of the `fit` call.
    pub(crate) epochs: usize,
    /// What the run's numbers depend on besides the model.
    pub(crate) settings: FitSettings,
    /// The epoch the loop runs next (counted from 0).
    pub(crate) next_epoch: usize,
    /// The shuffle generator.
    pub(crate) shuffle: Rng,
    /// Where `shuffle` was before the epoch order was last drawn.
    pub(crate) before_draw: RngState,
    /// Whether `order` holds a drawn epoch order.
    pub(crate) order_drawn: bool,
    /// One order for every epoch (`reshuffle_each_epoch` off).
    pub(crate) reuse_order: bool,
}

impl LoopState {
    /// The shuffle position the next epoch's order comes from: the current one when every
    /// epoch draws anew, the one before the only draw when the order is reused.
    fn next_order_state(&self) -> RngState {
        if self.reuse_order && self.order_drawn { self.before_draw } else { self.shuffle.state() }
    }
}

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
    run: Option<&'a mut LoopState>,
}

impl<'a> Control<'a> {
    pub(crate) fn new(model: &'a mut Sequential, batch: Option<BatchStats>) -> Self {
        Self { model, stop_training: false, batch, added_logs: Vec::new(), run: None }
    }

    /// A handle that also reaches the loop's own state (`on_train_begin`, `on_epoch_end`).
    pub(crate) fn with_run(model: &'a mut Sequential, run: &'a mut LoopState) -> Self {
        Self { run: Some(run), ..Self::new(model, None) }
    }

    /// The epoch `fit` runs next and the shuffle position its order is drawn from, in
    /// `on_train_begin` and `on_epoch_end` (`None` in the other hooks): what a resumed run
    /// needs to continue exactly.
    pub fn resume_point(&self) -> Option<(usize, RngState)> {
        self.run.as_ref().map(|r| (r.next_epoch, r.next_order_state()))
    }

    /// The running `fit`'s epoch count and settings, in `on_train_begin` and
    /// `on_epoch_end` (what a backup must match).
    pub(crate) fn run_settings(&self) -> Option<(usize, &FitSettings)> {
        self.run.as_ref().map(|r| (r.epochs, &r.settings))
    }

    /// Makes `fit` continue at `epoch` (counted from 0), drawing that epoch's order from
    /// `shuffle`, as after [`resume_point`](Control::resume_point) of an earlier run. Only
    /// `on_train_begin` may do this.
    pub fn resume_at(&mut self, epoch: usize, shuffle: &RngState) -> Result<(), TrainError> {
        let Some(run) = self.run.as_mut() else {
            return Err(TrainError::Config("`resume_at` is only possible in `on_train_begin`".into()));
        };
        run.next_epoch = epoch;
        run.shuffle = Rng::from_state(shuffle);
        run.order_drawn = false;
        Ok(())
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

    /// Before each training batch.
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

    /// Whether the batch hooks do anything. `fit` calls them either way (overriding a hook
    /// is enough, as in Keras); a plugin's envelope uses the answer to skip crossing the
    /// plugin ABI, and serializing the logs, for hooks that do nothing.
    fn wants_batches(&self) -> bool {
        false
    }
}
