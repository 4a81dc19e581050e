//! One entry point per data set, with an explicit policy for where the data comes from.
//!
//! | [`Source`] | tries, in order | on failure |
//! |---|---|---|
//! | `Auto` | verified cache → system copy (Fashion-MNIST) → verified download → bundled subset | error listing every attempt |
//! | `Full` | verified cache → system copy → verified download | error listing every attempt |
//! | `Bundled` | the subset vendored in `data/` | error when there is none for that split |
//! | `Path(p)` | `p` (IDX directory, aclImdb archive or directory) | the reader's error |
//!
//! Every result carries a [`Provenance`]: which data was used, from where, why, and how many rows.
//! With [`Loader::verbose`] (the default) its message is printed to stderr.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::catalog::{Dataset, remote_files};
use crate::download::{FetchOptions, cached, fetch};
use crate::idx::{ImageSet, read_idx_dir, read_idx_pair};
use crate::imdb::{Reviews, read_aclimdb};
use crate::keras_datasets::{ImdbArgs, Sequences, imdb_load_data, mnist_load_data};
use crate::{Error, Result, Split};

/// Where to take a data set from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Cache, then download, then the bundled subset (saying which and why).
    Auto,
    /// The bundled real subset only (offline, small).
    Bundled,
    /// The full data set (cache or download); fails clearly when it cannot be had.
    Full,
    /// A local directory or archive.
    Path(PathBuf),
}

/// Where the data actually came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A verified file already in the cache directory.
    Cache,
    /// Downloaded (and verified) just now.
    Download,
    /// A system-wide copy, e.g. Debian's `/usr/share/datasets/fashion-mnist/`.
    System,
    /// The subset vendored with the project.
    Bundled,
    /// A path the caller gave.
    Path,
}

impl Origin {
    /// Lower-case name: `cache`, `download`, `system`, `bundled`, `path`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Cache => "cache",
            Origin::Download => "download",
            Origin::System => "system",
            Origin::Bundled => "bundled",
            Origin::Path => "path",
        }
    }
}

/// What data was used and why: for logs and for `cargo xtask reproduce` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// The data set.
    pub dataset: Dataset,
    /// The split.
    pub split: Split,
    /// Where it came from.
    pub origin: Origin,
    /// The directory or file read.
    pub location: PathBuf,
    /// True when this is a subset, not the full split.
    pub subset: bool,
    /// Rows loaded.
    pub rows: usize,
    /// Rows per label (`[neg, pos]` for IMDB, digits 0..=9 for MNIST).
    pub label_counts: Vec<usize>,
    /// Review files decoded lossily because they were not valid UTF-8 (IMDB only).
    pub lossy_decoded: usize,
    /// One human sentence: what was used and, for a fallback, why.
    pub message: String,
}

impl Provenance {
    /// The provenance as a JSON object (for run reports).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "dataset": self.dataset.name(),
            "split": self.split.name(),
            "origin": self.origin.name(),
            "location": self.location.display().to_string(),
            "subset": self.subset,
            "rows": self.rows,
            "label_counts": self.label_counts,
            "lossy_decoded": self.lossy_decoded,
            "message": self.message,
        })
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Data plus where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    /// The data.
    pub data: T,
    /// Where it came from and why.
    pub provenance: Provenance,
}

/// The directory holding the bundled subsets (`mnist-10k/`, `imdb-5k/`):
/// `$KILN_BUNDLED_DIR` if set, else a folder in the download cache
/// (`data_dir()/bundled-VERSION`) that the copies embedded in the `kiln-data` crate are
/// written into on first use, so bundled data works wherever the binary runs. Copies found
/// there are checked against the embedded content (SHA-256) and rewritten when they differ.
/// When no cache folder can be written (no `HOME`, a read-only one), the files go to a new
/// private folder of the temp directory (`0700`, a random name), never a fixed shared path.
pub fn bundled_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_BUNDLED_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let name = format!("bundled-{}", env!("CARGO_PKG_VERSION"));
    let (dir, failures) = crate::bundled::locate(user_cache_dir().as_deref(), &std::env::temp_dir(), &name);
    if !failures.is_empty() {
        eprintln!("warning: kiln-datasets could not write the bundled data anywhere: {}", failures.join("; "));
    }
    dir
}

