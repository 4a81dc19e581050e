//! Checks, before any training, that every place `reproduce` will write can be written:
//! a bad `--out` or `--tensorboard` fails in a second, not after an hour of training.
//! And that nothing written is not ours: a symlinked output (written through, it would
//! overwrite its target), a `history/` holding a user's files (a merge replaces it
//! whole), or a saved model directory around `--out`, is refused naming the path.

use std::path::Path;

use anyhow::{Context, bail};

use super::experiments::{self, Experiment};
use super::{figures, shard};
use crate::out_path::refuse_in_model_dir;

/// Errors if `path` is a symlink: `reproduce` writes its outputs in place, and writing
/// through a link would overwrite whatever it points to, outside `--out`.
pub fn refuse_symlink(arg: &str, path: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = std::fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string());
        bail!(
            "{arg}: {} is a symlink (to {target}); reproduce would write through it and overwrite what it \
             points to, so it refuses: remove the link or give another folder",
            path.display()
        );
    }
    Ok(())
}

/// Writes an output file atomically, refusing a symlink in its place (checked again
/// right before the write: training may have taken an hour since [`check`]).
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    refuse_symlink("--out", path)?;
    kiln_fs::write_atomic(path, bytes)?;
    Ok(())
}

/// Whether `name` is a history file `reproduce` writes: `<experiment>_seed<k>.json` for
/// a known experiment.
fn is_history_name(name: &str) -> bool {
    let Some((exp, seed)) = name.strip_suffix(".json").and_then(|stem| stem.rsplit_once("_seed")) else {
        return false;
    };
    experiments::find(exp).is_some() && !seed.is_empty() && seed.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `name` is a temporary file ours left in `history/`: the atomic writer's
/// `.<history>.tmp…` or the write probe of [`writable_dir`].
fn is_our_temporary(name: &str) -> bool {
    name.starts_with(".kiln-write-probe-")
        || name.strip_prefix('.').and_then(|n| n.split_once(".tmp")).is_some_and(|(file, _)| is_history_name(file))
}

/// Errors unless `dir` (an `--out`'s `history/`) is missing, or a real folder (not a
/// symlink) holding only history files of this kind (a previous run's or merge's) and our
/// temporaries: a merge replaces it whole, and a run overwrites its files, so anything
/// else in it — a user's file, a subfolder, a link — would be lost or written through.
pub fn check_history_dir(arg: &str, dir: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("{arg}: {}: {e}", dir.display()),
    };
    refuse_symlink(arg, dir)?;
    if !meta.is_dir() {
        bail!("{arg}: {} exists and is not a folder", dir.display());
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("{arg}: listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{arg}: listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || !(is_history_name(&name) || is_our_temporary(&name)) {
            bail!(
                "{arg}: {} is not a history file reproduce wrote (`<experiment>_seed<k>.json`), and {} is \
                 replaced by reproduce; refusing rather than deleting or overwriting it: move it away or give \
                 another --out",
                entry.path().display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Makes `dir` (and its parents) if missing and checks that files can be created in it;
/// errors name the option `arg` and the path.
pub fn writable_dir(arg: &str, dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => bail!("{arg} {}: exists and is not a folder", dir.display()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .with_context(|| format!("{arg} {}: cannot create the folder", dir.display()))?,
        Err(e) => bail!("{arg} {}: {e}", dir.display()),
    }
    // `create_new`: never follows or truncates something already there.
    let probe = dir.join(format!(".kiln-write-probe-{}", std::process::id()));
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("{arg} {}: cannot write in this folder", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Errors if `path` is a symlink, or exists and is not a regular file (a folder or FIFO
/// where a file goes).
fn replaceable_file(arg: &str, path: &Path) -> anyhow::Result<()> {
    refuse_symlink(arg, path)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => {
            bail!("{arg}: {} exists and is not a regular file; it cannot be replaced", path.display())
        }
        _ => Ok(()),
    }
}

/// Every output of a run into `out` (and `tensorboard`) for `selected`: outside any saved
/// model directory, folders creatable and writable, `history/` ours, files replaceable
/// and no symlinks.
pub fn check(out: &Path, tensorboard: Option<&Path>, selected: &[&Experiment]) -> anyhow::Result<()> {
    refuse_in_model_dir("--out", out, true)?;
    if let Some(board) = tensorboard {
        refuse_in_model_dir("--tensorboard", board, true)?;
    }
    // Every refusal before anything is created: a refused run leaves no trace, and a
    // symlinked history/ does not even get a write probe.
    if std::fs::metadata(out).is_ok_and(|m| !m.is_dir()) {
        bail!("--out {}: exists and is not a folder", out.display());
    }
    check_history_dir("--out", &out.join("history"))?;
    for name in ["REPORT.md", shard::MANIFEST] {
        replaceable_file("--out", &out.join(name))?;
    }
    for fig in figures::FIGURES {
        for ext in ["png", "svg"] {
            replaceable_file("--out", &out.join(format!("{}.{ext}", fig.name)))?;
        }
    }
    writable_dir("--out", out)?;
    writable_dir("--out", &out.join("history"))?;
    if let Some(board) = tensorboard {
        writable_dir("--tensorboard", board)?;
        for exp in selected {
            let dir = board.join(exp.name);
            if dir.exists() && !dir.is_dir() {
                bail!("--tensorboard: {} exists and is not a folder", dir.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // --- round 3: outputs that are not ours (issue 23 #1, #2, #10) ---
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use super::*;

    /// A fresh empty folder under the system temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-outputs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_history_folder_holding_a_users_files_or_a_link_is_refused_naming_it() {
        let d = scratch("hist");
        let h = d.join("history");
        check_history_dir("--out", &h).expect("a missing history/ is made");
        std::fs::create_dir_all(&h).unwrap();
        for ours in [
            "mnist_logreg_seed0.json",
            "imdb_original_seed12.json",
            ".mnist_logreg_seed0.json.tmp77-0",
            ".kiln-write-probe-5",
        ] {
            std::fs::write(h.join(ours), "{}").unwrap();
        }
        check_history_dir("--out", &h).expect("a previous run's histories may be replaced");
        for foreign in
            ["notes.md", "mnist_logreg_seed.json", "nope_seed0.json", "mnist_logreg_seed0.json.bak", ".precious"]
        {
            std::fs::write(h.join(foreign), "mine").unwrap();
            let err = check_history_dir("--out", &h).unwrap_err().to_string();
            assert!(err.contains(&h.join(foreign).display().to_string()) && err.contains("refusing"), "{err}");
            std::fs::remove_file(h.join(foreign)).unwrap();
        }
        std::fs::create_dir(h.join("imdb_l2_seed1.json")).unwrap();
        assert!(check_history_dir("--out", &h).unwrap_err().to_string().contains("imdb_l2_seed1.json"));
        std::fs::remove_dir(h.join("imdb_l2_seed1.json")).unwrap();
        symlink(d.join("elsewhere.json"), h.join("mnist_logreg_seed1.json")).unwrap();
        assert!(check_history_dir("--out", &h).unwrap_err().to_string().contains("mnist_logreg_seed1.json"));

        // history/ itself a link to the user's folder: refused, and nothing lands there.
        let precious = d.join("precious");
        std::fs::create_dir_all(&precious).unwrap();
        std::fs::write(precious.join("mine.txt"), "mine").unwrap();
        std::fs::remove_dir_all(&h).unwrap();
        symlink(&precious, &h).unwrap();
        let err = check(&d, None, &[]).unwrap_err().to_string();
        assert!(err.contains("is a symlink") && err.contains(&h.display().to_string()), "{err}");
        let left: Vec<_> = std::fs::read_dir(&precious).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["mine.txt"], "nothing written into the link's target");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn symlinked_output_files_are_refused_and_never_written_through() {
        let d = scratch("links");
        let notes = d.join("notes.md");
        std::fs::write(&notes, "my notes").unwrap();
        let out = d.join("out");
        for name in ["REPORT.md", "manifest.json", "logreg_val_loss.svg", "dropout_mask.png"] {
            std::fs::create_dir_all(&out).unwrap();
            symlink(&notes, out.join(name)).unwrap();
            let err = check(&out, None, &[]).unwrap_err().to_string();
            assert!(err.contains(&out.join(name).display().to_string()) && err.contains("symlink"), "{name}: {err}");
            std::fs::remove_file(out.join(name)).unwrap();
        }
        check(&out, None, &[]).expect("no links, no refusal");
        symlink(&notes, out.join("REPORT.md")).unwrap();
        assert!(write_file(&out.join("REPORT.md"), b"report").is_err());
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn outputs_in_or_under_a_saved_model_folder_are_refused_naming_both() {
        let d = scratch("model");
        let mm = d.join("mm");
        std::fs::create_dir_all(&mm).unwrap();
        for f in ["model.safetensors", "metadata.json"] {
            std::fs::write(mm.join(f), "x").unwrap();
        }
        let err = check(&mm, None, &[]).unwrap_err().to_string();
        assert!(err.contains("--out") && err.contains("is the saved kiln model directory"), "{err}");
        let err = check(&mm.join("sub/deeper"), None, &[]).unwrap_err().to_string();
        assert!(err.contains("is inside the saved kiln model directory") && err.contains("mm"), "{err}");
        assert!(!mm.join("sub").exists(), "refused before creating anything");
        let err = check(&d.join("out"), Some(&mm.join("tb")), &[]).unwrap_err().to_string();
        assert!(err.contains("--tensorboard") && err.contains("inside the saved kiln model"), "{err}");
        let _ = std::fs::remove_dir_all(d);
    }
}
