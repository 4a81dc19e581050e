//! The options of `fit`: epochs, batches, validation, shuffling, progress, callbacks.

use std::collections::BTreeMap;

use kiln_tensor::Matrix;

use crate::callbacks::Callback;
use crate::{FeaturesRef, Verbosity};

/// Where validation data comes from.
#[derive(Debug, Clone, Copy, Default)]
pub enum Validation<'a> {
    /// No validation.
    #[default]
    None,
    /// The **last** fraction of the data as passed, split off before any shuffling and
    /// fixed for all epochs (Keras' `validation_split`): `split_at = ⌊n·(1 − fraction)⌋`.
    Split(f64),
    /// Separate validation inputs and labels (Keras' `validation_data`), borrowed.
    Data(FeaturesRef<'a>, &'a Matrix),
    /// Separate validation inputs, labels and one weight per row (Keras'
    /// `validation_data=(x, y, sample_weight)`).
    WeightedData(FeaturesRef<'a>, &'a Matrix, &'a [f32]),
}

/// Options of [`Sequential::fit`](crate::Sequential::fit), with Keras' defaults (`epochs`
/// 1, `batch_size` 32, `shuffle` on and redrawn every epoch, progress `Auto`).
///
/// Callbacks and validation data are borrowed for the duration of `fit`, so their state
/// can be read afterwards.
pub struct FitOptions<'a> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per gradient step (the last batch may be smaller).
    pub batch_size: usize,
    /// Validation data, if any.
    pub validation: Validation<'a>,
    /// Shuffle the training part.
    pub shuffle: bool,
    /// Draw a new order every epoch (Keras' documented `shuffle=True`); when false, the
    /// order drawn before the first epoch is reused for every epoch — what seeded Keras 3
    /// on TensorFlow actually does (its `tf.random.shuffle` restarts from the same seed
    /// at each epoch's iterator).
    pub reshuffle_each_epoch: bool,
    /// Seed of the shuffle stream (defaults to the model's seed).
    pub seed: Option<u64>,
    /// Progress output.
    pub verbose: Verbosity,
    /// Callbacks, called in order.
    pub callbacks: Vec<&'a mut dyn Callback>,
    /// One weight per row of `x` (Keras' `sample_weight`); with `validation_split` the
    /// held-out rows keep theirs, as Keras splits them too.
    pub sample_weight: Option<&'a [f32]>,
    /// A weight per class index (Keras' `class_weight`): training rows weigh their label's
    /// class (`round(y)` for one column, `argmax(y)` for one-hot rows; 1 when absent).
    pub class_weight: Option<BTreeMap<usize, f32>>,
    /// The epoch to start from (Keras' `initial_epoch`): epochs before it are skipped.
    pub initial_epoch: usize,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 32,
            validation: Validation::None,
            shuffle: true,
            reshuffle_each_epoch: true,
            seed: None,
            verbose: Verbosity::Auto,
            callbacks: Vec::new(),
            sample_weight: None,
            class_weight: None,
            initial_epoch: 0,
        }
    }
}

impl<'a> FitOptions<'a> {
    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Holds out the last `fraction` of the data for validation (0, Keras' default, holds
    /// out nothing).
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation = Validation::Split(fraction);
        self
    }

    /// Validates on separate data.
    pub fn validation_data(mut self, x: impl Into<FeaturesRef<'a>>, y: &'a Matrix) -> Self {
        self.validation = Validation::Data(x.into(), y);
        self
    }

    /// Validates on separate data with one weight per validation row.
    pub fn validation_data_weighted(mut self, x: impl Into<FeaturesRef<'a>>, y: &'a Matrix, w: &'a [f32]) -> Self {
        self.validation = Validation::WeightedData(x.into(), y, w);
        self
    }

    /// Weighs each training row's loss and metrics (Keras' `sample_weight`).
    pub fn sample_weight(mut self, weights: &'a [f32]) -> Self {
        self.sample_weight = Some(weights);
        self
    }

    /// Weighs each training row by its class (Keras' `class_weight`).
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f32)>) -> Self {
        self.class_weight = Some(weights.into_iter().collect());
        self
    }

    /// Starts at epoch `epoch` (0-based; Keras' `initial_epoch`).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Turns per-epoch shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Draws a new order every epoch (default) or keeps the first epoch's order.
    pub fn reshuffle_each_epoch(mut self, yes: bool) -> Self {
        self.reshuffle_each_epoch = yes;
        self
    }

    /// Seeds the shuffle stream.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the progress output.
    pub fn verbose(mut self, verbose: Verbosity) -> Self {
        self.verbose = verbose;
        self
    }

    /// Adds a callback (borrowed: read its state after `fit`).
    pub fn callback(mut self, callback: &'a mut dyn Callback) -> Self {
        self.callbacks.push(callback);
        self
    }
}
