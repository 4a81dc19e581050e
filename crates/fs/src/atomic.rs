//! Crash-safe writes: a file or a whole model directory either keeps its previous
//! content or has the new one, never a mix or a torn file, even if the process is killed
//! or the machine loses power mid-save.
//!
//! Files: written to a temporary sibling, flushed to disk (`fsync`), renamed over the
//! target, and the directory entry flushed. Directories (a saved model is several files
//! that must agree): the new content is written to a temporary sibling directory, then
//! swapped in with one atomic `renameat2(RENAME_EXCHANGE)` on Linux. Where that is not
//! available, the old directory is first renamed to `.NAME.previous`, and [`recover_dir`]
//! puts it back if a crash happened between the two renames.
//!
//! A symlink is written through (its target changes, the link stays); a directory, a
//! device or a FIFO is never replaced by a file, nor a file by a directory. Temporary
//! files are unique per write, and those of killed writers are removed by the next write
//! of the same path.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::failpoint::failpoint;
use crate::{FileError, SaveLock};

/// `path`, or what it points to when it is a symlink (which is then written through).
fn resolve(path: &Path) -> Result<PathBuf, FileError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)
            .map_err(|e| FileError::new(path, format!("is a symlink whose target cannot be resolved: {e}"))),
        _ => Ok(path.to_path_buf()),
    }
}

/// Writes `bytes` to `path` atomically and durably (temporary file, `fsync`, rename).
/// Refuses to replace anything but a regular file; follows a symlink to its target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let path = &resolve(path)?;
    if let Ok(meta) = fs::metadata(path)
        && !meta.is_file()
    {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(FileError::new(path, format!("is {what}; refusing to replace it with a file")));
    }
    let dir = parent_of(path);
    remove_stale_temporaries(path);
    let tmp = unique_tmp(path)?;
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        failpoint!("write:enospc", |_| -> std::io::Result<()> {
            Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (failpoint)"))
        });
        failpoint!("write:torn", |_| -> std::io::Result<()> {
            // Simulates a kill halfway through the data.
            f.write_all(&bytes[..bytes.len() / 2])?;
            f.sync_all()?;
            std::process::abort()
        });
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(FileError::new(&tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        FileError::new(path, e)
    })?;
    sync_dir(dir);
    Ok(())
}

/// Fills a fresh temporary directory beside `dir` with `fill`, then atomically makes it
/// `dir` (replacing what was there). On error the temporary directory is removed and `dir`
/// is untouched.
///
/// The whole operation holds `dir`'s [`SaveLock`]: a second process saving the same
/// directory at the same time gets an error naming it. The lock file is removed after, so
/// nothing is left beside `dir`. A symlinked `dir` is written
/// through; a `dir` that exists but is not a directory is refused.
pub fn replace_dir_atomic<E: From<FileError>>(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    let dir = &resolve(dir)?;
    if let Ok(meta) = fs::metadata(dir)
        && !meta.is_dir()
    {
        return Err(FileError::new(dir, "exists and is not a directory; refusing to replace it").into());
    }
    let lock = SaveLock::acquire(dir)?;
    let result = fill_and_swap(dir, fill);
    // The lock file goes with the lock, so a save leaves nothing beside `dir`.
    lock.release_and_remove();
    result
}

/// [`replace_dir_atomic`]'s work under the lock.
fn fill_and_swap<E: From<FileError>>(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    recover_dir(dir)?;
    // Under the lock no other writer is alive: whatever staging is left was a killed save's.
    let staging = sibling(dir, "saving")?;
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(|e| FileError::new(&staging, e))?;
    if let Err(e) = fill(&staging) {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    sync_dir(&staging);
    failpoint!("save:before-swap", |_| -> Result<(), E> { std::process::abort() });
    let swapped = if dir.exists() { swap(&staging, dir) } else { fs::rename(&staging, dir).map(|()| false) };
    match swapped {
        // `staging` now holds the previous content.
        Ok(true) => {
            let _ = fs::remove_dir_all(&staging);
        }
        Ok(false) => {}
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(FileError::new(dir, format!("could not replace the directory: {e}")).into());
        }
    }
    sync_dir(parent_of(dir));
    Ok(())
}

