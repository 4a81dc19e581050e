//! One stderr line per finished epoch, naming the experiment and seed (non-TTY friendly).

use std::time::Instant;

use kiln_trainer::callbacks::{Callback, Control};
use kiln_trainer::{Logs, TrainError};

/// Prints `[imdb_larger seed 2] epoch 7/20 loss 0.21 val_loss 0.41 (0.3 s)` after each epoch.
#[derive(Debug)]
pub struct EpochLine {
    /// `experiment seed k`.
    pub label: String,
    /// Epochs of the run.
    pub epochs: usize,
    /// When the current epoch started.
    started: Option<Instant>,
}

impl EpochLine {
    /// A progress printer for one run.
    pub fn new(experiment: &str, seed: u64, epochs: usize) -> Self {
        Self { label: format!("{experiment} seed {seed}"), epochs, started: None }
    }
}

impl Callback for EpochLine {
    fn on_epoch_begin(&mut self, _epoch: usize, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.started = Some(Instant::now());
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let mut line = format!("[{}] epoch {}/{}", self.label, epoch + 1, self.epochs);
        for (k, v) in logs.iter() {
            line.push_str(&format!(" {k} {v:.4}"));
        }
        eprintln!("{line} ({secs:.2} s)");
        Ok(())
    }
}
