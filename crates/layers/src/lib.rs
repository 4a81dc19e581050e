//! kiln-layers: the building blocks of a `Sequential` model.
//!
//! A [`Layer`] is built from its input's sample [`Shape`](kiln_tensor::Shape), creating its [`Param`]s (name, shape,
//! values, gradient, optional regularizer) in its [`LayerCore`]; it runs
//! [`forward`](Layer::forward) into a buffer it owns (no allocation once the batch size is
//! known), and [`backward`](Layer::backward) from the gradient of its output, writing its
//! parameters' gradients. The model does the rest through [`penalties`] and the parameter
//! list. [`Dense`] (`y = act(x·K + b)`, kernel shape `(input_dim, units)` like Keras) and
//! [`Dropout`] (inverted dropout, identity at inference) are the built-ins; layers
//! serialize with typetag.
//!
//! ```
//! use kiln_layers::{Activation, BuildContext, Dense, Layer, LayerInput, DEFAULT_MAX_WEIGHTS};
//! use kiln_tensor::{Matrix, Parallelism, Rng, Shape};
//!
//! let mut dense = Dense::new(2).activation(Activation::Relu);
//! let mut rng = Rng::seed_from_u64(0);
//! let out = dense.build(&Shape::flat(3), &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS)).unwrap();
//! assert_eq!(out.dims(), &[2]);
//! dense.param_mut("kernel").unwrap().set_value("dense", &[1., 0., 0., 1., -1., -1.]).unwrap();
//! let x = Matrix::from_rows(&[[1.0, 2.0, 3.0]]).unwrap();
//! dense.forward(LayerInput::Dense(x.view()), false, Parallelism::Sequential);
//! assert_eq!(dense.output().as_slice(), &[0.0, 0.0]); // relu(1-3), relu(2-3)
//! assert_eq!(dense.param_count(), 8);
//! ```

mod activation;
mod activation_layer;
mod build;
mod conv;
mod core;
mod dense;
mod dropout;
mod embedding;
mod error;
mod initializer;
mod input;
mod layer;
mod merge;
mod normalization;
mod param;
pub mod penalties;
mod pooling;
mod recurrent;
mod reshape;
mod standardize;
pub mod testing;

pub use activation::Activation;
pub use activation_layer::ActivationLayer;
pub use build::{BuildContext, DEFAULT_MAX_WEIGHTS};
pub use conv::{Conv1D, Conv2D, ConvOptions};
pub use core::LayerCore;
pub use dense::{Dense, NONZERO_INPUT_MAX_DENSITY, NONZERO_INPUT_MIN_UNITS};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use error::LayerError;
pub use initializer::{Distribution, FanMode, Initializer};
pub use input::LayerInput;
pub use layer::{GradOf, Layer, Trainable};
pub use merge::{Add, Average, Concatenate, Maximum, Merge, Minimum, Multiply, Subtract};
pub use normalization::{BatchNormalization, LayerNormalization};
pub use param::Param;
pub use pooling::{
    AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
    GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D,
};
pub use recurrent::{GRU, LSTM, RecurrentOptions, SimpleRNN};
pub use reshape::{Flatten, Reshape};
pub use standardize::Normalization;