/// The bundled hourly Beijing weather series (`beijing-pm25/hourly_beijing_pm.csv.gz`:
/// 43,824 hours of 2010–2014, UCI's "Beijing PM2.5 Data", CC BY 4.0), in [`bundled_dir`];
/// read it with [`read_csv`](crate::read_csv).
pub fn beijing_weather_csv() -> PathBuf {
    bundled_dir().join("beijing-pm25/hourly_beijing_pm.csv.gz")
}

/// The cache folder when it is this user's (`$KILN_DATA_DIR`, or the platform cache), not
/// the shared temp directory [`data_dir`] falls back to.
fn user_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KILN_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    dirs::cache_dir().map(|d| d.join("kiln"))
}

/// The download cache: `$KILN_DATA_DIR` if set, else the platform cache directory + `kiln`
/// (`$XDG_CACHE_HOME/kiln` or `~/.cache/kiln` on Linux), else `$TMPDIR/kiln`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("kiln")
}

/// `KILN_OFFLINE` read as a flag; unknown values mean offline (no network is the safe side).
fn offline_from_env() -> bool {
    let Ok(v) = std::env::var("KILN_OFFLINE") else { return false };
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => true,
        "" | "0" | "false" | "no" => false,
        _ => {
            eprintln!("warning: KILN_OFFLINE={v:?} is not 1/0 (true/false, yes/no); staying offline");
            true
        }
    }
}

/// `KILN_DATA_MIRROR` when it is an `http(s)://` URL; anything else is warned about and ignored.
fn mirror_from_env() -> Option<String> {
    let m = std::env::var("KILN_DATA_MIRROR").ok().filter(|m| !m.is_empty())?;
    if m.starts_with("http://") || m.starts_with("https://") {
        Some(m)
    } else {
        eprintln!("warning: ignoring KILN_DATA_MIRROR={m:?}: not an http:// or https:// URL");
        None
    }
}

/// Debian's `dataset-fashion-mnist` package installs here.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Loading policy and locations; [`Loader::from_env`] reads the environment once.
#[derive(Debug, Clone, PartialEq)]
pub struct Loader {
    /// Download cache; data set `d` lives in `cache_dir/d.name()`.
    pub cache_dir: PathBuf,
    /// Folder with the vendored subsets (`mnist-10k/`, `imdb-5k/`).
    pub bundled_dir: PathBuf,
    /// Base URL replacing the canonical URLs: files are fetched from `{mirror}/{dataset}/{file}`.
    pub mirror: Option<String>,
    /// Whether `Auto` and `Full` may download (false with `KILN_OFFLINE=1` or without the feature).
    pub download: bool,
    /// Whether to look at system-wide copies (Debian's Fashion-MNIST).
    pub system_dirs: bool,
    /// Network timeouts.
    pub fetch: FetchOptions,
    /// Print the provenance message (and download progress) to stderr.
    pub verbose: bool,
}

impl Default for Loader {
    fn default() -> Self {
        Self::from_env()
    }
}

impl Loader {
    /// Settings from the environment: `KILN_DATA_DIR`, `KILN_BUNDLED_DIR`, `KILN_DATA_MIRROR`
    /// (an `http://` or `https://` base URL), `KILN_OFFLINE` (`1`/`true`/`yes` disables
    /// downloads, `0`/`false`/`no`/empty allows them).
    ///
    /// A value that means nothing is warned about on stderr and the safe reading is used:
    /// an unknown `KILN_OFFLINE` value is offline, a mirror that is not a URL is ignored.
    pub fn from_env() -> Self {
        Self {
            cache_dir: data_dir(),
            bundled_dir: bundled_dir(),
            mirror: mirror_from_env(),
            download: cfg!(feature = "download") && !offline_from_env(),
            system_dirs: true,
            fetch: FetchOptions::default(),
            verbose: true,
        }
    }

    /// MNIST digits of `split` (bundled: `mnist-10k`, train only).
    pub fn mnist(&self, source: &Source, split: Split) -> Result<Loaded<ImageSet>> {
        self.images(Dataset::Mnist, source, split)
    }

    /// Fashion-MNIST of `split` (also read from Debian's `/usr/share/datasets/fashion-mnist/`;
    /// nothing is bundled).
    pub fn fashion_mnist(&self, source: &Source, split: Split) -> Result<Loaded<ImageSet>> {
        self.images(Dataset::FashionMnist, source, split)
    }

