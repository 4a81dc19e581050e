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
    /// A Functional graph: a Dropout branch added to a projection of the input.
    GraphAdam,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Self::AdamReshuffled => "adam",
            Self::RmspropScheduleFixedOrder => "rmsprop",
            Self::GraphAdam => "graph",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "adam" => Self::AdamReshuffled,
            "graph" => Self::GraphAdam,
            _ => Self::RmspropScheduleFixedOrder,
        }
    }

    fn model(self) -> Sequential {
        let mut m = match self {
            Self::GraphAdam => {
                let mut g = kiln_trainer::Functional::new().seed(3);
                let x = g.input([4]);
                let h = g.apply(Dense::new(24).activation(Activation::Relu), x);
                let h = g.apply(Dropout::new(0.4), h);
                let shortcut = g.apply(Dense::new(24), x);
                let sum = g.merge(kiln_layers::Add::new(), &[h, shortcut]);
                let out = g.apply(Dense::new(3).activation(Activation::Softmax), sum);
                g.model(out).unwrap()
            }
            _ => Sequential::new()
                .seed(3)
                .add(Dense::new(24).activation(Activation::Relu))
                .add(Dropout::new(0.4))
                .add(Dense::new(12).activation(Activation::Relu))
                .add(Dropout::new(0.25))
                .add(Dense::new(3).activation(Activation::Softmax)),
        };
        let optimizer = match self {
            Self::AdamReshuffled | Self::GraphAdam => Optimizer::new(Adam::default(), 0.01),
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
            .reshuffle_each_epoch(!matches!(self, Self::RmspropScheduleFixedOrder))
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
fn a_killed_run_of_a_functional_graph_with_dropout_resumes_bit_for_bit() {
    killed_run_resumes_bit_for_bit(Config::GraphAdam);
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

// --- round 3: BackupAndRestore ---

/// The cleanup child's backup folder (set by the cleanup kill test).
const CLEANUP_CHILD_ENV: &str = "KILN_BACKUP_CLEANUP_CHILD";

/// A tiny model with a Dropout generator: `activation` tells same-shaped models apart.
fn tiny(activation: Activation) -> Sequential {
    let mut m = Sequential::new()
        .seed(5)
        .add(Dense::new(6).activation(activation))
        .add(Dropout::new(0.3))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Optimizer::new(Adam::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    m
}

/// Fits `model` for `epochs` epochs of batches of `batch_size` with `backup`.
fn fit_tiny(
    model: &mut Sequential,
    backup: &mut BackupAndRestore,
    epochs: usize,
    batch_size: usize,
) -> Result<(), TrainError> {
    let (x, y) = blobs(40, 1);
    let opts = FitOptions::default().epochs(epochs).batch_size(batch_size).verbose(Verbosity::Silent).callback(backup);
    model.fit(&x, &y, opts).map(|_| ())
}

/// A backup of `tiny(Relu)` after 2 of 4 epochs (batches of 16), kept.
fn kept_backup(dir: &Path) -> PathBuf {
    let backup_dir = dir.join("backup");
    let mut model = tiny(Activation::Relu);
    let mut keep = BackupAndRestore::new(&backup_dir).delete_checkpoint(false);
    let (x, y) = blobs(40, 1);
    let opts = FitOptions::default().epochs(2).batch_size(16).verbose(Verbosity::Silent).callback(&mut keep);
    model.fit(&x, &y, opts).unwrap();
    backup_dir
}

/// Every file of `dir`, recursively, with its bytes: what must survive a refused restore.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// The names in `dir` (hidden ones included: lock files, folders moved aside).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Weights, optimizer iterations and slots, and the Dropout generator, as bits and text.
type ModelState = (Vec<(String, Vec<u32>)>, u64, Vec<Vec<u32>>, String);

/// The parts of a model a restore changes.
fn model_state(model: &Sequential) -> ModelState {
    let opt = model.optimizer().unwrap();
    let slots = opt.slots().iter().map(|s| s.values.iter().map(|v| v.to_bits()).collect()).collect();
    let rng = model.layer("dropout").unwrap().rng_state().map(|s| s.to_string()).unwrap_or_default();
    (weights_bits(&model.get_weights()), opt.iterations(), slots, rng)
}

#[test]
fn a_cleanup_killed_after_moving_the_backup_aside_leaves_a_folder_the_next_run_ignores() {
    let dir = temp_dir("cleanup-kill");
    let backup_dir = dir.join("backup");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_finishes_and_dies_in_cleanup", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CLEANUP_CHILD_ENV, &backup_dir)
        .env("FAILPOINTS", "remove:after-rename=return")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child dies in the cleanup, between the rename and the removal");
    assert!(!backup_dir.exists(), "the backup was moved aside in one step");
    assert!(dir.join(".backup.removing").is_dir(), "{:?}", names(&dir));

    // The restart starts afresh, finishes, and leaves nothing behind.
    let mut model = tiny(Activation::Relu);
    let mut backup = BackupAndRestore::new(&backup_dir);
    fit_tiny(&mut model, &mut backup, 2, 16).unwrap();
    assert_eq!(backup.resumed_at(), None);
    assert_eq!(model.history().unwrap().epochs(), 2);
    assert_eq!(names(&dir), Vec::<String>::new(), "no backup, folder aside or lock file is left");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child of the cleanup kill test: a whole fit, killed by the failpoint in its cleanup.
#[test]
#[ignore = "the child process of the cleanup kill test"]
fn child_finishes_and_dies_in_cleanup() {
    let backup_dir = std::env::var_os(CLEANUP_CHILD_ENV).expect("run by the cleanup kill test");
    let _scenario = fail::FailScenario::setup();
    let mut model = tiny(Activation::Relu);
    let mut backup = BackupAndRestore::new(PathBuf::from(backup_dir));
    let _ = fit_tiny(&mut model, &mut backup, 2, 16);
    // Reaching this line means the failpoint did not fire.
    std::process::exit(3);
}

#[test]
fn a_folder_without_a_marker_is_refused_and_never_deleted() {
    let dir = temp_dir("unmarked");
    // The user's own model file, alone.
    let mine = dir.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("model.safetensors"), b"my only copy").unwrap();
    // A backup of an older kiln: the files of a backup, without `backup.json`.
    let older = kept_backup(&dir);
    std::fs::remove_file(older.join("backup.json")).unwrap();
    let before = snapshot(&dir);
    for (folder, delete) in [(&mine, true), (&older, true), (&mine, false)] {
        let mut model = tiny(Activation::Relu);
        let mut backup = BackupAndRestore::new(folder).delete_checkpoint(delete);
        let err = fit_tiny(&mut model, &mut backup, 4, 16).unwrap_err().to_string();
        assert!(err.contains("no backup.json") && err.contains("model.safetensors"), "{err}");
        assert!(err.contains("left as is") && err.contains(&*folder.to_string_lossy()), "{err}");
    }
    assert_eq!(snapshot(&dir), before, "nothing was deleted or changed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_same_shaped_models_backup_or_another_fits_is_refused_naming_both() {
    let dir = temp_dir("identity");
    let backup_dir = kept_backup(&dir);
    let before = snapshot(&dir);

    let mut other = tiny(Activation::Tanh);
    let mut backup = BackupAndRestore::new(&backup_dir);
    let err = fit_tiny(&mut other, &mut backup, 4, 16).unwrap_err().to_string();
    assert!(err.contains("backup.json") && err.contains("the backup of another model"), "{err}");
    assert_eq!(err.matches("model `sequential` (").count(), 2, "both models are named: {err}");
    assert_eq!(backup.resumed_at(), None);

    let mut same = tiny(Activation::Relu);
    let err = fit_tiny(&mut same, &mut backup, 4, 8).unwrap_err().to_string();
    assert!(err.contains("backup.json") && err.contains("batch_size 16 vs 8"), "{err}");
    assert_eq!(snapshot(&dir), before, "a refused backup is kept");

    // The right model and settings resume it.
    fit_tiny(&mut same, &mut backup, 4, 16).unwrap();
    assert_eq!(backup.resumed_at(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_restore_leaves_the_model_as_it_was() {
    let dir = temp_dir("half");
    let backup_dir = kept_backup(&dir);
    let (x, _) = blobs(40, 1);
    // Each breaks a file read after the weights, which the old restore had already applied.
    type Edit = (&'static str, fn(&Path));
    let edits: [Edit; 3] = [
        ("optimizer.safetensors", |d| std::fs::write(d.join("optimizer.safetensors"), b"not safetensors").unwrap()),
        ("learning_rate", |d| edit_state(d, "\"learning_rate\": 0.01", "\"learning_rate\": 1e39")),
        ("dropout", |d| edit_state(d, "\"dropout\":", "\"dropout_7\":")),
    ];
    let pristine = snapshot(&backup_dir);
    for (what, edit) in edits {
        for (path, bytes) in &pristine {
            std::fs::write(path, bytes).unwrap();
        }
        edit(&backup_dir);
        // Trained a little first, so its weights, slots and generator are not fresh ones.
        let mut model = tiny(Activation::Relu);
        model.fit(&x, &blobs(40, 1).1, FitOptions::default().epochs(1).verbose(Verbosity::Silent)).unwrap();
        let before = model_state(&model);
        let mut backup = BackupAndRestore::new(&backup_dir);
        let err = fit_tiny(&mut model, &mut backup, 4, 16).unwrap_err().to_string();
        assert!(err.contains(what), "{what}: {err}");
        assert_eq!(model_state(&model), before, "{what}: nothing of the backup was applied");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Replaces `from` by `to` in the backup's `training_state.json`.
fn edit_state(dir: &Path, from: &str, to: &str) {
    let path = dir.join("training_state.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} in {text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn hand_edited_epochs_rates_and_iteration_counts_are_refused_naming_file_and_field() {
    let dir = temp_dir("edited");
    let backup_dir = kept_backup(&dir);
    let pristine = snapshot(&backup_dir);
    let state_edits = [
        ("\"epoch\": 2", "\"epoch\": 18446744073709551615", "`epoch` 18446744073709551615 is past"),
        ("\"epoch\": 2", "\"epoch\": 0", "`epoch` 0 is not after epoch 0"),
        // Keras takes any float rate, 0 and negative ones too; float32 has no 1e39.
        ("\"learning_rate\": 0.01", "\"learning_rate\": 1e39", "`learning_rate` inf is not a finite number"),
    ];
    for (from, to, expected) in state_edits {
        edit_state(&backup_dir, from, to);
        let mut model = tiny(Activation::Relu);
        let err = fit_tiny(&mut model, &mut BackupAndRestore::new(&backup_dir), 4, 16).unwrap_err().to_string();
        assert!(err.contains("training_state.json") && err.contains(expected), "{to}: {err}");
        for (path, bytes) in &pristine {
            std::fs::write(path, bytes).unwrap();
        }
    }
    // 2 epochs of 3 steps: 6 iterations, written as text in the file's header.
    let path = backup_dir.join("optimizer.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(16).position(|w| w == b"\"iterations\":\"6\"").expect("the count is 6");
    for (count, ok) in [(b'9', false), (b'1', false), (b'6', true)] {
        let mut edited = bytes.clone();
        edited[at + 14] = count;
        std::fs::write(&path, &edited).unwrap();
        let mut model = tiny(Activation::Relu);
        let result = fit_tiny(&mut model, &mut BackupAndRestore::new(&backup_dir).delete_checkpoint(false), 4, 16);
        match (result, ok) {
            (Ok(()), true) => {}
            (Err(e), false) => {
                let err = e.to_string();
                assert!(err.contains("optimizer.safetensors") && err.contains("`iterations`"), "{err}");
                assert!(err.contains("2..=6"), "{err}");
            }
            (result, _) => panic!("iterations {}: {result:?}", count as char),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Starts a second fit on the same backup folder at the end of the first fit's first
/// epoch, and keeps its outcome.
struct SecondFit {
    backup_dir: PathBuf,
    outcome: Option<Result<(), TrainError>>,
}

impl Callback for SecondFit {
    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if epoch == 0 {
            let mut model = tiny(Activation::Relu);
            self.outcome = Some(fit_tiny(&mut model, &mut BackupAndRestore::new(&self.backup_dir), 4, 16));
        }
        Ok(())
    }
}

#[test]
fn a_second_fit_on_the_same_backup_folder_is_refused_at_its_start() {
    let dir = temp_dir("shared");
    let backup_dir = dir.join("backup");
    let mut second = SecondFit { backup_dir: backup_dir.clone(), outcome: None };
    let mut first = BackupAndRestore::new(&backup_dir);
    let (x, y) = blobs(40, 1);
    let opts = FitOptions::default()
        .epochs(3)
        .batch_size(16)
        .verbose(Verbosity::Silent)
        .callback(&mut first)
        .callback(&mut second);
    tiny(Activation::Relu).fit(&x, &y, opts).unwrap();
    let err = second.outcome.expect("ran").unwrap_err().to_string();
    assert!(err.contains("another running fit") && err.contains(&*backup_dir.to_string_lossy()), "{err}");
    assert_eq!(names(&dir), Vec::<String>::new(), "the first fit ended whole and removed its lock");

    // Once the first has ended, the folder is free.
    let mut model = tiny(Activation::Relu);
    fit_tiny(&mut model, &mut BackupAndRestore::new(&backup_dir), 2, 16).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_fit_leaves_no_lock_that_blocks_and_a_finished_one_leaves_no_file() {
    let dir = temp_dir("stale-lock");
    let (backup_dir, marker) = (dir.join("backup"), dir.join("marker"));
    train_and_kill_child(Config::RmspropScheduleFixedOrder, &backup_dir, &marker);
    assert!(dir.join(".backup.fit.lock").exists(), "the killed child's lock file is still there");
    let mut model = Config::RmspropScheduleFixedOrder.model();
    let mut backup = BackupAndRestore::new(&backup_dir);
    Config::RmspropScheduleFixedOrder.fit(&mut model, Some(&mut backup), None).unwrap();
    assert_eq!(backup.resumed_at(), Some(KILL_AT.0));
    assert_eq!(names(&dir), ["marker"], "no backup, lock file or folder aside is left");
    std::fs::remove_dir_all(&dir).unwrap();
}
