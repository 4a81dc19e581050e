//! The importer's error: where in the Keras JSON, or which file, and what is wrong.

use std::path::PathBuf;

use kiln_trainer::TrainError;

/// A Keras configuration or file kiln cannot represent exactly.
#[derive(Debug, thiserror::Error)]
pub enum KerasError {
    /// A field of the configuration (`at` is its JSON path, e.g.
    /// `config.layers[1].config.units`).
    #[error("{at}: {message}")]
    Config {
        /// Where in the JSON.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// A file that cannot be read as a Keras model (or a field inside it).
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong (with the JSON path when it is about a field).
        message: String,
    },
    /// The model kiln built from the configuration refused it.
    #[error(transparent)]
    Train(#[from] TrainError),
}

impl KerasError {
    /// An error about the field at `at`.
    pub fn config(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config { at: at.into(), message: message.into() }
    }

    /// This error as one about `path` (keeping the field's JSON path in the message).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            Self::File { .. } => self,
            other => Self::File { path: path.into(), message: other.to_string() },
        }
    }
}
