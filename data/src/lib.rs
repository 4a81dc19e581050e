//! The real data subsets kiln bundles, embedded in the crate so that they travel with it:
//! to a crates.io dependency, a `cargo install`ed binary, or a binary copied elsewhere.
//!
//! | path | what |
//! |---|---|
//! | `mnist-10k/train-images-idx3-ubyte.gz` | the first 10,000 MNIST training images (IDX) |
//! | `mnist-10k/train-labels-idx1-ubyte.gz` | their labels |
//! | `imdb-5k/aclImdb-5k.tar.gz` | 5,000 aclImdb training reviews (2,500 per class) |
//! | `imdb-5k/imdb-5k.npz` | the same reviews in `keras.datasets.imdb`'s integer form |
//! | `beijing-pm25/hourly_beijing_pm.csv.gz` | 43,824 hourly Beijing weather rows, 2010–2014 (CSV) |
//!
//! Provenance, licences and checksums: the crate's README. `kiln-datasets` writes these
//! files into its cache once and reads them like any other copy.
//!
//! ```
//! let images = kiln_data::file("mnist-10k/train-images-idx3-ubyte.gz").unwrap();
//! assert_eq!(&images[..2], &[0x1f, 0x8b]); // gzip
//! assert_eq!(kiln_data::FILES.len(), 5);
//! ```

/// One bundled file: its path under the data folder and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct BundledFile {
    /// The path under the data folder (`mnist-10k/train-images-idx3-ubyte.gz`, …).
    pub path: &'static str,
    /// The file's content.
    pub bytes: &'static [u8],
}

macro_rules! bundled {
    ($path:literal) => {
        BundledFile { path: $path, bytes: include_bytes!(concat!("../", $path)) }
    };
}

/// Every bundled file.
pub const FILES: [BundledFile; 5] = [
    bundled!("mnist-10k/train-images-idx3-ubyte.gz"),
    bundled!("mnist-10k/train-labels-idx1-ubyte.gz"),
    bundled!("imdb-5k/aclImdb-5k.tar.gz"),
    bundled!("imdb-5k/imdb-5k.npz"),
    bundled!("beijing-pm25/hourly_beijing_pm.csv.gz"),
];

/// The bytes of the bundled file at `path` (as in [`FILES`]), if there is one.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|f| f.path == path).map(|f| f.bytes)
}
