//! BackupAndRestore: a run killed (SIGKILL, in a child process) mid-epoch and resumed ends
//! with the uninterrupted run's weights, bit for bit.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::blobs;
use kiln_layers::{Activation, Dense, Dropout};
use kiln_optimizers::{Adam, LearningRateSchedule, Optimizer, RMSprop};
use kiln_trainer::callbacks::{BackupAndRestore, Callback, Control, LearningRateScheduler};
use kiln_trainer::{FitOptions, Logs, Loss, Metric, Sequential, TrainError, Verbosity, Weights};

/// The child's settings: which configuration, where to back up, where to signal.
const CHILD_ENV: &str = "KILN_BACKUP_CHILD";
const EPOCHS: usize = 7;
/// The child stops (and waits to be killed) inside this epoch, at this batch.
const KILL_AT: (usize, usize) = (4, 3);

/// Two runs that exercise every piece of state: Adam with a rate a callback changes and a
/// fresh order each epoch; RMSprop on a schedule with one order reused.
#[derive(Clone, Copy, Debug)]
enum Config {
    AdamReshuffled,
    RmspropScheduleFixedOrder,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Self::AdamReshuffled => "adam",
            Self::RmspropScheduleFixedOrder => "rmsprop",
        }
    }

    fn parse(name: &str) -> Self {
        if name == "adam" { Self::AdamReshuffled } else { Self::RmspropScheduleFixedOrder }
    }

    fn model(self) -> Sequential {
        let mut m = Sequential::new()
            .seed(3)
            .add(Dense::new(24).activation(Activation::Relu))
            .add(Dropout::new(0.4))
            .add(Dense::new(12).activation(Activation::Relu))
            .add(Dropout::new(0.25))
            .add(Dense::new(3).activation(Activation::Softmax));
        let optimizer = match self {
            Self::AdamReshuffled => Optimizer::new(Adam::default(), 0.01),
            Self::RmspropScheduleFixedOrder => Optimizer::new(
                RMSprop::default(),
                LearningRateSchedule::ExponentialDecay {
                    initial_learning_rate: 0.01,
                    decay_steps: 7.0,
                    decay_rate: 0.8,
                    staircase: false,
                },
            ),
        };
        m.compile(optimizer, Loss::sparse_categorical_crossentropy(), [Metric::Accuracy]).unwrap();
        m
    }

    /// Trains `EPOCHS` epochs with `extra` callbacks before the backup (if any).
    fn fit(
        self,
        model: &mut Sequential,
        backup: Option<&mut BackupAndRestore>,
        extra: Option<&mut dyn Callback>,
    ) -> Result<(), TrainError> {
        let (x, y) = blobs(150, 9);
        let mut halve_at_2 = LearningRateScheduler::new(|epoch, lr| if epoch == 2 { lr * 0.5 } else { lr });
        let mut opts = FitOptions::default()
            .epochs(EPOCHS)
            .batch_size(16)
            .validation_split(0.2)
            .reshuffle_each_epoch(matches!(self, Self::AdamReshuffled))
            .verbose(Verbosity::Silent);
        if let Self::AdamReshuffled = self {
            opts = opts.callback(&mut halve_at_2);
        }
        if let Some(cb) = extra {
            opts = opts.callback(cb);
        }
        if let Some(b) = backup {
            opts = opts.callback(b);
        }
        model.fit(&x, &y, opts).map(|_| ())
    }
}

/// Stops inside epoch `KILL_AT.0` at batch `KILL_AT.1`: writes the marker, then waits for
/// the parent's SIGKILL (so the kill lands mid-epoch, after some updates of that epoch).
struct HangAt {
    marker: PathBuf,
    epoch: usize,
}

