//! The error every function here returns: a path and what went wrong with it.

use std::path::PathBuf;

/// A file or directory that could not be written, read or replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct FileError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong (the OS's message, or ours).
    pub message: String,
}

impl FileError {
    /// An error naming `path`.
    pub fn new(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self { path: path.into(), message: message.to_string() }
    }
}
