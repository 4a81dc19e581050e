//! The importer's error: where in the Keras JSON, or which file, and what is wrong.

use std::path::PathBuf;

use kiln_trainer::TrainError;

/// Longest JSON path an error quotes.
const MAX_AT_BYTES: usize = 2 * kiln_fs::EXCERPT_BYTES;
/// Longest message an error carries.
const MAX_MESSAGE_BYTES: usize = 5 * kiln_fs::EXCERPT_BYTES;

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
    /// An error about the field at `at`. Both are cut to a bounded length: a path or a
    /// message quoting a huge key or value must not make a huge error.
    pub fn config(at: impl Into<String>, message: impl Into<String>) -> Self {
        let (at, message) = (at.into(), message.into());
        let at = if at.len() > MAX_AT_BYTES { kiln_fs::excerpt_to(at, MAX_AT_BYTES) } else { at };
        let message =
            if message.len() > MAX_MESSAGE_BYTES { kiln_fs::excerpt_to(message, MAX_MESSAGE_BYTES) } else { message };
        Self::Config { at, message }
    }

    /// This error as one about `path` (keeping the field's JSON path in the message).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            Self::File { .. } => self,
            other => Self::File { path: path.into(), message: other.to_string() },
        }
    }
}
