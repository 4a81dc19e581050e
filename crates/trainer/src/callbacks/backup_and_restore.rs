//! Back up the whole training state after every epoch; resume from it after a crash.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_fs::{read_regular, replace_dir_atomic, write_atomic};
use kiln_optimizers::LearningRate;
use kiln_tensor::RngState;
use serde::{Deserialize, Serialize};

use super::{Callback, Control};
use crate::{Logs, TrainError};

/// The files a backup directory holds.
const BACKUP_FILES: [&str; 3] = ["model.safetensors", "optimizer.safetensors", "training_state.json"];
/// Version of `training_state.json`.
const STATE_VERSION: u32 = 1;
/// `training_state.json` is small; anything larger is not one.
const MAX_STATE_BYTES: u64 = 1 << 20;

/// Keras' `BackupAndRestore`: after every epoch, writes the weights, the optimizer state
/// (slots, iteration count, learning rate) and the positions of every random generator
/// (the shuffle order's and each Dropout layer's) into `backup_dir`. When `fit` starts and
/// `backup_dir` holds a backup, it restores all of it and continues at the next epoch, so
/// a run killed at any point ends with the weights an uninterrupted run ends with, bit for
/// bit. The directory is replaced atomically (a kill mid-save leaves the previous backup)
/// and, with `delete_checkpoint` (the default), removed when `fit` finishes.
///
/// Put it last in the callback list: it saves what the callbacks before it changed at the
/// epoch's end (`ReduceLrOnPlateau`'s new rate). Like Keras, it does not save other
/// callbacks' own state (`EarlyStopping`'s patience count) nor the `History` of the
/// epochs before the kill; it saves once per epoch (Keras' `save_freq="epoch"`).
///
/// ```no_run
/// # use kiln_trainer::{callbacks::BackupAndRestore, FitOptions};
/// let mut backup = BackupAndRestore::new("runs/backup");
/// let opts = FitOptions::default().epochs(20).callback(&mut backup);
/// ```
#[derive(Debug, Clone)]
pub struct BackupAndRestore {
    /// Where the backup lives.
    pub backup_dir: PathBuf,
    /// Remove the backup when training finishes (default `true`).
    pub delete_checkpoint: bool,
    resumed_at: Option<usize>,
}

/// `training_state.json`: what the weight files do not hold.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingState {
    format_version: u32,
    /// The next epoch to run (Keras' `epoch` in `training_metadata.json`).
    epoch: usize,
    /// The constant learning rate (absent for a schedule, which the iteration count drives).
    learning_rate: Option<f32>,
    /// The shuffle generator's position for the next epoch's order.
    shuffle: RngState,
    /// Each random layer's generator, by layer name.
    layers: BTreeMap<String, RngState>,
}

impl BackupAndRestore {
    /// Backs up into `backup_dir` (created when missing; it must hold nothing but a backup).
    pub fn new(backup_dir: impl Into<PathBuf>) -> Self {
        Self { backup_dir: backup_dir.into(), delete_checkpoint: true, resumed_at: None }
    }

    /// Keeps (`false`) or removes (`true`, the default) the backup when `fit` finishes.
    pub fn delete_checkpoint(mut self, yes: bool) -> Self {
        self.delete_checkpoint = yes;
        self
    }

    /// The epoch (counted from 0) the last `fit` resumed at, if it found a backup.
    pub fn resumed_at(&self) -> Option<usize> {
        self.resumed_at
    }

    fn state_path(&self) -> PathBuf {
        self.backup_dir.join("training_state.json")
    }

