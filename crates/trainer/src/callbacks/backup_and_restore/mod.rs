//! Back up the whole training state after every epoch; resume from it after a crash.

mod marker;
mod restore;

use std::fs;
use std::path::{Path, PathBuf};

use kiln_fs::{SaveLock, remove_dir_atomic, replace_dir_atomic, write_atomic};
use kiln_optimizers::LearningRate;

use self::marker::{LEFT_AS_IS, MARKER, Marker, ModelIdentity, Origin};
use self::restore::{Running, STATE, STATE_VERSION, TrainingState};
use super::{Callback, Control};
use crate::save::refuse_files_but;
use crate::{Logs, TrainError};

/// The files a backup directory holds.
const BACKUP_FILES: [&str; 4] = [MARKER, "model.safetensors", "optimizer.safetensors", STATE];
/// The lock held for a whole `fit`: `.NAME.fit.lock` beside the backup folder.
const FIT_LOCK: &str = "fit.lock";

/// Keras' `BackupAndRestore`: after every epoch, writes the weights, the optimizer state
/// (slots, iteration count, learning rate) and the positions of every random generator
/// (the shuffle order's and each Dropout layer's) into `backup_dir`. When `fit` starts and
/// `backup_dir` holds a backup, it restores all of it and continues at the next epoch, so
/// a run killed at any point ends with the weights an uninterrupted run ends with, bit for
/// bit. The directory is replaced atomically (a kill mid-save leaves the previous backup)
/// and, with `delete_checkpoint` (the default), removed in one step when `fit` finishes.
///
/// A backup carries a marker, `backup.json`, naming the model (a hash of its
/// configuration) and the `fit` settings that decide the numbers (batch size, shuffling,
/// seed, data shapes, weighting). Only a backup of the same model by a `fit` with the same
/// settings is restored, and only whole: every file is checked before the model changes.
/// Anything else in `backup_dir` is refused with an error naming the file, and never
/// deleted. A second `fit` using the same `backup_dir` while one runs is refused at its
/// start (a lock, `.NAME.fit.lock`, held for the whole `fit` and released by the system
/// if the process dies).
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
#[derive(Debug)]
pub struct BackupAndRestore {
    /// Where the backup lives.
    pub backup_dir: PathBuf,
    /// Remove the backup when training finishes (default `true`).
    pub delete_checkpoint: bool,
    resumed_at: Option<usize>,
    /// Held from the start of `fit` to its end: one `fit` per backup folder.
    lock: Option<SaveLock>,
    /// What this `fit`'s backups are stamped with (set when it starts).
    marker: Option<Marker>,
}

impl Clone for BackupAndRestore {
    /// The settings; a copy holds no lock and is tied to no running `fit`.
    fn clone(&self) -> Self {
        Self::new(self.backup_dir.clone()).delete_checkpoint(self.delete_checkpoint)
    }
}

/// What `backup_dir` holds when `fit` starts.
enum Found {
    /// Nothing (missing or empty): start afresh.
    Nothing,
    /// A marked backup, to check and restore.
    Backup,
}

