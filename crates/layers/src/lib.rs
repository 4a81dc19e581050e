//! kiln-layers: the building blocks of a `Sequential` model.
//!
//! A [`Layer`] is built from its input width, runs [`forward`](Layer::forward) into a
//! buffer it owns (no allocation once the batch size is known), and
//! [`backward`](Layer::backward) from the gradient of its output, writing its parameter
//! gradients into preallocated buffers. [`Dense`] (`y = act(x·K + b)`, kernel shape
//! `(input_dim, units)` like Keras) and [`Dropout`] (inverted dropout, identity at
//! inference) are the built-ins; layers serialize with typetag.
//!
//! ```
//! use kiln_layers::{Activation, Dense, Layer, LayerInput};
//! use kiln_tensor::{Matrix, Par, Rng};
//!
//! let mut dense = Dense::new(2).activation(Activation::Relu);
//! assert_eq!(dense.build(3, &mut Rng::seed_from_u64(0)).unwrap(), 2);
//! dense.set_param("kernel", &[1., 0., 0., 1., -1., -1.]).unwrap();
//! let x = Matrix::from_rows(&[[1.0, 2.0, 3.0]]).unwrap();
//! dense.forward(LayerInput::Dense(x.view()), false, Par::Seq);
//! assert_eq!(dense.output().as_slice(), &[0.0, 0.0]); // relu(1-3), relu(2-3)
//! ```

#![warn(missing_docs)]

mod activation;
mod dense;
mod dropout;
mod error;
mod initializer;
mod input;
mod layer;

pub use activation::Activation;
pub use dense::{Dense, MAX_KERNEL_ELEMENTS};
pub use dropout::Dropout;
pub use error::LayerError;
pub use initializer::Initializer;
pub use input::LayerInput;
pub use layer::{GradOf, Layer};
