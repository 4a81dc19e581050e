//! Who may have written a plugin before it is loaded: the checks ssh and sudo make.
//!
//! Loading a library runs its code, so a plugin file (or the folder it sits in) that another
//! user could have replaced is refused: writable by group or others, or owned by someone
//! other than this user or root. `KILN_PLUGIN_TRUST_ANY=1` skips the check.

use std::path::Path;

use crate::PluginError;

/// Set to `1` to load plugins whatever their permissions (shared build machines, CI caches).
pub const TRUST_ANY_VAR: &str = "KILN_PLUGIN_TRUST_ANY";

/// True when [`TRUST_ANY_VAR`] is `1`; any value other than unset, `0` or `1` is warned about
/// on stderr and treated as unset (the safe side).
pub(crate) fn trust_any() -> bool {
    match std::env::var(TRUST_ANY_VAR) {
        Err(_) => false,
        Ok(v) if v == "1" => true,
        Ok(v) if v.is_empty() || v == "0" => false,
        Ok(v) => {
            eprintln!("warning: {TRUST_ANY_VAR}={v:?} is not 0 or 1; plugin permissions stay checked");
            false
        }
    }
}

/// Refuses `file` (canonical) unless it is a regular file that it and its folder could only
/// have been written by this user or root.
pub(crate) fn check(file: &Path, shown: &Path) -> Result<(), PluginError> {
    let meta = kiln_fs::check_regular_file(file)
        .map_err(|e| PluginError::Open { path: shown.to_path_buf(), message: e.message })?;
    if trust_any() {
        return Ok(());
    }
    check_writers(file, &meta, "file")?;
    if let Some(dir) = file.parent() {
        let dir_meta =
            std::fs::metadata(dir).map_err(|e| PluginError::Dir { path: dir.to_path_buf(), message: e.to_string() })?;
        check_writers(dir, &dir_meta, "folder")?;
    }
    Ok(())
}

#[cfg(unix)]
fn check_writers(path: &Path, meta: &std::fs::Metadata, what: &'static str) -> Result<(), PluginError> {
    use std::os::unix::fs::MetadataExt;
    let insecure = |problem: String| PluginError::Insecure { path: path.to_path_buf(), what, problem };
    let mode = meta.mode();
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 { "others" } else { "its group" };
        return Err(insecure(format!(
            "is writable by {who} (mode {:o}); fix with `chmod go-w {}`",
            mode & 0o7777,
            path.display()
        )));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner = meta.uid();
    if owner != me && owner != 0 {
        return Err(insecure(format!(
            "is owned by user {owner}, not by you ({me}) or root; copy it somewhere you own"
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_writers(_: &Path, _: &std::fs::Metadata, _: &'static str) -> Result<(), PluginError> {
    Ok(())
}
