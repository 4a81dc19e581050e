//! Writes the subsets embedded in `kiln-data` into a folder only this user can change,
//! so the path-based readers (and their checks) read them like any other copy.
//!
//! A copy already there is trusted only when its content is the embedded file's (SHA-256),
//! never for its length: anything else is rewritten atomically. Without a writable cache
//! the files go to a new private folder of the temp directory (`0700`, a name no one can
//! guess, created by this process), never to a fixed path another user could prepare.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use kiln_fs::FileError;
use sha2::{Digest, Sha256};

/// SHA-256 of each file of [`kiln_data::FILES`], computed once from the embedded bytes.
fn embedded_digests() -> &'static [[u8; 32]] {
    static DIGESTS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    DIGESTS.get_or_init(|| kiln_data::FILES.iter().map(|f| Sha256::digest(f.bytes).into()).collect())
}

/// Whether `path` is a regular file (not a symlink) whose content has SHA-256 `digest`
/// and length `len`.
fn holds(path: &Path, len: usize, digest: &[u8; 32]) -> bool {
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file() && m.len() == len as u64);
    if !regular {
        return false;
    }
    let Ok(file) = std::fs::File::open(path) else { return false };
    let mut hasher = Sha256::new();
    std::io::copy(&mut file.take(len as u64 + 1), &mut hasher).is_ok() && hasher.finalize()[..] == digest[..]
}

/// Makes `dir` hold every bundled file: a missing file, or one whose content differs from
/// the embedded copy (truncated, replaced, even at the same length), is written
/// atomically; a verified copy is left alone (two processes doing this at once both write
/// the same bytes).
pub(crate) fn extract(dir: &Path) -> Result<(), FileError> {
    for (file, digest) in kiln_data::FILES.iter().zip(embedded_digests()) {
        let path = dir.join(file.path);
        if holds(&path, file.bytes.len(), digest) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FileError::new(parent, e))?;
        }
        kiln_fs::write_atomic(&path, file.bytes)?;
        if !holds(&path, file.bytes.len(), digest) {
            return Err(FileError::new(&path, "does not hold the bundled content after it was written"));
        }
    }
    Ok(())
}

/// A new folder in `parent`, created by this call with mode `0700` under a random name
/// (so no other user can have prepared it, or enter it).
pub(crate) fn private_dir(parent: &Path, prefix: &str) -> Result<PathBuf, FileError> {
    let mut last = None;
    for _ in 0..8 {
        let dir = parent.join(format!("{prefix}-{}", random_name()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(FileError::new(&dir, e)),
            Err(e) => return Err(FileError::new(&dir, e)),
        }
    }
    Err(last.unwrap_or_else(|| FileError::new(parent, "no private folder could be created")))
}

/// 128 bits another user cannot predict: std's `RandomState` is keyed from the operating
/// system's random source (no extra dependency for it).
fn random_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.finish()
    };
    format!("{:016x}{:016x}", word(1), word(2))
}

/// The folder holding verified copies of the bundled files: `cache/name` when it can be
/// written (or already holds them), else a private folder in `temp`, made once per process.
/// When neither works, the reasons come with a path that holds nothing unverified.
pub(crate) fn locate(cache: Option<&Path>, temp: &Path, name: &str) -> (PathBuf, Vec<String>) {
    let mut failures = Vec::new();
    if let Some(cache) = cache {
        let dir = cache.join(name);
        match extract(&dir) {
            Ok(()) => return (dir, failures),
            Err(e) => failures.push(e.to_string()),
        }
    }
    // One private folder per process and temp directory: later loaders reuse (and
    // re-verify) it instead of extracting again.
    static PRIVATE: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
    let mut made = PRIVATE.lock().unwrap_or_else(|e| e.into_inner());
    let known = made.iter().find(|(t, _)| t == temp).map(|(_, d)| d.clone());
    let dir = match known {
        Some(dir) => dir,
        None => match private_dir(temp, &format!("kiln-{name}")) {
            Ok(dir) => {
                made.push((temp.to_path_buf(), dir.clone()));
                dir
            }
            Err(e) => {
                failures.push(e.to_string());
                return (temp.join(format!("kiln-{name}-{}", random_name())), failures);
            }
        },
    };
    match extract(&dir) {
        Ok(()) => (dir, Vec::new()),
        Err(e) => {
            failures.push(e.to_string());
            (dir, failures)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-bundled-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn extraction_writes_every_file_and_repairs_a_truncated_one() {
        let dir = scratch("extract");
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

    // --- round 3: bundled data poisoning ---

    /// Same-length labels planted in the cache are replaced by the real ones (issue 23,
    /// finding 4: they used to be trusted for their length), and the digits read are real.
    #[test]
    fn a_same_length_planted_file_is_replaced_not_trusted() {
        let dir = scratch("planted");
        extract(&dir).unwrap();
        let real = kiln_data::file("mnist-10k/train-labels-idx1-ubyte.gz").unwrap();
        let labels = dir.join("mnist-10k/train-labels-idx1-ubyte.gz");
        let mut planted = real.to_vec();
        let last = planted.len() - 9;
        planted[last] ^= 0xff;
        std::fs::write(&labels, &planted).unwrap();
        assert_eq!(std::fs::metadata(&labels).unwrap().len(), real.len() as u64);
        extract(&dir).unwrap();
        assert_eq!(std::fs::read(&labels).unwrap(), real);
        let read = crate::read_idx_dir(&dir.join("mnist-10k"), crate::Split::Train).unwrap();
        let want = crate::parse_idx(&crate::decode_maybe_gzip(real.to_vec(), &labels).unwrap(), &labels).unwrap();
        assert_eq!(read.labels, want.data);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Without a cache, the files go to a new `0700` folder, not to the predictable
    /// `kiln-bundled-VERSION` folder another user prepared with poisoned labels.
    #[test]
    fn without_a_cache_a_private_folder_is_used_never_a_prepared_one() {
        let temp = scratch("temp");
        let name = "bundled-test";
        let prepared = temp.join(format!("kiln-{name}"));
        extract(&prepared).unwrap();
        let labels = "mnist-10k/train-labels-idx1-ubyte.gz";
        std::fs::write(prepared.join(labels), vec![0u8; kiln_data::file(labels).unwrap().len()]).unwrap();

        let (dir, failures) = locate(None, &temp, name);
        assert!(failures.is_empty(), "{failures:?}");
        assert_ne!(dir, prepared);
        assert!(dir.starts_with(&temp) && dir.file_name().unwrap().len() > format!("kiln-{name}-").len() + 30);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        }
        for f in kiln_data::FILES {
            assert_eq!(std::fs::read(dir.join(f.path)).unwrap(), f.bytes, "{}", f.path);
        }
        // The same process reuses its folder.
        assert_eq!(locate(None, &temp, name).0, dir);

        // An unwritable cache falls back to the private folder too.
        let not_a_dir = temp.join("cache-is-a-file");
        std::fs::write(&not_a_dir, b"").unwrap();
        let (dir2, failures) = locate(Some(&not_a_dir), &temp, name);
        assert_eq!((dir2, failures.len()), (dir, 0));
        std::fs::remove_dir_all(&temp).unwrap();
    }
}
