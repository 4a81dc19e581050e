//! Writes the subsets embedded in `kiln-data` into a folder, once, so the path-based
//! readers (and their checks) read them like any other copy.

use std::path::Path;

use kiln_fs::FileError;

/// Makes `dir` hold every bundled file: a missing file, or one whose length differs from
/// the embedded copy (truncated, replaced), is written atomically; a complete copy is
/// left alone (two processes doing this at once both write the same bytes).
pub(crate) fn extract(dir: &Path) -> Result<(), FileError> {
    for file in kiln_data::FILES {
        let path = dir.join(file.path);
        let complete = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == file.bytes.len() as u64);
        if complete {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FileError::new(parent, e))?;
        }
        kiln_fs::write_atomic(&path, file.bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_writes_every_file_and_repairs_a_truncated_one() {
        let dir = std::env::temp_dir().join(format!("kiln-bundled-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        extract(&dir).unwrap();
        for f in kiln_data::FILES {
            assert_eq!(std::fs::read(dir.join(f.path)).unwrap(), f.bytes, "{}", f.path);
        }
        let labels = dir.join("mnist-10k/train-labels-idx1-ubyte.gz");
        std::fs::write(&labels, b"cut").unwrap();
        extract(&dir).unwrap();
        assert_eq!(std::fs::read(&labels).unwrap(), kiln_data::file("mnist-10k/train-labels-idx1-ubyte.gz").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