/// Removes directory `dir` in one step: renames it to `.NAME.removing` beside it, then
/// deletes that. A process killed mid-way leaves either `dir` whole or no `dir` at all
/// (and a `.NAME.removing` that [`recover_dir`] and the next removal delete), never a
/// half-deleted `dir`. Holds `dir`'s [`SaveLock`] meanwhile and removes its lock file
/// after. A missing `dir` is not an error; a symlink is removed, not what it points to.
pub fn remove_dir_atomic(dir: &Path) -> Result<(), FileError> {
    let lock = SaveLock::acquire(dir)?;
    let aside = sibling(dir, "removing")?;
    // Under the lock no other removal is alive: whatever is aside was a killed one's.
    let _ = remove_any(&aside);
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::new(dir, e)),
        Ok(_) => {
            fs::rename(dir, &aside)
                .map_err(|e| FileError::new(dir, format!("cannot move it aside to remove it: {e}")))?;
            sync_dir(parent_of(dir));
            failpoint!("remove:after-rename", |_| -> Result<(), FileError> { std::process::abort() });
            remove_any(&aside).map_err(|e| FileError::new(&aside, format!("cannot remove it: {e}")))?;
        }
    }
    lock.release_and_remove();
    Ok(())
}

/// Puts back `dir` from `.NAME.previous` when a save was interrupted between moving the
/// old directory aside and moving the new one in (only possible without
/// `RENAME_EXCHANGE`); removes a stale `.NAME.previous` otherwise, and the
/// `.NAME.removing` of a killed [`remove_dir_atomic`].
pub fn recover_dir(dir: &Path) -> Result<(), FileError> {
    let removing = sibling(dir, "removing")?;
    if fs::symlink_metadata(&removing).is_ok() {
        tracing::warn!(dir = %removing.display(), "deleting what an interrupted removal left");
        let _ = remove_any(&removing);
    }
    let previous = sibling(dir, "previous")?;
    if !previous.exists() {
        return Ok(());
    }
    if dir.exists() {
        let _ = fs::remove_dir_all(&previous);
    } else {
        tracing::warn!(dir = %dir.display(), "restoring the previous save (the last one was interrupted)");
        fs::rename(&previous, dir)
            .map_err(|e| FileError::new(dir, format!("restoring {}: {e}", previous.display())))?;
    }
    Ok(())
}

/// Removes a directory tree, or a file or symlink (not what it points to).
fn remove_any(path: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) }
}

/// Makes `staging` become `dir`; true when the old content ended up in `staging`.
fn swap(staging: &Path, dir: &Path) -> std::io::Result<bool> {
    if exchange(staging, dir).is_ok() {
        return Ok(true);
    }
    // Two renames; a crash in between leaves `.NAME.previous`, which `recover_dir` restores.
    let previous = sibling(dir, "previous").map_err(std::io::Error::other)?;
    fs::rename(dir, &previous)?;
    failpoint!("save:between-renames", |_| -> std::io::Result<bool> { std::process::abort() });
    fs::rename(staging, dir)?;
    let _ = fs::remove_dir_all(&previous);
    Ok(false)
}

/// Swaps two paths atomically (Linux `renameat2` with `RENAME_EXCHANGE`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    failpoint!("save:no-exchange", |_| Err(std::io::Error::other("RENAME_EXCHANGE disabled by a failpoint")));
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Not available: the caller falls back to two renames.
#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("no atomic exchange on this platform"))
}

/// `.NAME.TAG` beside `path` (hidden, so listings stay clean).
pub(crate) fn sibling(path: &Path, tag: &str) -> Result<PathBuf, FileError> {
    let name = path.file_name().ok_or_else(|| FileError::new(path, "not a file or directory name"))?;
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(".");
    hidden.push(tag);
    Ok(parent_of(path).join(hidden))
}

/// `.NAME.tmpPID-N` beside `path`: unique for every write of this process.
fn unique_tmp(path: &Path) -> Result<PathBuf, FileError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    sibling(path, &format!("tmp{}-{n}", std::process::id()))
}

/// Removes `.NAME.tmpPID-N` files beside `path` left by processes that no longer run
/// (Linux: no `/proc/PID`); other processes' live temporaries are kept.
fn remove_stale_temporaries(path: &Path) {
    let (Some(name), Ok(entries)) = (path.file_name(), fs::read_dir(parent_of(path))) else { return };
    let prefix = format!(".{}.tmp", name.to_string_lossy());
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !process_alive(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (Linux; elsewhere every process counts as alive, so
/// nothing is removed by mistake).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Flushes a directory's entries (the renames) to disk; best effort.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
