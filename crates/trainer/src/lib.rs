//! kiln-trainer: Keras' `Sequential` workflow in Rust.
//!
//! [`Sequential`] stacks layers; [`compile`](Sequential::compile) fixes an optimizer, a
//! [`Loss`] and [`Metric`]s; [`fit`](Sequential::fit) trains with Keras' exact bookkeeping
//! and returns a [`History`] under Keras' keys; [`evaluate`](Sequential::evaluate),
//! [`predict`](Sequential::predict), [`summary`](Sequential::summary),
//! [`save`](Sequential::save) / [`load`](Sequential::load) complete it. [`callbacks`]
//! hook into training ([`EarlyStopping`](callbacks::EarlyStopping),
//! [`TerminateOnNaN`](callbacks::TerminateOnNaN),
//! [`ModelCheckpoint`](callbacks::ModelCheckpoint), or your own [`Callback`](callbacks::Callback)).
//!
//! ```
//! use kiln_layers::{Activation, Dense};
//! use kiln_optimizers::{Optimizer, RMSprop};
//! use kiln_trainer::{Loss, Metric, Sequential};
//!
//! let mut model = Sequential::new()
//!     .add(Dense::new(512).activation(Activation::Relu))
//!     .add(Dense::new(10).activation(Activation::Softmax));
//! model.build(784)?;
//! model.compile(Optimizer::new(RMSprop::default(), 1e-2), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])?;
//! assert_eq!(model.param_count(), 407_050);
//! assert!(model.summary().contains("dense_1 (Dense)"));
//! # Ok::<(), kiln_trainer::TrainError>(())
//! ```

mod auc;
pub mod callbacks;
mod epoch;
mod error;
mod evaluate;
mod features;
mod fit;
mod fit_options;
mod fit_settings;
mod graph;
mod history;
mod identifiers;
mod ids;
mod load;
mod logs;
mod loss;
mod loss_kernels;
mod loss_options;
mod mean;
mod metric_state;
mod metrics;
mod named_metric;
mod names;
mod nonzeros;
mod per_sample;
mod progress;
mod reduction;
mod save;
mod sequential;
mod standalone;
mod step;
mod summary;
mod tensor_file;
mod thresholds;
mod validation;
mod weights;
mod windows;

pub use error::TrainError;
pub use evaluate::DEFAULT_BATCH_SIZE;
pub use features::{Features, FeaturesRef};
pub use fit_options::{FitOptions, Validation};
pub use graph::{Functional, Graph, GraphInput, Node, Source};
pub use history::History;
pub use identifiers::{IntoLoss, IntoMetric, KNOWN_LOSSES};
pub use logs::Logs;
pub use loss::Loss;
pub use metrics::{AucCurve, AucSummation, Direction, F1Average, Metric, NO_METRICS};
pub use named_metric::NamedMetric;
pub use names::{MAX_LAYER_NAME_BYTES, keras_snake_case};
pub use progress::Verbosity;
pub use reduction::Reduction;
pub use save::FORMAT_VERSION;
pub use sequential::{DEFAULT_MAX_ACTIVATIONS, Model, Sequential};
pub use standalone::{SampleWeight, StandaloneMetric};
pub use thresholds::Thresholds;
pub use weights::{NamedTensor, Weights};
pub use windows::{WindowOptions, Windows};
