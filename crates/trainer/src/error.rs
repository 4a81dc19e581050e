//! The trainer's error type.

use std::path::PathBuf;

use kiln_layers::LayerError;

/// Everything that can go wrong building, training, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A layer refused its configuration or parameters.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The model is used in a state that does not allow it.
    #[error("{0}")]
    State(String),
    /// Inputs, labels or options that do not fit the model.
    #[error("invalid input: {0}")]
    Input(String),
    /// A configuration (kiln's or an imported Keras one) that cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A callback failed.
    #[error("callback {callback}: {message}")]
    Callback {
        /// The callback's type.
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
