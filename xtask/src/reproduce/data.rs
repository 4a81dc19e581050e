//! The two data sets, loaded and vectorized once, then shared read-only by every run.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_datasets::{Loader, OutputMode, Provenance, Source, Split, TextVectorization};
use kiln_tensor::Matrix;
use kiln_trainer::Features;

use super::experiments::DataSet;

/// Keras' `imdb.load_data` shuffles with seed 113; we use it for the review order too, so
/// the validation tail is the same whatever the model seed.
pub const IMDB_ORDER_SEED: u64 = 113;

/// Vocabulary size of the multi-hot encoding (`[UNK]` included).
pub const MAX_TOKENS: usize = 10_000;

/// A data set ready for `fit`: inputs, one-column labels and where they came from.
#[derive(Debug)]
pub struct Inputs {
    /// Training inputs (the validation tail included: `fit` splits it off).
    pub features: Features,
    /// Class ids (MNIST) or 0/1 (IMDB), one column.
    pub labels: Matrix,
    /// Where the data came from.
    pub provenance: Provenance,
    /// Average non-zeros per row (784 for images), for scheduling.
    pub nnz_per_row: usize,
}

/// The loaded data sets (only those the selected experiments need).
#[derive(Debug, Default)]
pub struct Data {
    /// MNIST, if needed.
    pub mnist: Option<Inputs>,
    /// IMDB, if needed.
    pub imdb: Option<Inputs>,
}

impl Data {
    /// The inputs of `set` (loaded by [`load`] when an experiment needed them).
    pub fn get(&self, set: DataSet) -> &Inputs {
        match set {
            DataSet::Mnist => self.mnist.as_ref(),
            DataSet::Imdb => self.imdb.as_ref(),
        }
        .expect("data set loaded for every selected experiment")
    }
}

/// Parses `--data`: `auto`, `bundled`, `full`, or a folder with `mnist/` and `imdb/` inside.
pub fn parse_source(arg: &str) -> Source {
    match arg {
        "auto" => Source::Auto,
        "bundled" => Source::Bundled,
        "full" => Source::Full,
        path => Source::Path(PathBuf::from(path)),
    }
}

/// Loads the data sets in `needed`, each once.
pub fn load(source: &Source, needed: &[DataSet]) -> anyhow::Result<Data> {
    let loader = Loader::from_env();
    let mut data = Data::default();
    if needed.contains(&DataSet::Mnist) {
        data.mnist = Some(mnist(&loader, &per_set(source, "mnist"))?);
    }
    if needed.contains(&DataSet::Imdb) {
        data.imdb = Some(imdb(&loader, &per_set(source, "imdb"))?);
    }
    Ok(data)
}

/// For `--data PATH`, the data set's own folder inside PATH.
fn per_set(source: &Source, name: &str) -> Source {
    match source {
        Source::Path(root) => Source::Path(imdb_archive(&root.join(name))),
        other => other.clone(),
    }
}

/// `dir/aclImdb_v1.tar.gz` or `dir/aclImdb` when present, else `dir` itself.
fn imdb_archive(dir: &Path) -> PathBuf {
    ["aclImdb_v1.tar.gz", "aclImdb"].iter().map(|f| dir.join(f)).find(|p| p.exists()).unwrap_or_else(|| dir.into())
}

/// MNIST training digits, kept as bytes and scaled by 1/255 per batch.
fn mnist(loader: &Loader, source: &Source) -> anyhow::Result<Inputs> {
    let loaded = loader.mnist(source, Split::Train).context("loading MNIST")?;
    let set = loaded.data;
    let labels = Matrix::from_vec(set.labels.len(), 1, set.labels.iter().map(|&l| f32::from(l)).collect())?;
    let nnz_per_row = set.images.cols();
    Ok(Inputs {
        features: Features::Bytes { values: set.images, divisor: 255.0 },
        labels,
        provenance: loaded.provenance,
        nnz_per_row,
    })
}

/// IMDB training reviews as 10,000-token multi-hot rows; the vocabulary is adapted on the
/// whole training split, validation tail included, as the notebook does.
fn imdb(loader: &Loader, source: &Source) -> anyhow::Result<Inputs> {
    let loaded = loader.imdb(source, Split::Train, IMDB_ORDER_SEED).context("loading IMDB")?;
    let reviews = loaded.data;
    let mut tv = TextVectorization::new(OutputMode::MultiHot, Some(MAX_TOKENS))?;
    tv.adapt(&reviews.texts);
    let x = tv.multi_hot(&reviews.texts);
    let labels = Matrix::from_vec(reviews.labels.len(), 1, reviews.labels.iter().map(|&l| f32::from(l)).collect())?;
    let nnz_per_row = x.nnz() / x.rows().max(1);
    Ok(Inputs { features: Features::Sparse(x), labels, provenance: loaded.provenance, nnz_per_row })
}
