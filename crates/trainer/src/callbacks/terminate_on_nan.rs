//! Stop as soon as the loss stops being a number.

use super::{Callback, Control};
use crate::{Logs, TrainError};

/// Stops training when a batch's loss is NaN or infinite (Keras `TerminateOnNaN`).
#[derive(Debug, Clone, Default)]
pub struct TerminateOnNaN {
    /// The batch at which training was stopped, if it was.
    pub stopped_at_batch: Option<usize>,
}

impl Callback for TerminateOnNaN {
    fn on_train_batch_end(&mut self, batch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if let Some(stats) = ctl.batch_stats()
            && !stats.loss.is_finite()
        {
            // Keras prints this line (`io_utils.print_msg`) whatever `verbose` is.
            eprintln!("Batch {batch}: Invalid loss, terminating training");
            tracing::warn!(batch, loss = stats.loss, "invalid loss, terminating training");
            self.stopped_at_batch = Some(batch);
            ctl.stop_training();
        }
        Ok(())
    }

    fn wants_batches(&self) -> bool {
        true
    }
}
