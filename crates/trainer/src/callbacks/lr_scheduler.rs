//! Set the learning rate from a function of the epoch.

use super::{Callback, Control};
use crate::{Logs, TrainError};

/// Keras' `LearningRateScheduler`: before each epoch, the rate becomes
/// `schedule(epoch, current_rate)` (epochs from 0); after it, `learning_rate` is written
/// into the logs. The optimizer's rate must be a constant, not a schedule.
///
/// As in Keras, the function works in float64 (Keras hands it `float(learning_rate)`, a
/// Python float) and its result is rounded once to the float32 rate, so `lr * 0.9` gives
/// Keras' rates epoch after epoch.
///
/// ```
/// use kiln_trainer::callbacks::LearningRateScheduler;
/// // Keep the rate for 10 epochs, then decay it by e^-0.1 per epoch.
/// let cb = LearningRateScheduler::new(|epoch, lr| if epoch < 10 { lr } else { lr * (-0.1f64).exp() });
/// # let _ = cb;
/// ```
pub struct LearningRateScheduler {
    schedule: Box<dyn FnMut(usize, f64) -> f64 + Send>,
}

impl LearningRateScheduler {
    /// Wraps `schedule(epoch, lr) -> new lr`.
    pub fn new(schedule: impl FnMut(usize, f64) -> f64 + Send + 'static) -> Self {
        Self { schedule: Box::new(schedule) }
    }
}

impl std::fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LearningRateScheduler(..)")
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let lr = ctl.model().learning_rate().ok_or(TrainError::NotCompiled("LearningRateScheduler"))?;
        let new_lr = (self.schedule)(epoch, f64::from(lr));
        ctl.model_mut()
            .set_learning_rate(new_lr)
            .map_err(|e| TrainError::Config(format!("LearningRateScheduler at epoch {epoch}: {e}")))
    }

    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let lr = ctl.model().learning_rate().ok_or(TrainError::NotCompiled("LearningRateScheduler"))?;
        ctl.add_log("learning_rate", f64::from(lr));
        Ok(())
    }
}
