//! Output paths that cannot destroy an input: every xtask command that writes a file
//! checks it here first, so `--out m/model.safetensors` or `--json m/config.json` is
//! refused instead of overwriting the model it reads.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The files whose presence marks a kiln model directory (`Sequential::save`).
const MODEL_MARKERS: [&str; 2] = ["model.safetensors", "metadata.json"];

/// Where a write to `path` lands: symlinks followed (as `kiln_fs::write_atomic` does) and
/// the parent made absolute, so `./m/../m/x` and a link into `m` both resolve into `m`.
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    match path.file_name() {
        Some(name) => base.join(name),
        None => base,
    }
}

/// Whether `dir` holds a saved kiln model.
fn is_model_dir(dir: &Path) -> bool {
    MODEL_MARKERS.iter().all(|f| dir.join(f).is_file())
}

/// Refuses `out` (named by `flag` in the error) when it is one of `inputs`, lies inside
/// one of `model_dirs` (or is one), or lies in any saved kiln model directory.
pub fn check_output(flag: &str, out: &Path, inputs: &[&Path], model_dirs: &[&Path]) -> anyhow::Result<()> {
    let target = resolve(out);
    for dir in model_dirs {
        let dir_real = resolve(dir);
        if target.starts_with(&dir_real) {
            bail!(
                "{flag} {} is inside the model directory {}: writing it would destroy the model",
                out.display(),
                dir.display()
            );
        }
    }
    if let Some(parent) = target.parent().filter(|p| is_model_dir(p)) {
        bail!(
            "{flag} {} is inside the kiln model directory {}: writing it would destroy that model",
            out.display(),
            parent.display()
        );
    }
    for input in inputs {
        if resolve(input) == target {
            bail!("{flag} {} is the input {}: refusing to overwrite it", out.display(), input.display());
        }
    }
    Ok(())
}

/// Refuses a model directory `out` (replaced whole by a save) that holds, or is, one of
/// `inputs`: the save would delete the file it was made from.
pub fn check_output_dir(flag: &str, out: &Path, inputs: &[&Path]) -> anyhow::Result<()> {
    let target = resolve(out);
    for input in inputs {
        let input_real = resolve(input);
        if input_real.starts_with(&target) {
            bail!(
                "{flag} {} holds the input {}: it is replaced whole, so the input would be deleted",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}
