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

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::FileError;
use crate::failpoint::failpoint;

/// Writes `bytes` to `path` atomically and durably (temporary file, `fsync`, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = parent_of(path);
    let tmp = sibling(path, "tmp")?;
    let written = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
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
pub fn replace_dir_atomic<E: From<FileError>>(dir: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    recover_dir(dir)?;
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

/// Puts back `dir` from `.NAME.previous` when a save was interrupted between moving the
/// old directory aside and moving the new one in (only possible without
/// `RENAME_EXCHANGE`); removes a stale `.NAME.previous` otherwise.
pub fn recover_dir(dir: &Path) -> Result<(), FileError> {
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

/// `.NAME.TAG` beside `path` (hidden, so listings stay clean; one per process for `tmp`).
fn sibling(path: &Path, tag: &str) -> Result<PathBuf, FileError> {
    let name = path.file_name().ok_or_else(|| FileError::new(path, "not a file or directory name"))?;
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(".");
    hidden.push(tag);
    if tag == "tmp" {
        hidden.push(std::process::id().to_string());
    }
    Ok(parent_of(path).join(hidden))
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