    /// IMDB reviews of `split`, path-sorted then shuffled with `seed` (see [`Reviews::shuffled`]);
    /// bundled: `imdb-5k`, train only.
    pub fn imdb(&self, source: &Source, split: Split, seed: u64) -> Result<Loaded<Reviews>> {
        let mut loaded = self.load(Dataset::Imdb, source, split, &|files| read_aclimdb(&files[0], split), &|path| {
            read_aclimdb(path, split)
        })?;
        loaded.data = loaded.data.shuffled(seed);
        Ok(loaded)
    }

    /// MNIST as `keras.datasets.mnist.load_data()` gives it: Keras' `mnist.npz` (cache,
    /// `~/.keras/datasets`, or a verified download from Keras' bucket). Bundled: the same
    /// `mnist-10k` digits as [`mnist`](Loader::mnist). `Path`: an `.npz` or an IDX folder.
    pub fn keras_mnist(&self, source: &Source, split: Split) -> Result<Loaded<ImageSet>> {
        let read_path = |p: &Path| if p.is_dir() { read_idx_dir(p, split) } else { mnist_load_data(p, split) };
        self.load(Dataset::KerasMnist, source, split, &|files| mnist_load_data(&files[0], split), &read_path)
    }

    /// IMDB as `keras.datasets.imdb.load_data(**args)` gives it: Keras' `imdb.npz`, both
    /// splits. Bundled: `imdb-5k/imdb-5k.npz`, the 5,000 bundled reviews in Keras' integer
    /// form (train only; see `data/imdb-5k/README.md`). `Path`: an `.npz` in that layout.
    pub fn keras_imdb(&self, source: &Source, args: &ImdbArgs) -> Result<Loaded<KerasImdb>> {
        let read = |p: &Path| imdb_load_data(p, args).map(|(train, test)| KerasImdb { train, test });
        self.load(Dataset::KerasImdb, source, Split::Train, &|files| read(&files[0]), &read)
    }

    /// MNIST-family loading.
    fn images(&self, dataset: Dataset, source: &Source, split: Split) -> Result<Loaded<ImageSet>> {
        self.load(dataset, source, split, &|files| read_idx_pair(&files[0], &files[1]), &|dir| read_idx_dir(dir, split))
    }

    /// The vendored subset of `dataset`/`split`, if any: (path, description).
    fn bundled(&self, dataset: Dataset, split: Split) -> Option<(PathBuf, &'static str)> {
        match (dataset, split) {
            (Dataset::Mnist, Split::Train) => {
                Some((self.bundled_dir.join("mnist-10k"), "10,000 real MNIST training digits, not the full 60,000"))
            }
            (Dataset::Imdb, Split::Train) => Some((
                self.bundled_dir.join("imdb-5k").join("aclImdb-5k.tar.gz"),
                "5,000 real IMDB training reviews, not the full 25,000",
            )),
            (Dataset::KerasMnist, Split::Train) => Some((
                self.bundled_dir.join("mnist-10k"),
                "10,000 real MNIST training digits, not the full 60,000 of mnist.npz",
            )),
            (Dataset::KerasImdb, Split::Train) => Some((
                self.bundled_dir.join("imdb-5k").join("imdb-5k.npz"),
                "5,000 real IMDB training reviews in Keras' integer form, ranked on the subset, not the 25,000 of imdb.npz",
            )),
            _ => None,
        }
    }

