//! The glue every user writes between `kiln-datasets` and `fit`: labelled inputs ready to
//! train on, the notebook's way.

use kiln_datasets::{
    ImdbArgs, Loader, OutputMode, PadOptions, Provenance, Source, Split, TextVectorization, pad_sequences,
};
use kiln_tensor::Matrix;
use kiln_trainer::Features;

use crate::Error;

/// The seed the reviews are shuffled with: 113, the one Keras' `imdb.load_data` uses. The
/// order is kiln's own seeded shuffle of the path-sorted aclImdb files, not Keras' (which
/// shuffles its `.npz` arrays, a different source order).
pub const IMDB_SEED: u64 = 113;

/// Inputs, one-column labels, and where they came from.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The inputs (pass `&data.x` to `fit`).
    pub x: Features,
    /// One label per row, one column (class ids, or 0/1).
    pub y: Matrix,
    /// Which data was used and why (the bundled subset, a cache, a download…).
    pub provenance: Provenance,
}

/// MNIST digits of `split`, kept as bytes and divided by 255 as batches are gathered.
pub fn mnist(source: &Source, split: Split) -> Result<Labelled, Error> {
    let loaded = Loader::from_env().mnist(source, split)?;
    let set = loaded.data;
    let y = Matrix::from_vec(set.labels.len(), 1, set.labels.iter().map(|&l| f32::from(l)).collect())?;
    Ok(Labelled { x: Features::Bytes { values: set.images, divisor: 255.0 }, y, provenance: loaded.provenance })
}

/// IMDB training reviews as multi-hot rows over the `max_tokens` most frequent words
/// (Keras' `TextVectorization(output_mode="multi_hot")` adapted on them), labels 0/1,
/// shuffled with seed [`IMDB_SEED`].
pub fn imdb_multi_hot(source: &Source, max_tokens: usize) -> Result<Labelled, Error> {
    let loaded = Loader::from_env().imdb(source, Split::Train, IMDB_SEED)?;
    let reviews = loaded.data;
    let mut tv = TextVectorization::new(OutputMode::MultiHot, Some(max_tokens))?;
    tv.adapt(&reviews.texts);
    let x = tv.multi_hot(&reviews.texts);
    let y = Matrix::from_vec(reviews.labels.len(), 1, reviews.labels.iter().map(|&l| f32::from(l)).collect())?;
    Ok(Labelled { x: Features::Sparse(x), y, provenance: loaded.provenance })
}

/// IMDB training reviews as Keras' `imdb.load_data(num_words=…)` gives them, padded (and
/// cut) to `maxlen` ids at the front as `pad_sequences` does by default: token ids for an
/// `Embedding(num_words, …)`, labels 0/1.
pub fn imdb_sequences(source: &Source, num_words: usize, maxlen: usize) -> Result<Labelled, Error> {
    let args = ImdbArgs { num_words: Some(num_words as i64), ..ImdbArgs::default() };
    let loaded = Loader::from_env().keras_imdb(source, &args)?;
    let train = loaded.data.train;
    let x = pad_sequences(&train.x, &PadOptions { maxlen: Some(maxlen), ..PadOptions::default() })?;
    let y = Matrix::from_vec(train.y.len(), 1, train.y.iter().map(|&l| l as f32).collect())?;
    Ok(Labelled { x: Features::Ids(x), y, provenance: loaded.provenance })
}

pub use kiln_datasets::{WEATHER_FEATURES, Weather, beijing_weather};
