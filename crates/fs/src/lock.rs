//! One writer per target: an advisory lock held for the whole save.

use std::fs;
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};

use crate::FileError;

/// How often a lock file removed by its holder between our open and our lock is reopened
/// before giving up (each round means another process just took and released it).
const RETRIES: usize = 16;

/// How long a held lock is retried before it counts as another writer's. A process that
/// forks (to spawn a child) while this one holds a lock shares the lock's open file until
/// the child execs, so a lock just released can read as held for a moment; a real writer
/// holds it far longer.
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// An exclusive advisory lock on `.NAME.lock` beside a target, released on drop. Every
/// kiln process saving the same model directory takes it first, so two saves never mix
/// their files; it is advisory (`flock`), so it binds cooperating writers only. The
/// operating system releases it when its process dies, so a killed writer never blocks
/// the next one.
#[derive(Debug)]
pub struct SaveLock {
    _file: fs::File,
    path: PathBuf,
}

impl SaveLock {
    /// Takes the lock of `target` or fails (after retrying for 300 ms), saying another process
    /// holds it.
    /// Creates `target`'s parent folders if they are missing (as `mkdir -p`).
    pub fn acquire(target: &Path) -> Result<Self, FileError> {
        Self::acquire_tagged(
            target,
            "lock",
            "is being saved by another process (its lock file is held); try again when that save ends",
        )
    }

    /// Takes the lock file `.NAME.TAG` beside `target` or fails (after retrying for 300 ms) with
    /// an error naming `target` and saying `busy`. Creates `target`'s parent folders if
    /// missing.
    pub fn acquire_tagged(target: &Path, tag: &str, busy: &str) -> Result<Self, FileError> {
        let path = crate::atomic::sibling(target, tag)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| FileError::new(parent, format!("cannot create the folder: {e}")))?;
        }
        let started = std::time::Instant::now();
        let mut replaced = 0;
        while replaced < RETRIES {
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| FileError::new(&path, format!("cannot create the lock file: {e}")))?;
            // fs4's, not std's inherent `try_lock` (Rust 1.89+): the crate keeps older compilers working.
            match FileExt::try_lock(&file) {
                // A holder may have removed the file (`release_and_remove`) after we opened
                // it: the lock is then on a file nobody else will open. Only a lock on the
                // file still at `path` counts.
                Ok(()) if still_at(&file, &path) => return Ok(Self { _file: file, path }),
                Ok(()) => replaced += 1,
                Err(TryLockError::WouldBlock) if started.elapsed() < BUSY_GRACE => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => return Err(FileError::new(target, busy)),
                Err(TryLockError::Error(e)) => {
                    return Err(FileError::new(&path, format!("cannot take the lock: {e}")));
                }
            }
        }
        Err(FileError::new(&path, "cannot take the lock: its file keeps being replaced by other processes"))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the lock file, then releases the lock, so nothing is left behind. Safe with
    /// concurrent takers: one that opened the file before the removal finds, once it has
    /// the lock, that the file is no longer at the path, and opens the new one. (Elsewhere
    /// than on Unix the file is kept: that check needs inode numbers.)
    pub fn release_and_remove(self) {
        if cfg!(unix) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether the open `file` is still the one at `path` (same device and inode).
#[cfg(unix)]
fn still_at(file: &fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inode numbers lock files are never removed, so the file is always the one.
#[cfg(not(unix))]
fn still_at(_: &fs::File, _: &Path) -> bool {
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A lock released within the grace (as one a forked child briefly shares is) is
    /// taken; one held past it is refused as another writer's.
    #[test]
    fn a_lock_released_within_the_grace_is_taken_one_held_longer_is_refused() {
        let dir = std::env::temp_dir().join(format!("kiln-fs-lock-grace-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("model");
        let held = SaveLock::acquire(&target).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(held);
        });
        let second = SaveLock::acquire(&target).expect("released after 50 ms");
        releaser.join().unwrap();
        let started = std::time::Instant::now();
        let err = SaveLock::acquire(&target).unwrap_err().to_string();
        assert!(err.contains("another process") && started.elapsed() >= BUSY_GRACE, "{err}");
        drop(second);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lock_on_a_file_removed_from_its_path_does_not_count() {
        let dir = std::env::temp_dir().join(format!("kiln-fs-lock-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".x.lock");
        let file = fs::File::create(&path).unwrap();
        assert!(still_at(&file, &path));
        fs::remove_file(&path).unwrap();
        assert!(!still_at(&file, &path), "removed");
        fs::File::create(&path).unwrap();
        assert!(!still_at(&file, &path), "replaced by another file");
        fs::remove_dir_all(dir).unwrap();
    }
}