    /// The policy of the module docs, shared by every data set.
    fn load<T: Counted>(
        &self,
        dataset: Dataset,
        source: &Source,
        split: Split,
        read_files: &dyn Fn(&[PathBuf]) -> Result<T>,
        read_path: &dyn Fn(&Path) -> Result<T>,
    ) -> Result<Loaded<T>> {
        let what = format!("{} {}", dataset.name(), split.name());
        let done = |data: T, origin: Origin, location: PathBuf, subset: bool, message: String| {
            let (rows, label_counts, lossy_decoded) = (data.rows(), data.counts(), data.lossy());
            let mut message = format!("{what}: {message} ({rows} rows)");
            if lossy_decoded > 0 {
                message.push_str(&format!("; {lossy_decoded} files were not valid UTF-8 and were decoded lossily"));
            }
            if self.verbose {
                eprintln!("kiln-datasets: {message}");
            }
            let provenance =
                Provenance { dataset, split, origin, location, subset, rows, label_counts, lossy_decoded, message };
            Ok(Loaded { data, provenance })
        };
        let bundled = || -> Result<(T, PathBuf, &'static str)> {
            let (path, about) = self.bundled(dataset, split).ok_or_else(|| Error::Unavailable {
                what: format!("{what} (bundled)"),
                attempts: vec!["only the mnist and imdb train splits are bundled".into()],
            })?;
            Ok((read_path(&path)?, path, about))
        };
        match source {
            Source::Path(p) => {
                let data = read_path(p)?;
                done(data, Origin::Path, p.clone(), false, format!("read from {}", p.display()))
            }
            Source::Bundled => {
                let (data, path, about) = bundled()?;
                done(data, Origin::Bundled, path.clone(), true, format!("bundled subset {} ({about})", path.display()))
            }
            Source::Full | Source::Auto => {
                let mut attempts = Vec::new();
                match self.full(dataset, split, read_files, read_path, &mut attempts) {
                    Some((data, origin, location)) => {
                        let how = match origin {
                            Origin::Cache => "full data set from the cache",
                            Origin::Download => "full data set, downloaded and verified",
                            _ => "full data set from the system copy",
                        };
                        return done(data, origin, location.clone(), false, format!("{how} at {}", location.display()));
                    }
                    None if *source == Source::Full => {
                        return Err(Error::Unavailable { what: format!("{what} (full)"), attempts });
                    }
                    None => {}
                }
                match bundled() {
                    Ok((data, path, about)) => {
                        let msg = format!(
                            "using the bundled subset {} ({about}) because the full data is not at hand: {}",
                            path.display(),
                            attempts.iter().map(|a| brief(a)).collect::<Vec<_>>().join("; ")
                        );
                        done(data, Origin::Bundled, path, true, msg)
                    }
                    Err(e) => {
                        attempts.push(e.to_string());
                        Err(Error::Unavailable { what, attempts })
                    }
                }
            }
        }
    }

    /// Cache → system → download; records why each step failed.
    fn full<T>(
        &self,
        dataset: Dataset,
        split: Split,
        read_files: &dyn Fn(&[PathBuf]) -> Result<T>,
        read_path: &dyn Fn(&Path) -> Result<T>,
        attempts: &mut Vec<String>,
    ) -> Option<(T, Origin, PathBuf)> {
        let dir = self.cache_dir.join(dataset.name());
        let files = remote_files(dataset, split, self.mirror.as_deref());
        let location = |paths: &[PathBuf]| if paths.len() == 1 { paths[0].clone() } else { dir.clone() };

        let mut hits = Vec::new();
        for f in &files {
            match cached(f, &dir) {
                Ok(Some(p)) => hits.push(p),
                Ok(None) => {
                    attempts.push(format!("no cached {} in {}", f.file_name, dir.display()));
                    break;
                }
                Err(e) => {
                    attempts.push(format!("ignored a bad cached copy: {e}"));
                    break;
                }
            }
        }
        if hits.len() == files.len() {
            match read_files(&hits) {
                Ok(data) => return Some((data, Origin::Cache, location(&hits))),
                Err(e) => attempts.push(format!("cached copy unreadable: {e}")),
            }
        }

        if let (true, Some(name)) = (self.system_dirs, dataset.keras_file()) {
            let keras_dir = keras_datasets_dir();
            match files.iter().find(|f| f.file_name == name).map(|f| cached(f, &keras_dir)) {
                Some(Ok(Some(p))) => match read_files(std::slice::from_ref(&p)) {
                    Ok(data) => return Some((data, Origin::System, p)),
                    Err(e) => attempts.push(format!("Keras' copy unreadable: {e}")),
                },
                Some(Ok(None)) => attempts.push(format!("no {name} in Keras' cache {}", keras_dir.display())),
                Some(Err(e)) => attempts.push(format!("ignored Keras' cached copy: {e}")),
                None => {}
            }
        }

        if self.system_dirs && dataset == Dataset::FashionMnist {
            let sys = Path::new(DEBIAN_FASHION_MNIST);
            if sys.is_dir() {
                match read_path(sys) {
                    Ok(data) => return Some((data, Origin::System, sys.to_path_buf())),
                    Err(e) => attempts.push(format!("system copy unusable: {e}")),
                }
            } else {
                attempts.push(format!("no {DEBIAN_FASHION_MNIST} (Debian package dataset-fashion-mnist)"));
            }
        }

        if !self.download {
            attempts.push(if cfg!(feature = "download") {
                "downloads are disabled (KILN_OFFLINE)".into()
            } else {
                "built without the `download` feature".into()
            });
            return None;
        }
        let opts = FetchOptions { verbose: self.verbose, ..self.fetch.clone() };
        let mut got = Vec::new();
        for f in &files {
            match fetch(f, &dir, &opts) {
                Ok(p) => got.push(p),
                Err(e) => {
                    attempts.push(format!("could not download: {e}"));
                    return None;
                }
            }
        }
        match read_files(&got) {
            Ok(data) => Some((data, Origin::Download, location(&got))),
            Err(e) => {
                attempts.push(format!("downloaded copy unreadable: {e}"));
                None
            }
        }
    }
}

