//! Interoperability with Keras: read a Keras `Sequential` config and compile settings,
//! and replay a Keras training trace to prove numerical parity.

mod import;
mod trace;

pub use import::{
    compile_from_keras, model_from_keras, model_from_keras_file, optimizer_from_keras, regularizer_from_keras,
};
pub use trace::{Check, TraceReport, replay};
