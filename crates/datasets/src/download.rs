//! Verified downloads into a cache directory.
//!
//! A file is fetched to a temporary `NAME.part-PID-N` in the destination directory, its size and
//! SHA-256 are checked while it streams, and only a verified file is renamed to `NAME`. A partial,
//! interrupted or mismatching download is deleted, never used. Every file of the catalogue
//! ([`crate::catalog`]) has a published SHA-256 (TFDS checksum files), so no MD5 is needed.
//!
//! The HTTP client (ureq, rustls) is behind the default `download` feature; without it
//! [`fetch`] always fails with a message saying so, and the cache is still read.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// One file to download: where from (mirrors, tried in order), what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name in the cache directory.
    pub file_name: String,
    /// Full URLs, tried in order until one yields a verified file.
    pub urls: Vec<String>,
    /// Expected SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    /// Expected size in bytes, when published.
    pub size: Option<u64>,
}

/// Network settings for [`fetch`].
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOptions {
    /// Time allowed to resolve and connect to a host (default 5 s).
    pub connect_timeout: Duration,
    /// Longest silence allowed while receiving (default 30 s).
    pub read_timeout: Duration,
    /// Print what is being downloaded to stderr.
    pub verbose: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), read_timeout: Duration::from_secs(30), verbose: true }
    }
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = kiln_fs::open_regular(path).map_err(Error::refused)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cached copy of `file` in `dir`, if present and verified; `Err` explains a bad copy.
///
/// Returns `Ok(None)` when there is no copy, `Err(Error::Verification)` when there is one
/// whose checksum does not match (it is left alone, and not used).
pub fn cached(file: &RemoteFile, dir: &Path) -> Result<Option<PathBuf>> {
    let path = dir.join(&file.file_name);
    if !path.is_file() {
        return Ok(None);
    }
    let actual = sha256_file(&path)?;
    if actual != file.sha256 {
        return Err(Error::Verification {
            url: path.display().to_string(),
            problem: format!("cached file has sha256 {actual}, expected {}", file.sha256),
        });
    }
    Ok(Some(path))
}

/// Returns the verified file in `dir`, downloading it first when it is not cached.
///
/// Tries each URL of `file` in order; the error lists every attempt.
pub fn fetch(file: &RemoteFile, dir: &Path, opts: &FetchOptions) -> Result<PathBuf> {
    let mut problems = Vec::new();
    match cached(file, dir) {
        Ok(Some(p)) => return Ok(p),
        Ok(None) => {}
        Err(e) => problems.push(e.to_string()),
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for url in &file.urls {
        match fetch_one(url, file, dir, opts) {
            Ok(p) => return Ok(p),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if file.urls.is_empty() {
        problems.push("no URL known".into());
    }
    Err(Error::Unavailable { what: file.file_name.clone(), attempts: problems })
}

/// A temporary file that deletes itself unless [`Partial::persist`] renamed it.
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Distinguishes concurrent temporary files of one process.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Downloads one URL into `dir`, verifying before the final rename.
fn fetch_one(url: &str, file: &RemoteFile, dir: &Path, opts: &FetchOptions) -> Result<PathBuf> {
    let dest = dir.join(&file.file_name);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut part =
        Partial { path: dir.join(format!("{}.part-{}-{n}", file.file_name, std::process::id())), keep: false };
    if opts.verbose {
        eprintln!("kiln-datasets: downloading {url} -> {}", dest.display());
    }
    let mut body = open_url(url, opts)?;
    let mut out = fs::File::create(&part.path).map_err(|e| Error::io(&part.path, e))?;
    let (mut h, mut len) = (Sha256::new(), 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = body
            .read(&mut buf)
            .map_err(|e| Error::Download { url: url.into(), problem: format!("interrupted after {len} bytes: {e}") })?;
        if k == 0 {
            break;
        }
        len += k as u64;
        if let Some(size) = file.size
            && len > size
        {
            return Err(Error::Verification {
                url: url.into(),
                problem: format!("more than the expected {size} bytes"),
            });
        }
        h.update(&buf[..k]);
        out.write_all(&buf[..k]).map_err(|e| Error::io(&part.path, e))?;
    }
    out.sync_all().map_err(|e| Error::io(&part.path, e))?;
    drop(out);
    if let Some(size) = file.size
        && len != size
    {
        return Err(Error::Verification { url: url.into(), problem: format!("got {len} bytes, expected {size}") });
    }
    let actual = hex(&h.finalize());
    if actual != file.sha256 {
        return Err(Error::Verification {
            url: url.into(),
            problem: format!("sha256 {actual} does not match the published {}", file.sha256),
        });
    }
    fs::rename(&part.path, &dest).map_err(|e| Error::io(&dest, e))?;
    part.keep = true;
    Ok(dest)
}

/// Opens `url` for reading with short connect timeouts.
#[cfg(feature = "download")]
fn open_url(url: &str, opts: &FetchOptions) -> Result<Box<dyn Read>> {
    let config = ureq::Agent::config_builder()
        .timeout_resolve(Some(opts.connect_timeout))
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .user_agent(concat!("kiln-datasets/", env!("CARGO_PKG_VERSION")))
        .build();
    let resp = ureq::Agent::new_with_config(config)
        .get(url)
        .call()
        .map_err(|e| Error::Download { url: url.into(), problem: e.to_string() })?;
    Ok(Box::new(resp.into_body().into_reader()))
}

/// Without the `download` feature nothing is fetched.
#[cfg(not(feature = "download"))]
fn open_url(url: &str, _opts: &FetchOptions) -> Result<Box<dyn Read>> {
    Err(Error::Download { url: url.into(), problem: "kiln-datasets was built without the `download` feature".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_sha256_matches_a_known_vector() {
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
        let dir = std::env::temp_dir().join(format!("kiln-sha-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("abc");
        fs::write(&p, b"abc").unwrap();
        // FIPS 180-2 test vector for "abc".
        assert_eq!(sha256_file(&p).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        fs::remove_dir_all(&dir).unwrap();
    }
}
