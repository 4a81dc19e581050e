//! Canonical download locations and checksums of the full data sets.
//!
//! Sizes and SHA-256 are from the TFDS checksum files (`url_checksums/mnist.txt`,
//! `fashion_mnist.txt`, `imdb_reviews/checksums.tsv`); the MNIST mirrors are the CVDF one (TFDS,
//! burn) and torchvision's second mirror, Fashion-MNIST's are Zalando's bucket and the Keras one.
//! See `docs/datasets.md`.

use crate::{RemoteFile, Split};

/// The data sets this crate knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// MNIST handwritten digits (60,000 train + 10,000 test, 28×28).
    Mnist,
    /// Fashion-MNIST (same shapes and file names as MNIST).
    FashionMnist,
    /// The Large Movie Review Dataset (25,000 train + 25,000 test reviews).
    Imdb,
    /// Keras' `mnist.npz`, what `keras.datasets.mnist.load_data()` reads (the notebook's MNIST).
    KerasMnist,
    /// Keras' `imdb.npz`: the reviews as word-rank sequences, what
    /// `keras.datasets.imdb.load_data()` reads (the notebook's IMDB).
    KerasImdb,
}

impl Dataset {
    /// Short name, also the cache and mirror sub-directory: `mnist`, `fashion-mnist`, `imdb`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Imdb => "imdb",
            Dataset::KerasMnist => "keras-mnist",
            Dataset::KerasImdb => "keras-imdb",
        }
    }

    /// The file name Keras caches it under in `~/.keras/datasets/`, for Keras' own files.
    pub fn keras_file(self) -> Option<&'static str> {
        match self {
            Dataset::KerasMnist => Some(KERAS_MNIST.0),
            Dataset::KerasImdb => Some(KERAS_IMDB.0),
            _ => None,
        }
    }

    /// Rows of the full split.
    pub fn full_rows(self, split: Split) -> usize {
        match (self, split) {
            (Dataset::Imdb | Dataset::KerasImdb, _) => 25_000,
            (_, Split::Train) => 60_000,
            (_, Split::Test) => 10_000,
        }
    }
}

/// `(file name, bytes, sha256)` of a canonical file.
type Entry = (&'static str, u64, &'static str);

const MNIST_MIRRORS: &[&str] =
    &["https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"];
const MNIST_FILES: [Entry; 4] = [
    ("train-images-idx3-ubyte.gz", 9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train-labels-idx1-ubyte.gz", 28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", 1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", 4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
];

const FASHION_MIRRORS: &[&str] = &[
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
];
const FASHION_FILES: [Entry; 4] = [
    ("train-images-idx3-ubyte.gz", 26_421_880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    ("train-labels-idx1-ubyte.gz", 29_515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    ("t10k-images-idx3-ubyte.gz", 4_422_102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    ("t10k-labels-idx1-ubyte.gz", 5_148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
];

const IMDB_MIRRORS: &[&str] = &["http://ai.stanford.edu/~amaas/data/sentiment/"];
const IMDB_FILE: Entry =
    ("aclImdb_v1.tar.gz", 84_125_825, "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe");

/// Keras' bucket, and the SHA-256 Keras itself pins (`keras/src/datasets/{mnist,imdb}.py`).
const KERAS_MIRRORS: &[&str] = &["https://storage.googleapis.com/tensorflow/tf-keras-datasets/"];
const KERAS_MNIST: Entry =
    ("mnist.npz", 11_490_434, "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1");
const KERAS_IMDB: Entry = ("imdb.npz", 17_464_789, "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f");

/// The files holding `split` of `dataset`, with their canonical URLs — or, when `mirror` is
/// given, `{mirror}/{dataset name}/{file name}` only (e.g. `http://127.0.0.1:8000/mnist/…`).
///
/// MNIST-family splits are an (images, labels) pair; both IMDB splits live in one archive;
/// Keras' files hold both splits in one `.npz`.
pub fn remote_files(dataset: Dataset, split: Split, mirror: Option<&str>) -> Vec<RemoteFile> {
    let (mirrors, entries): (&[&str], Vec<Entry>) = match (dataset, split) {
        (Dataset::Mnist, Split::Train) => (MNIST_MIRRORS, MNIST_FILES[..2].to_vec()),
        (Dataset::Mnist, Split::Test) => (MNIST_MIRRORS, MNIST_FILES[2..].to_vec()),
        (Dataset::FashionMnist, Split::Train) => (FASHION_MIRRORS, FASHION_FILES[..2].to_vec()),
        (Dataset::FashionMnist, Split::Test) => (FASHION_MIRRORS, FASHION_FILES[2..].to_vec()),
        (Dataset::Imdb, _) => (IMDB_MIRRORS, vec![IMDB_FILE]),
        (Dataset::KerasMnist, _) => (KERAS_MIRRORS, vec![KERAS_MNIST]),
        (Dataset::KerasImdb, _) => (KERAS_MIRRORS, vec![KERAS_IMDB]),
    };
    entries
        .into_iter()
        .map(|(name, size, sha)| RemoteFile {
            file_name: name.into(),
            urls: match mirror {
                Some(m) => vec![format!("{}/{}/{name}", m.trim_end_matches('/'), dataset.name())],
                None => mirrors.iter().map(|m| format!("{m}{name}")).collect(),
            },
            sha256: sha.into(),
            size: Some(size),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_replaces_the_canonical_urls() {
        let f = remote_files(Dataset::Mnist, Split::Test, Some("http://127.0.0.1:9/"));
        assert_eq!(f[0].urls, vec!["http://127.0.0.1:9/mnist/t10k-images-idx3-ubyte.gz".to_string()]);
        let f = remote_files(Dataset::Imdb, Split::Train, None);
        assert_eq!(f[0].urls, vec!["http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz".to_string()]);
        assert!(f.iter().all(|f| f.sha256.len() == 64));
    }
}
