//! Helpers shared by the integration tests: temporary directories and small archives.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_datasets::bundled_dir;

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory named after the test.
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("kiln-datasets-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// `self/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bundled MNIST directory.
pub fn mnist_dir() -> PathBuf {
    bundled_dir().join("mnist-10k")
}

/// The bundled IMDB archive.
pub fn imdb_archive() -> PathBuf {
    bundled_dir().join("imdb-5k").join("aclImdb-5k.tar.gz")
}

/// Writes a `.tar.gz` holding `members` (path, bytes).
pub fn write_tar_gz(path: &Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

/// Big-endian IDX bytes with the given magic, dimensions and data.
pub fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v.extend_from_slice(data);
    v
}

/// Gzips `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Asserts that `err`'s message names `path`'s file name and contains `problem`.
pub fn assert_names(err: &kiln_datasets::Error, path: &Path, problem: &str) {
    let msg = err.to_string();
    let base = path.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(base.as_ref()), "error does not name {base}: {msg}");
    assert!(msg.contains(problem), "error does not say {problem:?}: {msg}");
}
