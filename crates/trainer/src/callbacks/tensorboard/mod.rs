//! Scalar logs for TensorBoard, laid out as Keras' `TensorBoard` callback lays them out.

mod event_file;

use std::path::{Path, PathBuf};

use self::event_file::EventWriter;
use super::{Callback, Control};
use crate::{Logs, TrainError};

/// How often [`TensorBoard`] writes batch-level scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateFreq {
    /// Only once per epoch (Keras' default, `update_freq="epoch"`).
    #[default]
    Epoch,
    /// Also every `n` batches (`update_freq=n`; `"batch"` is `n = 1`): `batch_<name>`
    /// with the epoch's running logs, at the global batch count (from 1).
    Batches(usize),
}

/// Keras' `TensorBoard(log_dir, update_freq)` for scalars: `log_dir/train` gets
/// `epoch_<name>` for every training log plus `epoch_learning_rate`, at step = epoch (from 0);
/// `log_dir/validation` gets `epoch_<name>` for every `val_<name>` and
/// `evaluation_<name>_vs_iterations` at step = optimizer iterations. Files are TensorBoard's
/// `events.out.tfevents.*` (TFRecord-framed `Event` protobufs with masked CRC32C), flushed
/// after every epoch; a run never overwrites another's files.
///
/// ```no_run
/// use kiln_trainer::callbacks::{TensorBoard, UpdateFreq};
/// let mut tb = TensorBoard::new("logs/run1").update_freq(UpdateFreq::Batches(10));
/// # let _ = &mut tb;
/// ```
#[derive(Debug)]
pub struct TensorBoard {
    /// The run directory (`train/` and `validation/` go under it).
    pub log_dir: PathBuf,
    /// Batch-level logging.
    pub update_freq: UpdateFreq,
    run: Option<Run>,
    files: Vec<PathBuf>,
}

/// The open writers of one `fit`.
#[derive(Debug)]
struct Run {
    train: Writer,
    validation: Writer,
    global_batch: u64,
}

/// An event file opened on first use (no validation data: no `validation/` file).
struct Writer {
    dir: PathBuf,
    file: Option<EventWriter>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("dir", &self.dir).finish()
    }
}

impl Writer {
    fn new(dir: PathBuf) -> Self {
        Self { dir, file: None }
    }

    fn scalars(&mut self, step: i64, values: Vec<(String, f32)>, files: &mut Vec<PathBuf>) -> Result<(), TrainError> {
        if values.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = EventWriter::create(&self.dir, files.len()).map_err(|e| TrainError::file(&self.dir, e))?;
                files.push(f.path().to_path_buf());
                self.file.insert(f)
            }
        };
        file.scalars(step, values).map_err(|e| TrainError::file(&self.dir, e))
    }

    fn flush(&mut self) -> Result<(), TrainError> {
        match &mut self.file {
            Some(f) => f.flush().map_err(|e| TrainError::file(f.path(), e)),
            None => Ok(()),
        }
    }
}

impl TensorBoard {
    /// Logs under `log_dir`, once per epoch.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        Self { log_dir: log_dir.into(), update_freq: UpdateFreq::Epoch, run: None, files: Vec::new() }
    }

    /// Sets batch-level logging.
    pub fn update_freq(mut self, update_freq: UpdateFreq) -> Self {
        self.update_freq = update_freq;
        self
    }

    /// The event files written so far.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The open writers and the list of files, borrowed apart.
    fn run(&mut self) -> Result<(&mut Run, &mut Vec<PathBuf>), TrainError> {
        let Self { run, files, .. } = self;
        let run = run.as_mut().ok_or_else(|| TrainError::Config("TensorBoard: called before on_train_begin".into()))?;
        Ok((run, files))
    }
}

/// `logs` as `<prefix><name>` scalars.
fn tagged<'a>(logs: impl Iterator<Item = (&'a str, f64)>, prefix: &str, suffix: &str) -> Vec<(String, f32)> {
    logs.map(|(k, v)| (format!("{prefix}{k}{suffix}"), v as f32)).collect()
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if let UpdateFreq::Batches(0) = self.update_freq {
            return Err(TrainError::Config("TensorBoard update_freq must be ≥ 1 batch".into()));
        }
        if self.log_dir.exists() && !self.log_dir.is_dir() {
            return Err(TrainError::file(&self.log_dir, "exists and is not a directory"));
        }
        let dir: &Path = &self.log_dir;
        self.run = Some(Run {
            train: Writer::new(dir.join("train")),
            validation: Writer::new(dir.join("validation")),
            global_batch: 0,
        });
        Ok(())
    }

    fn on_train_batch_end(&mut self, _batch: usize, logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let UpdateFreq::Batches(n) = self.update_freq else { return Ok(()) };
        let (run, files) = self.run()?;
        run.global_batch += 1;
        if run.global_batch % n as u64 != 0 {
            return Ok(());
        }
        run.train.scalars(run.global_batch as i64, tagged(logs.iter(), "batch_", ""), files)
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let lr = ctl.model().learning_rate();
        let iterations = ctl.model().optimizer().map_or(0, |o| o.iterations());
        let (run, files) = self.run()?;
        // Keras' `_collect_learning_rate` writes the optimizer's rate now over any
        // `learning_rate` in the logs (ReduceLROnPlateau's is the rate before its cut).
        let replaced = |k: &str| lr.is_some() && k == "learning_rate";
        let train_logs = logs.iter().filter(|(k, _)| !k.starts_with("val_") && !replaced(k));
        let mut train = tagged(train_logs, "epoch_", "");
        if let Some(lr) = lr {
            train.push(("epoch_learning_rate".into(), lr));
        }
        run.train.scalars(epoch as i64, train, files)?;
        run.train.flush()?;
        let val: Vec<(&str, f64)> = logs.iter().filter_map(|(k, v)| k.strip_prefix("val_").map(|k| (k, v))).collect();
        let w = &mut run.validation;
        w.scalars(epoch as i64, tagged(val.iter().copied(), "epoch_", ""), files)?;
        w.scalars(iterations as i64, tagged(val.iter().copied(), "evaluation_", "_vs_iterations"), files)?;
        w.flush()
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if let Some(mut run) = self.run.take() {
            run.train.flush()?;
            run.validation.flush()?;
        }
        Ok(())
    }

    fn wants_batches(&self) -> bool {
        matches!(self.update_freq, UpdateFreq::Batches(_))
    }
}
