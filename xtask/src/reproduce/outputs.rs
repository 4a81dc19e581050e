//! Checks, before any training, that every place `reproduce` will write can be written:
//! a bad `--out` or `--tensorboard` fails in a second, not after an hour of training.

use std::path::Path;

use anyhow::{Context, bail};

use super::experiments::Experiment;
use super::{figures, shard};

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

/// Errors if `path` exists and is not a regular file (a folder or FIFO where a file goes).
fn replaceable_file(arg: &str, path: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            bail!("{arg}: {} exists and is not a regular file; it cannot be replaced", path.display())
        }
        _ => Ok(()),
    }
}

/// Every output of a run into `out` (and `tensorboard`) for `selected`: folders creatable
/// and writable, files replaceable.
pub fn check(out: &Path, tensorboard: Option<&Path>, selected: &[&Experiment]) -> anyhow::Result<()> {
    writable_dir("--out", out)?;
    writable_dir("--out", &out.join("history"))?;
    for name in ["REPORT.md", shard::MANIFEST] {
        replaceable_file("--out", &out.join(name))?;
    }
    for fig in figures::FIGURES {
        for ext in ["png", "svg"] {
            replaceable_file("--out", &out.join(format!("{}.{ext}", fig.name)))?;
        }
    }
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
