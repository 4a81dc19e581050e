//! One writer per target: an advisory lock held for the whole save.

use std::fs;
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};

use crate::FileError;

/// An exclusive advisory lock on `.NAME.lock` beside a target, released on drop. Every
/// kiln process saving the same model directory takes it first, so two saves never mix
/// their files; it is advisory (`flock`), so it binds cooperating writers only.
#[derive(Debug)]
pub struct SaveLock {
    _file: fs::File,
    path: PathBuf,
}

impl SaveLock {
    /// Takes the lock of `target` or fails at once, saying another process holds it.
    /// Creates `target`'s parent folders if they are missing (as `mkdir -p`).
    pub fn acquire(target: &Path) -> Result<Self, FileError> {
        let path = crate::atomic::sibling(target, "lock")?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| FileError::new(parent, format!("cannot create the folder: {e}")))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| FileError::new(&path, format!("cannot create the save lock: {e}")))?;
        // fs4's, not std's inherent `try_lock` (Rust 1.89+): the crate keeps older compilers working.
        match FileExt::try_lock(&file) {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(FileError::new(
                target,
                "is being saved by another process (its lock file is held); try again when that save ends",
            )),
            Err(TryLockError::Error(e)) => Err(FileError::new(&path, format!("cannot take the save lock: {e}"))),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
