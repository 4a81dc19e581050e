//! kiln: Keras' workflow — `Sequential`, `compile`, `fit` — in Rust, numerically identical
//! to Keras 3 where it matters (RMSprop, losses from logits, regularization bookkeeping).
//!
//! This umbrella crate re-exports the workspace's crates, a [`prelude`] and one
//! [`Error`] for code that mixes them; each crate can also be used alone (`kiln-tensor`,
//! `kiln-layers`, `kiln-trainer`, …).
//!
//! ```
//! use kiln::prelude::*;
//!
//! // The notebook's IMDB model with L2 weight regularization.
//! let mut model = Sequential::new()
//!     .add(Dense::new(16).activation(Activation::Relu).kernel_regularizer(L2::new(0.002)))
//!     .add(Dense::new(16).activation(Activation::Relu).kernel_regularizer(L2::new(0.002)))
//!     .add(Dense::new(1).activation(Activation::Sigmoid));
//! model.build(10_000)?;
//! model.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
//! assert_eq!(model.param_count(), 160_305);
//! # Ok::<(), kiln::Error>(())
//! ```

#[cfg(feature = "datasets")]
pub mod data;
mod error;

pub use error::Error;
#[cfg(feature = "datasets")]
pub use kiln_datasets as datasets;
pub use kiln_fs as fs;
#[cfg(feature = "keras")]
pub use kiln_keras as keras;
pub use kiln_layers as layers;
#[cfg(feature = "onnx")]
pub use kiln_onnx as onnx;
pub use kiln_optimizers as optimizers;
pub use kiln_regularizers as regularizers;
pub use kiln_tensor as tensor;
pub use kiln_trainer as trainer;
/// What a layer written outside kiln needs, so its crate depends on `kiln-nn` alone:
/// `use kiln::{serde, typetag};`, `#[derive(kiln::serde::Serialize, kiln::serde::Deserialize)]`
/// with `#[serde(crate = "kiln::serde")]`, and `#[typetag::serde] impl Layer for …`
/// (examples/custom_layer.rs).
pub use serde;
/// See [`serde`]: `#[typetag::serde]` registers a custom layer for saving and loading.
pub use typetag;

/// The names a training script needs.
pub mod prelude {
    #[cfg(feature = "datasets")]
    pub use kiln_datasets::{Source, Split};
    pub use kiln_layers::{
        Activation, ActivationLayer, Add, Average, AveragePooling1D, AveragePooling2D, BatchNormalization,
        BuildContext, Concatenate, Conv1D, Conv2D, Dense, Dropout, Embedding, Flatten, GRU, GlobalAveragePooling1D,
        GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, GradOf, Initializer, LSTM, Layer, LayerCore,
        LayerInput, LayerNormalization, MaxPooling1D, MaxPooling2D, Maximum, Merge, Minimum, Multiply, Normalization,
        Param, Reshape, SimpleRNN, Subtract, Trainable,
    };
    pub use kiln_optimizers::{Adam, AdamW, LearningRateSchedule, Optimizer, RMSprop, Sgd, UpdateRule};
    pub use kiln_regularizers::{L1, L1L2, L2, Regularizer};
    pub use kiln_tensor::{ByteMatrix, CsrMatrix, IdMatrix, Matrix, Padding, Parallelism, Rng, Shape};
    #[cfg(feature = "tensorboard")]
    pub use kiln_trainer::callbacks::TensorBoard;
    pub use kiln_trainer::callbacks::{
        BackupAndRestore, Callback, Control, CsvLogger, EarlyStopping, LearningRateScheduler, Mode, ModelCheckpoint,
        ReduceLrOnPlateau, TerminateOnNaN,
    };
    pub use kiln_trainer::{
        Features, FeaturesRef, FitOptions, Functional, History, Logs, Loss, Metric, Model, NO_METRICS, Node, Reduction,
        SampleWeight, Sequential, StandaloneMetric, Validation, Verbosity, WindowOptions, Windows,
    };
}
