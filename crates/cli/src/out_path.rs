//! Output paths that cannot destroy an input: every xtask command that writes a file
//! checks it here first, so `--out m/model.safetensors` or `--json m/config.json` is
//! refused instead of overwriting the model it reads.

use std::path::{Component, Path, PathBuf};

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

/// Where `path` lands however much of it is missing: the nearest existing ancestor
/// canonicalized (symlinks and `..` resolved), the missing rest appended lexically (it
/// cannot hold a symlink, as it does not exist yet).
pub fn resolve_deep(path: &Path) -> PathBuf {
    let mut base = match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    };
    let mut rest = Vec::new();
    let mut real = loop {
        if let Ok(real) = std::fs::canonicalize(&base) {
            break real;
        }
        let Some(last) = base.components().next_back().map(|c| c.as_os_str().to_os_string()) else {
            break base;
        };
        rest.push(last);
        match base.parent() {
            Some(parent) => base = parent.to_path_buf(),
            None => break PathBuf::new(),
        }
    };
    for part in rest.iter().rev() {
        match Path::new(part).components().next() {
            Some(Component::ParentDir) => {
                real.pop();
            }
            Some(Component::Normal(name)) => real.push(name),
            _ => {}
        }
    }
    real
}

/// Whether `dir` holds a saved kiln model.
pub fn is_model_dir(dir: &Path) -> bool {
    MODEL_MARKERS.iter().all(|f| dir.join(f).is_file())
}

/// Refuses `out` (named by `flag`) when a folder above it — or `out` itself, with
/// `include_self` — is a saved kiln model directory: anything written there makes the
/// model unloadable (and a later save of it fails on the stray entries).
pub fn refuse_in_model_dir(flag: &str, out: &Path, include_self: bool) -> anyhow::Result<()> {
    let target = resolve_deep(out);
    let skip = usize::from(!include_self);
    if let Some(model) = target.ancestors().skip(skip).find(|d| is_model_dir(d)) {
        bail!(
            "{flag} {} {} the saved kiln model directory {}: writing there would break that model; \
             give a path outside it",
            out.display(),
            if model == target { "is" } else { "is inside" },
            model.display()
        );
    }
    Ok(())
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
    refuse_in_model_dir(flag, out, false)?;
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

#[cfg(test)]
mod tests {
    // --- round 3: the nearest existing ancestor decides (issue 23 #10, #11) ---
    use super::*;

    #[test]
    fn resolve_deep_follows_links_and_dots_of_the_existing_part() {
        let d = std::env::temp_dir().join(format!("kiln-resolve-deep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("real/a")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let real = std::fs::canonicalize(d.join("real")).unwrap();
        assert_eq!(resolve_deep(&d.join("link/a/new/x")), real.join("a/new/x"));
        assert_eq!(resolve_deep(&d.join("link/a/../new")), real.join("new"));
        assert_eq!(resolve_deep(&d.join("link/none/../b")), real.join("b"));
        assert_eq!(resolve_deep(&d.join("link")), real);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn check_output_refuses_any_ancestor_that_is_a_saved_model() {
        let d = std::env::temp_dir().join(format!("kiln-out-ancestor-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("mm/sub")).unwrap();
        for f in MODEL_MARKERS {
            std::fs::write(d.join("mm").join(f), "x").unwrap();
        }
        let err = check_output("--json", &d.join("mm/sub/deeper/p.json"), &[], &[]).unwrap_err().to_string();
        assert!(err.contains("inside the saved kiln model directory") && err.contains("mm"), "{err}");
        check_output("--json", &d.join("p.json"), &[], &[]).unwrap();
        let _ = std::fs::remove_dir_all(d);
    }
}
