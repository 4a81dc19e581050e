//! The trainer's error type: typed variants for the mistakes users make most, each
//! naming what is wrong.

use std::path::PathBuf;

use kiln_fs::FileError;
use kiln_layers::LayerError;
use kiln_regularizers::RegularizerError;

/// Everything that can go wrong building, training, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model has no layers.
    #[error("the model has no layers")]
    NoLayers,
    /// `fit`/`evaluate` before `compile`.
    #[error("compile the model before {0}")]
    NotCompiled(&'static str),
    /// An operation that needs the weights before the model was built.
    #[error("build the model before {0} (call `build(input_width)`, or fit it once)")]
    NotBuilt(&'static str),
    /// Data whose width is not the model's input width.
    #[error("{data} data has {found} features, but the model takes {expected}")]
    WidthMismatch {
        /// Which data (`training`, `validation`, `evaluation`, `prediction`).
        data: &'static str,
        /// The model's input width.
        expected: usize,
        /// The data's width.
        found: usize,
    },
    /// A NaN or infinite input value (it would train silently into NaN weights).
    #[error("{data} data: the value at row {row}, column {col} is {value}, not a finite number")]
    NonFiniteFeature {
        /// Which data.
        data: &'static str,
        /// The row.
        row: usize,
        /// The column.
        col: usize,
        /// The value.
        value: f32,
    },
    /// A label outside what the loss accepts.
    #[error("{loss}: label {value} at row {row} {problem}")]
    BadLabel {
        /// The loss.
        loss: &'static str,
        /// The row.
        row: usize,
        /// The label value.
        value: f32,
        /// What is wrong with it (`is not a class id in 0..10`, …).
        problem: String,
    },
    /// A metric identifier kiln does not know.
    #[error("unknown metric `{name}` (known: {known})")]
    UnknownMetric {
        /// The identifier.
        name: String,
        /// The ones kiln knows.
        known: String,
    },
    /// Two layers with the same name (Keras refuses them too).
    #[error("two layers are named `{name}` (layers {first} and {second}); layer names must be unique")]
    DuplicateLayerName {
        /// The name.
        name: String,
        /// Index of the first layer with it.
        first: usize,
        /// Index of the second.
        second: usize,
    },
    /// A weight or optimizer slot is NaN or infinite: the model diverged, and saving it
    /// would replace a loadable model with one that cannot be loaded.
    #[error("`{tensor}` holds {value} at index {index}: the model diverged; refusing to save it")]
    Diverged {
        /// `layer/param` or `layer/param/slot`.
        tensor: String,
        /// The first bad index.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A layer refused its configuration or parameters.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A regularizer failed while training or evaluating (a plugin's, typically).
    #[error("layer `{layer}`, {target}: {source}")]
    Regularizer {
        /// The layer.
        layer: String,
        /// `kernel`, `bias`, `activity`…
        target: String,
        /// The regularizer's error (it names the regularizer).
        source: RegularizerError,
    },
    /// Inputs, labels or options that do not fit the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// A configuration (kiln's or an imported Keras one) that cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A callback failed.
    #[error("callback {callback}: {message}")]
    Callback {
        /// The callback's name.
        callback: String,
        /// What went wrong.
        message: String,
    },
}

impl TrainError {
    /// A file error naming `path`.
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::File { path: path.into(), message: message.to_string() }
    }
}

impl From<FileError> for TrainError {
    fn from(e: FileError) -> Self {
        Self::File { path: e.path, message: e.message }
    }
}