    /// Restores a backup into the model and the loop; `Ok(None)` when there is none.
    fn restore(&self, ctl: &mut Control<'_>) -> Result<Option<usize>, TrainError> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_regular(&path, MAX_STATE_BYTES)?;
        let state: TrainingState = serde_json::from_slice(&bytes)
            .map_err(|e| TrainError::file(&path, format!("not a kiln training state: {e}")))?;
        if state.format_version != STATE_VERSION {
            return Err(TrainError::file(
                &path,
                format!("format_version {} is not {STATE_VERSION}, the one this kiln reads", state.format_version),
            ));
        }
        let model = ctl.model_mut();
        // Checked before anything changes: a backup of another model leaves this one as is.
        check_layer_generators(model, &state.layers, &path)?;
        model.load_weights(self.backup_dir.join("model.safetensors"))?;
        model.load_optimizer_state(self.backup_dir.join("optimizer.safetensors"))?;
        if let Some(lr) = state.learning_rate {
            model.set_learning_rate(f64::from(lr)).map_err(|e| TrainError::file(&path, e))?;
        }
        restore_layer_generators(model, &state.layers, &path)?;
        ctl.resume_at(state.epoch, &state.shuffle)?;
        Ok(Some(state.epoch))
    }

    /// Writes the backup (a new directory replacing the old one in one step).
    fn save(&self, ctl: &Control<'_>) -> Result<(), TrainError> {
        let (epoch, shuffle) = ctl.resume_point().expect("on_epoch_end carries the loop state");
        let model = ctl.model();
        let learning_rate = match model.optimizer().map(|o| o.learning_rate_config()) {
            Some(LearningRate::Constant(lr)) => Some(*lr),
            _ => None,
        };
        let layers = model.layers().iter().filter_map(|l| Some((l.name().to_string(), l.rng_state()?))).collect();
        let state = TrainingState { format_version: STATE_VERSION, epoch, learning_rate, shuffle, layers };
        let json = serde_json::to_string_pretty(&state).expect("training state serializes");
        replace_dir_atomic(&self.backup_dir, |staging: &Path| -> Result<(), TrainError> {
            model.save_weights(staging.join("model.safetensors"))?;
            model.save_optimizer_state(staging.join("optimizer.safetensors"))?;
            Ok(write_atomic(&staging.join("training_state.json"), json.as_bytes())?)
        })
    }
}

/// Errors unless `saved` holds a generator state for exactly the model's random layers (a
/// layer missing, or one the model lacks, means the backup is another model's).
fn check_layer_generators(
    model: &crate::Sequential,
    saved: &BTreeMap<String, RngState>,
    path: &Path,
) -> Result<(), TrainError> {
    let mut used = 0;
    for layer in model.layers().iter().filter(|l| l.rng_state().is_some()) {
        if !saved.contains_key(layer.name()) {
            return Err(TrainError::file(
                path,
                format!("has no generator state for layer `{}`: it is another model's backup", layer.name()),
            ));
        }
        used += 1;
    }
    if used != saved.len() {
        let names: Vec<&str> = saved.keys().map(String::as_str).collect();
        return Err(TrainError::file(
            path,
            format!(
                "holds generator states for layers this model does not draw with ({}): another model's backup",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Moves every random layer's generator to its saved position (after
/// [`check_layer_generators`]).
fn restore_layer_generators(
    model: &mut crate::Sequential,
    saved: &BTreeMap<String, RngState>,
    path: &Path,
) -> Result<(), TrainError> {
    for layer in model.layers_mut() {
        if let Some(state) = saved.get(layer.name()) {
            layer.set_rng_state(state).map_err(|e| TrainError::file(path, e))?;
        }
    }
    Ok(())
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if self.backup_dir.as_os_str().is_empty() {
            return Err(TrainError::Config("BackupAndRestore: `backup_dir` is empty".into()));
        }
        crate::save::refuse_files_but(&self.backup_dir, &BACKUP_FILES, "a backup directory")?;
        // A save killed between its two renames leaves the previous backup aside: put it back.
        kiln_fs::recover_dir(&self.backup_dir)?;
        self.resumed_at = self.restore(ctl)?;
        if let Some(epoch) = self.resumed_at {
            tracing::info!(epoch, dir = %self.backup_dir.display(), "resuming from a backup");
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.save(ctl)
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if self.delete_checkpoint && self.backup_dir.exists() {
            fs::remove_dir_all(&self.backup_dir).map_err(|e| TrainError::file(&self.backup_dir, e))?;
        }
        Ok(())
    }
}
