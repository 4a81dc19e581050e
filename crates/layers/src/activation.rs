//! Activation functions and their derivatives.

use kiln_tensor::kernels;
use serde::{Deserialize, Serialize};

/// An activation applied elementwise (or row-wise for softmax) after a layer's product.
/// Serialized as Keras' identifiers: `"relu"`, `"sigmoid"`, `"softmax"`, `"tanh"`, `"linear"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// The identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^{-x})`.
    Sigmoid,
    /// `e^{x_j} / Σ_k e^{x_k}` over each row.
    Softmax,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Parses a Keras identifier (`"relu"`, …; `None`/`"linear"` is the identity).
    pub fn from_keras(name: &str) -> Option<Self> {
        Some(match name {
            "linear" | "" => Self::Linear,
            "relu" => Self::Relu,
            "sigmoid" => Self::Sigmoid,
            "softmax" => Self::Softmax,
            "tanh" => Self::Tanh,
            _ => return None,
        })
    }

    /// The Keras identifier.
    pub fn keras_name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Relu => "relu",
            Self::Sigmoid => "sigmoid",
            Self::Softmax => "softmax",
            Self::Tanh => "tanh",
        }
    }

    /// Applies the activation in place to a row-major buffer with `cols` columns.
    pub fn apply(self, values: &mut [f32], cols: usize) {
        match self {
            Self::Linear => {}
            Self::Relu => kernels::relu(values),
            Self::Sigmoid => kernels::sigmoid(values),
            Self::Softmax => kernels::softmax_rows(values, cols),
            Self::Tanh => kernels::tanh(values),
        }
    }

    /// Turns `grad` (w.r.t. the activation's output `out`) into the gradient w.r.t. its
    /// input, in place. Uses the output only, as TensorFlow's gradient kernels do.
    pub fn backward(self, out: &[f32], grad: &mut [f32], cols: usize) {
        match self {
            Self::Linear => {}
            Self::Relu => kernels::relu_backward(out, grad),
            Self::Sigmoid => grad.iter_mut().zip(out).for_each(|(g, &y)| *g *= y * (1.0 - y)),
            Self::Tanh => grad.iter_mut().zip(out).for_each(|(g, &y)| *g *= 1.0 - y * y),
            Self::Softmax => {
                for (g, y) in grad.chunks_exact_mut(cols).zip(out.chunks_exact(cols)) {
                    let dot: f32 = g.iter().zip(y).map(|(a, b)| a * b).sum();
                    g.iter_mut().zip(y).for_each(|(g, &y)| *g = (*g - dot) * y);
                }
            }
        }
    }
}
