//! kiln-trainer: Keras' `Sequential` workflow in Rust.
//!
//! [`Sequential`] stacks layers; [`compile`](Sequential::compile) fixes an optimizer, a
//! [`Loss`] and metrics; [`fit`](Sequential::fit) trains with Keras' exact bookkeeping and
//! returns a [`History`] under Keras' keys; [`evaluate`](Sequential::evaluate),
//! [`predict`](Sequential::predict), [`summary`](Sequential::summary),
//! [`save`](Sequential::save) / [`load`](Sequential::load) complete it. [`callbacks`]
//! hook into training ([`EarlyStopping`](callbacks::EarlyStopping),
//! [`TerminateOnNaN`](callbacks::TerminateOnNaN),
//! [`ModelCheckpoint`](callbacks::ModelCheckpoint)); [`keras`] imports Keras configs and
//! replays Keras training traces.
//!
//! ```
//! use kiln_layers::{Activation, Dense};
//! use kiln_optimizers::RMSprop;
//! use kiln_trainer::{Loss, Sequential};
//!
//! let mut model = Sequential::new()
//!     .add(Dense::new(512).activation(Activation::Relu))
//!     .add(Dense::new(10).activation(Activation::Softmax));
//! model.build(784).unwrap();
//! model.compile(RMSprop::new(1e-2), Loss::SparseCategoricalCrossentropy, &["accuracy"]).unwrap();
//! assert_eq!(model.param_count(), 407_050);
//! assert!(model.summary().contains("dense_1 (Dense)"));
//! ```

#![warn(missing_docs)]

mod atomic;
pub mod callbacks;
mod error;
mod failpoint;
mod features;
mod fit;
mod fit_options;
mod history;
pub mod keras;
mod logs;
mod loss;
mod mean;
mod metrics;
mod progress;
mod save;
mod sequential;
mod step;
mod summary;
mod weights;

pub use atomic::write_atomic;
pub use error::TrainError;
pub use failpoint::FAILPOINT_ENV;
pub use features::Features;
pub use fit_options::{FitOptions, Validation};
pub use history::History;
pub use logs::Logs;
pub use loss::Loss;
pub use metrics::{Metric, MetricKind};
pub use progress::Verbosity;
pub use save::FORMAT_VERSION;
pub use sequential::Sequential;
pub use weights::{NamedTensor, Weights};
