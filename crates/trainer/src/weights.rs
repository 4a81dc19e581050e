//! A model's parameters as named, shaped tensors.

use serde::{Deserialize, Serialize};

/// One parameter: `dense_1/kernel`, its shape and row-major values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// `layer/param`.
    pub name: String,
    /// Shape (`[in, units]` for kernels, `[units]` for biases).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Every parameter of a model, in layer order (Keras' `get_weights()` with names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Weights(pub Vec<NamedTensor>);

impl Weights {
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.0.iter().find(|t| t.name == name)
    }

    /// Total number of values.
    pub fn count(&self) -> usize {
        self.0.iter().map(|t| t.values.len()).sum()
    }
}