impl BackupAndRestore {
    /// Backs up into `backup_dir` (created when missing; it must hold nothing but a backup).
    pub fn new(backup_dir: impl Into<PathBuf>) -> Self {
        Self { backup_dir: backup_dir.into(), delete_checkpoint: true, resumed_at: None, lock: None, marker: None }
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

    /// What `backup_dir` holds; refuses anything but nothing or a marked backup.
    fn inspect(&self) -> Result<Found, TrainError> {
        let dir = &self.backup_dir;
        refuse_files_but(dir, &BACKUP_FILES, "a backup directory")?;
        let Ok(entries) = fs::read_dir(dir) else { return Ok(Found::Nothing) };
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        if names.is_empty() {
            return Ok(Found::Nothing);
        }
        if !names.iter().any(|n| n == MARKER) {
            return Err(TrainError::file(
                dir,
                format!(
                    "holds {} but no {MARKER}: it is not a backup of this kiln (backups made before kiln marked \
                     them have none); {LEFT_AS_IS}",
                    names.join(", ")
                ),
            ));
        }
        Ok(Found::Backup)
    }

    /// Writes the backup (a new directory replacing the old one in one step).
    fn save(&self, ctl: &Control<'_>) -> Result<(), TrainError> {
        let marker = self
            .marker
            .as_ref()
            .ok_or_else(|| TrainError::Config("BackupAndRestore: `on_epoch_end` before `on_train_begin`".into()))?;
        let (epoch, shuffle) = ctl.resume_point().expect("on_epoch_end carries the loop state");
        let model = ctl.model();
        let learning_rate = match model.optimizer().map(|o| o.learning_rate_config()) {
            Some(LearningRate::Constant(lr)) => Some(*lr),
            _ => None,
        };
        // Nothing is written that a restore would refuse.
        if let Some(lr) = learning_rate.filter(|lr| !lr.is_finite()) {
            return Err(TrainError::file(
                &self.backup_dir,
                format!("cannot back up a learning rate of {lr}: a backup's rate must be a finite number"),
            ));
        }
        // Under the fit's lock nothing else writes here; this catches a file put in by hand.
        refuse_files_but(&self.backup_dir, &BACKUP_FILES, "a backup directory")?;
        let layers = model.layers().iter().filter_map(|l| Some((l.name().to_string(), l.rng_state()?))).collect();
        let state = TrainingState { format_version: STATE_VERSION, epoch, learning_rate, shuffle, layers };
        let json = serde_json::to_string_pretty(&state).expect("training state serializes");
        replace_dir_atomic(&self.backup_dir, |staging: &Path| -> Result<(), TrainError> {
            model.save_weights(staging.join("model.safetensors"))?;
            model.save_optimizer_state(staging.join("optimizer.safetensors"))?;
            write_atomic(&staging.join(STATE), json.as_bytes())?;
            // Written last: a folder is a backup only once the rest is there.
            Ok(write_atomic(&staging.join(MARKER), marker.to_json().as_bytes())?)
        })
    }

    /// Removes the backup in one step (moved aside, then deleted), after checking it is
    /// still this fit's: a folder that is not is left as is, with an error.
    fn remove(&self) -> Result<(), TrainError> {
        let dir = &self.backup_dir;
        if !matches!(self.inspect()?, Found::Backup) {
            return Ok(());
        }
        let path = dir.join(MARKER);
        let found = Marker::read(&path)?;
        let ours = self.marker.as_ref().is_some_and(|m| m.model == found.model && m.fit == found.fit);
        if !ours {
            return Err(TrainError::file(&path, format!("is no longer this fit's backup; {LEFT_AS_IS}")));
        }
        Ok(remove_dir_atomic(dir)?)
    }

    /// Releases the fit's lock and removes its file.
    fn unlock(&mut self) {
        if let Some(lock) = self.lock.take() {
            lock.release_and_remove();
        }
    }

    /// `on_train_begin`: takes the lock, restores a matching backup, stamps the marker.
    fn begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if self.backup_dir.as_os_str().is_empty() {
            return Err(TrainError::Config("BackupAndRestore: `backup_dir` is empty".into()));
        }
        self.lock = Some(SaveLock::acquire_tagged(
            &self.backup_dir,
            FIT_LOCK,
            "is the backup folder of another running fit (its lock file is held): two fits cannot share one \
             backup folder; give each its own backup_dir",
        )?);
        // A save killed between its two renames leaves the previous backup aside: put it
        // back. A removal killed midway leaves `.NAME.removing`: delete it.
        kiln_fs::recover_dir(&self.backup_dir)?;
        let (epochs, settings) = ctl.run_settings().expect("on_train_begin carries the loop state");
        let settings = settings.clone();
        let identity = ModelIdentity::of(ctl.model());
        let (first_epoch, _) = ctl.resume_point().expect("on_train_begin carries the loop state");
        let iterations = ctl.model().optimizer().map_or(0, |o| o.iterations());
        let mut origin = Origin { epoch: first_epoch, iterations };
        if let Found::Backup = self.inspect()? {
            let running = Running { identity: &identity, epochs, settings: &settings };
            let staged = restore::stage(&self.backup_dir, ctl.model(), &running)?;
            origin = staged.marker.origin;
            let epoch = staged.epoch;
            restore::apply(staged, ctl)?;
            self.resumed_at = Some(epoch);
            tracing::info!(epoch, dir = %self.backup_dir.display(), "resuming from a backup");
        }
        self.marker = Some(Marker::new(identity, settings, origin));
        Ok(())
    }
}

impl Drop for BackupAndRestore {
    /// A `fit` that stopped with an error still holds the lock: release it.
    fn drop(&mut self) {
        self.unlock();
    }
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        // A lock still held by an earlier `fit` of this callback that stopped with an error.
        self.unlock();
        self.marker = None;
        self.resumed_at = None;
        let begun = self.begin(ctl);
        if begun.is_err() {
            self.unlock();
        }
        begun
    }

    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.save(ctl)
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let ended = if self.delete_checkpoint {
            self.remove()
        } else {
            // The saves' lock file (`.NAME.lock`) is not needed between fits.
            if let Ok(save_lock) = SaveLock::acquire(&self.backup_dir) {
                save_lock.release_and_remove();
            }
            Ok(())
        };
        self.unlock();
        ended
    }
}
