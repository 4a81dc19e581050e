//! Lower the learning rate when a monitored value stops improving.

use super::monitor::{available, is_improvement, warn_missing_once};
use super::{Callback, Control, Mode};
use crate::{Logs, TrainError};

/// Keras' `ReduceLROnPlateau`: after `patience` epochs without an improvement of more than
/// `min_delta` in `monitor`, multiply the learning rate by `factor` (never below `min_lr`),
/// then wait `cooldown` epochs before counting again. Every epoch it writes the rate the
/// epoch trained with into the logs as `learning_rate`, as Keras does.
///
/// Defaults: `monitor="val_loss"`, `factor=0.1`, `patience=10`, `mode=Auto`,
/// `min_delta=1e-4`, `cooldown=0`, `min_lr=0`. The rate is the optimizer's `f32`, so a
/// reduced rate is `f32(f64(lr) · factor)`, as Keras assigns it to its float32 variable.
///
/// ```
/// use kiln_trainer::callbacks::ReduceLrOnPlateau;
/// let cb = ReduceLrOnPlateau::new("loss").factor(0.5).patience(2).min_lr(1e-4);
/// assert!(cb.validate().is_ok());
/// assert!(ReduceLrOnPlateau::new("loss").factor(1.0).validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    /// The log key to watch.
    pub monitor: String,
    /// The factor the rate is multiplied by (`< 1`).
    pub factor: f64,
    /// Epochs without improvement before the rate is reduced.
    pub patience: usize,
    /// Direction of improvement.
    pub mode: Mode,
    /// A change must exceed this to count as an improvement.
    pub min_delta: f64,
    /// Epochs after a reduction during which no waiting is counted.
    pub cooldown: usize,
    /// The lowest rate a reduction goes to.
    pub min_lr: f64,
    wait: usize,
    cooldown_counter: usize,
    best: Option<f64>,
    reductions: Vec<(usize, f32)>,
    /// Larger is better (the mode, resolved when training starts).
    maximize: bool,
    /// The missing-monitor warning printed in this run, if any.
    warned: Option<String>,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        Self {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
            best: None,
            reductions: Vec::new(),
            maximize: false,
            warned: None,
        }
    }
}

impl ReduceLrOnPlateau {
    /// The warning the last `fit` printed because the monitored value was missing from
    /// the logs (Keras' words), if it did.
    pub fn warning(&self) -> Option<&str> {
        self.warned.as_deref()
    }

    /// Watches `monitor` with Keras' defaults.
    pub fn new(monitor: impl Into<String>) -> Self {
        Self { monitor: monitor.into(), ..Self::default() }
    }

    /// Sets the reduction factor.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Sets the patience.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Sets the direction of improvement.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets `min_delta` (its sign is ignored, as in Keras).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Sets the cooldown.
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets the lowest rate.
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// Checks the settings: Keras refuses `factor >= 1`; kiln also refuses a factor that is
    /// not positive and finite, and a negative or non-finite `min_lr`/`min_delta`.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.factor.is_finite() && self.factor > 0.0 && self.factor < 1.0) {
            return Err(format!("ReduceLROnPlateau factor must be in (0, 1), got {}", self.factor));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            return Err(format!("ReduceLROnPlateau min_lr must be a finite number ≥ 0, got {}", self.min_lr));
        }
        if !self.min_delta.is_finite() {
            return Err(format!("ReduceLROnPlateau min_delta must be finite, got {}", self.min_delta));
        }
        Ok(())
    }

    /// Every reduction made in the last `fit`: the epoch (from 0) and the new rate.
    pub fn reductions(&self) -> &[(usize, f32)] {
        &self.reductions
    }

    fn improves(&self, current: f64) -> bool {
        is_improvement(self.maximize, current, self.best, self.min_delta)
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.validate().map_err(TrainError::Config)?;
        self.maximize = self.mode.maximizes(&self.monitor, ctl.model(), "ReduceLROnPlateau")?;
        self.warned = None;
        (self.wait, self.cooldown_counter, self.best) = (0, 0, None);
        self.reductions.clear();
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let lr = ctl.model().learning_rate().ok_or_else(|| TrainError::Config("the model is not compiled".into()))?;
        ctl.add_log("learning_rate", f64::from(lr));
        // Keras writes `learning_rate` into the logs before it reads the monitored value,
        // so the rate itself can be monitored, and is listed as available.
        let current = if self.monitor == "learning_rate" { Some(f64::from(lr)) } else { logs.get(&self.monitor) };
        let Some(current) = current else {
            warn_missing_once(&mut self.warned, || {
                let with_rate = if logs.get("learning_rate").is_some() { "" } else { ",learning_rate" };
                format!(
                    "Learning rate reduction is conditioned on metric `{}` which is not available. Available \
                     metrics are: {}{with_rate}.",
                    self.monitor,
                    available(logs)
                )
            });
            return Ok(());
        };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.improves(current) {
            self.best = Some(current);
            self.wait = 0;
            return Ok(());
        }
        if self.cooldown_counter > 0 {
            return Ok(());
        }
        self.wait += 1;
        // Keras compares the rate (a float32 read as float64) with float32(min_lr).
        let min_lr = f64::from(self.min_lr as f32);
        if self.wait >= self.patience && f64::from(lr) > min_lr {
            let new_lr = (f64::from(lr) * self.factor).max(self.min_lr);
            ctl.model_mut().set_learning_rate(new_lr)?;
            let set = ctl.model().learning_rate().expect("compiled");
            tracing::info!(epoch = epoch + 1, learning_rate = set, "ReduceLROnPlateau reducing learning rate");
            self.reductions.push((epoch, set));
            self.cooldown_counter = self.cooldown;
            self.wait = 0;
        }
        Ok(())
    }
}