impl Callback for HangAt {
    fn on_epoch_begin(&mut self, epoch: usize, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, batch: usize, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if (self.epoch, batch) == KILL_AT {
            std::fs::write(&self.marker, b"ready").unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Ok(())
    }

    fn wants_batches(&self) -> bool {
        true
    }
}

fn weights_bits(w: &Weights) -> Vec<(String, Vec<u32>)> {
    w.0.iter().map(|t| (t.name.clone(), t.values.iter().map(|v| v.to_bits()).collect())).collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-backup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the child test in a new process and SIGKILLs it once it signals it is mid-epoch.
fn train_and_kill_child(config: Config, backup_dir: &Path, marker: &Path) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_trains_until_killed", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{}|{}", config.name(), backup_dir.display(), marker.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited ({status}) before reaching epoch {} batch {}", KILL_AT.0, KILL_AT.1);
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the child never reached the kill point");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
}

fn killed_run_resumes_bit_for_bit(config: Config) {
    let mut reference = config.model();
    config.fit(&mut reference, None, None).unwrap();

    let dir = temp_dir(config.name());
    let (backup_dir, marker) = (dir.join("backup"), dir.join("marker"));
    train_and_kill_child(config, &backup_dir, &marker);
    let state = std::fs::read_to_string(backup_dir.join("training_state.json")).unwrap();
    assert!(
        state.contains(&format!("\"epoch\": {}", KILL_AT.0)),
        "the last backup is epoch {}'s end: {state}",
        KILL_AT.0
    );

    let mut resumed = config.model();
    let mut backup = BackupAndRestore::new(&backup_dir);
    config.fit(&mut resumed, Some(&mut backup), None).unwrap();
    assert_eq!(backup.resumed_at(), Some(KILL_AT.0));
    assert_eq!(resumed.history().unwrap().epochs(), EPOCHS - KILL_AT.0, "only the remaining epochs ran");
    assert_eq!(weights_bits(&resumed.get_weights()), weights_bits(&reference.get_weights()));
    assert_eq!(resumed.optimizer().unwrap().iterations(), reference.optimizer().unwrap().iterations());
    assert!(!backup_dir.exists(), "delete_checkpoint removes the backup when fit finishes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_adam_run_with_a_changed_rate_and_reshuffling_resumes_bit_for_bit() {
    killed_run_resumes_bit_for_bit(Config::AdamReshuffled);
}

#[test]
fn a_killed_scheduled_rmsprop_run_with_one_order_resumes_bit_for_bit() {
    killed_run_resumes_bit_for_bit(Config::RmspropScheduleFixedOrder);
}

/// The child half of the kill tests (run by them, with `CHILD_ENV` set).
#[test]
#[ignore = "the child process of the kill tests"]
fn child_trains_until_killed() {
    let spec = std::env::var(CHILD_ENV).expect("run by the kill tests");
    let mut parts = spec.split('|');
    let (config, backup_dir, marker) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let config = Config::parse(config);
    let mut model = config.model();
    let mut backup = BackupAndRestore::new(backup_dir);
    let mut hang = HangAt { marker: marker.into(), epoch: 0 };
    config.fit(&mut model, Some(&mut backup), Some(&mut hang)).unwrap();
    unreachable!("the parent kills this process mid-fit");
}

#[test]
fn without_a_backup_the_run_starts_at_the_beginning_and_keeps_it_when_asked() {
    let dir = temp_dir("keep");
    let backup_dir = dir.join("backup");
    let mut model = Config::AdamReshuffled.model();
    let mut backup = BackupAndRestore::new(&backup_dir).delete_checkpoint(false);
    Config::AdamReshuffled.fit(&mut model, Some(&mut backup), None).unwrap();
    assert_eq!(backup.resumed_at(), None);
    assert_eq!(model.history().unwrap().epochs(), EPOCHS);
    let state = std::fs::read_to_string(backup_dir.join("training_state.json")).unwrap();
    assert!(state.contains(&format!("\"epoch\": {EPOCHS}")), "{state}");
    assert!(state.contains("\"dropout\"") && state.contains("\"dropout_1\""), "both Dropout generators: {state}");

    // A finished backup resumes at `epochs`: nothing more is trained.
    let before = weights_bits(&model.get_weights());
    let mut again = BackupAndRestore::new(&backup_dir).delete_checkpoint(false);
    Config::AdamReshuffled.fit(&mut model, Some(&mut again), None).unwrap();
    assert_eq!(again.resumed_at(), Some(EPOCHS));
    assert_eq!(weights_bits(&model.get_weights()), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_backup_dir_holding_other_files_or_another_models_state_is_refused() {
    let dir = temp_dir("refuse");
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let mut model = Config::AdamReshuffled.model();
    let mut backup = BackupAndRestore::new(&dir);
    let err = Config::AdamReshuffled.fit(&mut model, Some(&mut backup), None).unwrap_err().to_string();
    assert!(err.contains("not a backup directory") && err.contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine", "nothing of the user's is deleted");

    // A backup of a model without Dropout does not restore into one with it.
    let backup_dir = dir.join("backup");
    let (x, y) = blobs(40, 1);
    let mut plain = Sequential::new().seed(1).add(Dense::new(24)).add(Dense::new(12)).add(Dense::new(3));
    plain
        .compile(Optimizer::new(Adam::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    let mut keep = BackupAndRestore::new(&backup_dir).delete_checkpoint(false);
    plain.fit(&x, &y, FitOptions::default().epochs(1).verbose(Verbosity::Silent).callback(&mut keep)).unwrap();
    let mut restore = BackupAndRestore::new(&backup_dir);
    let err = Config::AdamReshuffled.fit(&mut model, Some(&mut restore), None).unwrap_err().to_string();
    assert!(err.contains("backup.json") && err.contains("the backup of another model"), "{err}");

    std::fs::write(backup_dir.join("training_state.json"), b"{\"epoch\": 1}").unwrap();
    let opts = FitOptions::default().epochs(1).verbose(Verbosity::Silent).callback(&mut restore);
    let err = plain.fit(&x, &y, opts).unwrap_err().to_string();
    assert!(err.contains("training_state.json") && err.contains("not a kiln training state"), "{err}");
    assert!(backup_dir.join("backup.json").exists(), "a refused backup is never deleted");
    std::fs::remove_dir_all(&dir).unwrap();
}