/// Keras' dataset cache: `$KERAS_HOME/datasets`, else `~/.keras/datasets`.
pub fn keras_datasets_dir() -> PathBuf {
    let home = std::env::var_os("KERAS_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::home_dir().unwrap_or_else(std::env::temp_dir).join(".keras"));
    home.join("datasets")
}

/// Both splits of `imdb.load_data`, as loaded by [`Loader::keras_imdb`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KerasImdb {
    /// `(x_train, y_train)`.
    pub train: Sequences,
    /// `(x_test, y_test)`.
    pub test: Sequences,
}

impl Counted for KerasImdb {
    fn rows(&self) -> usize {
        self.train.x.len()
    }
    fn counts(&self) -> Vec<usize> {
        let pos = self.train.y.iter().filter(|&&y| y == 1).count();
        vec![self.train.y.len() - pos, pos]
    }
    fn lossy(&self) -> usize {
        0
    }
}

/// What a [`Provenance`] records about loaded data.
trait Counted {
    fn rows(&self) -> usize;
    fn counts(&self) -> Vec<usize>;
    fn lossy(&self) -> usize;
}

impl Counted for ImageSet {
    fn rows(&self) -> usize {
        self.len()
    }
    fn counts(&self) -> Vec<usize> {
        self.label_counts()
    }
    fn lossy(&self) -> usize {
        0
    }
}

impl Counted for Reviews {
    fn rows(&self) -> usize {
        self.len()
    }
    fn counts(&self) -> Vec<usize> {
        self.label_counts().to_vec()
    }
    fn lossy(&self) -> usize {
        self.lossy_decoded
    }
}

/// MNIST with [`Loader::from_env`]; see [`Loader::mnist`].
pub fn mnist(source: &Source, split: Split) -> Result<Loaded<ImageSet>> {
    Loader::from_env().mnist(source, split)
}

/// Fashion-MNIST with [`Loader::from_env`]; see [`Loader::fashion_mnist`].
pub fn fashion_mnist(source: &Source, split: Split) -> Result<Loaded<ImageSet>> {
    Loader::from_env().fashion_mnist(source, split)
}

/// IMDB with [`Loader::from_env`]; see [`Loader::imdb`].
pub fn imdb(source: &Source, split: Split, seed: u64) -> Result<Loaded<Reviews>> {
    Loader::from_env().imdb(source, split, seed)
}

/// One attempt, short enough for a report line: a failed download keeps only its last
/// cause (`could not download (Name or service not known)`), not the whole chain of URL,
/// client and resolver messages; other attempts are already one clause.
fn brief(attempt: &str) -> String {
    match attempt.strip_prefix("could not download: ") {
        Some(chain) => format!("could not download ({})", chain.rsplit(": ").next().unwrap_or(chain)),
        None => attempt.to_string(),
    }
}

#[cfg(test)]
mod brief_tests {
    #[test]
    fn a_failed_download_keeps_its_last_cause() {
        let chain = "could not download: mnist.npz is not available: https://example.invalid/mnist.npz: download \
                     failed: io: failed to lookup address information: Name or service not known";
        assert_eq!(super::brief(chain), "could not download (Name or service not known)");
        assert_eq!(super::brief("no cached mnist.npz in /c"), "no cached mnist.npz in /c");
    }
}
