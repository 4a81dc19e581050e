//! kiln-datasets: the data of kiln's experiments, real and verified.
//!
//! * **MNIST family** ([`mnist`], [`fashion_mnist`], [`read_idx_pair`], [`read_idx_dir`]): IDX
//!   files (gzipped or not) into an [`ImageSet`] of raw `u8` pixels (a [`kiln_tensor::ByteMatrix`],
//!   scaled to `f32` per batch, not in memory).
//! * **IMDB** ([`imdb`], [`read_aclimdb`]): the aclImdb layout, streamed from `aclImdb_v1.tar.gz`
//!   or read from a directory, sorted by path, then shuffled with a named seeded stream.
//! * **[`TextVectorization`]**: `keras.layers.TextVectorization` reproduced exactly (vocabulary
//!   order and tie-breaks included), emitting CSR multi-hot / count batches or int sequences.
//! * **[`Source`]**: one policy for where data comes from — verified cache, verified download,
//!   or the real subsets bundled with the project (`data/mnist-10k`, `data/imdb-5k`), with a
//!   [`Provenance`] saying which and why.
//!
//! ```
//! use kiln_datasets::{Loader, OutputMode, Source, Split, TextVectorization};
//!
//! let loader = Loader { verbose: false, ..Loader::from_env() };
//! let digits = loader.mnist(&Source::Bundled, Split::Train)?;
//! assert_eq!((digits.data.images.rows(), digits.data.images.cols()), (10_000, 784));
//! assert!(digits.provenance.subset);
//!
//! let reviews = loader.imdb(&Source::Bundled, Split::Train, 0)?.data;
//! let mut tv = TextVectorization::new(OutputMode::MultiHot, Some(10_000))?;
//! tv.adapt(&reviews.texts);
//! let x = tv.multi_hot(&reviews.texts[..8]);
//! assert_eq!((x.rows(), x.cols()), (8, 10_000));
//! assert_eq!(&tv.vocabulary()[..3], ["[UNK]", "the", "and"]);
//! # Ok::<(), kiln_datasets::Error>(())
//! ```

mod bundled;
pub mod catalog;
mod csv_table;
mod download;
mod error;
mod idx;
mod imdb;
pub mod inspect;
mod inspect_tables;
mod keras_datasets;
pub mod npz;
mod pad;
pub mod pickle;
pub mod random_state;
mod source;
mod textvec;

pub use catalog::{Dataset, remote_files};
pub use csv_table::{
    Column, CsvOptions, Encode, Table, WEATHER_FEATURES, Weather, beijing_weather, read_csv, read_csv_from,
};
pub use download::{FetchOptions, RemoteFile, cached, fetch, sha256_file};
pub use error::{Error, Result};
pub use idx::{
    IdxArray, ImageSet, decode_maybe_gzip, find_idx_pair, label_counts, parse_idx, read_idx, read_idx_dir,
    read_idx_images, read_idx_labels, read_idx_pair, read_maybe_gzip,
};
pub use imdb::{
    IMDB_ORDER_STREAM, MAX_REVIEW_BYTES, MAX_TOTAL_REVIEW_BYTES, NEGATIVE, POSITIVE, Reviews, read_aclimdb,
};
pub use keras_datasets::{ImdbArgs, Sequences, imdb_load_data, mnist_load_data, vectorize_sequences};
pub use pad::{PadOptions, Side, pad_sequences};
pub use source::{
    DEBIAN_FASHION_MNIST, KerasImdb, Loaded, Loader, Origin, Provenance, Source, beijing_weather_csv, bundled_dir,
    data_dir, fashion_mnist, imdb, keras_datasets_dir, mnist,
};
pub use textvec::{OOV_TOKEN, OutputMode, PUNCTUATION, TextVectorization, standardize, tokenize};

/// A data-set split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

impl Split {
    /// `"train"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}
