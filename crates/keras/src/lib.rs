//! kiln-keras: Keras models and training runs, in kiln.
//!
//! * **Import** ([`model_from_keras`], [`compile_from_keras`], [`optimizer_from_keras`],
//!   [`model_from_keras_file`]): a Keras `Sequential` or `Functional` config (or a
//!   `.keras` archive's `config.json`) becomes a kiln [`Sequential`](kiln_trainer::Sequential)
//!   (a stack, or a graph of layers with merge layers and several inputs). Configs are read
//!   through serde into types with Keras' names; anything kiln cannot compute exactly —
//!   other layers, dtypes, shared layers, nested models, several outputs, constraints,
//!   optimizer options — is refused with the JSON path of the field.
//! * **Parity** ([`replay`]): a Keras training trace (the schema of
//!   `tests/fixtures/keras/keras_trace_*.json`) is replayed and every number compared.
//!
//! ```
//! use serde_json::json;
//!
//! let config = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
//!     {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
//!     {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}}]}});
//! let model = kiln_keras::model_from_keras(&config)?;
//! assert_eq!((model.input_width(), model.param_count()), (Some(3), 8));
//!
//! let bad = json!({"layers": [{"class_name": "Dense", "config": {"units": 3.5}}]});
//! let err = kiln_keras::model_from_keras(&bad).unwrap_err().to_string();
//! assert!(err.starts_with("layers[0].config.units: invalid type: floating point `3.5`"), "{err}");
//! # Ok::<(), kiln_keras::KerasError>(())
//! ```

mod archive;
mod callbacks;
mod compile;
mod conv_layers;
mod error;
mod functional;
mod json;
mod layers;
mod metric;
mod model;
mod norm_layers;
mod optimizer;
mod parts;
mod rnn_layers;
mod scan;
mod trace;
mod weights;

pub use archive::{MAX_CONFIG_BYTES, model_from_document, model_from_keras_file, read_model_config};
pub use callbacks::callback_from_keras;
pub use compile::compile_from_keras;
pub use error::KerasError;
pub use model::model_from_keras;
pub use optimizer::optimizer_from_keras;
pub use parts::regularizer_from_keras;
pub use scan::MAX_LAYERS;
pub use trace::{Check, TraceReport, parse_trace, replay};
pub use weights::{MAX_WEIGHTS_BYTES, import_keras_file};
