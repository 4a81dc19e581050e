//! Activation functions and their derivatives.

use kiln_tensor::pool::{for_row_blocks, for_row_blocks2, row_blocks};
use kiln_tensor::{Parallelism, kernels};

/// Fewest values a thread's block of rows should hold (below that, threads cost more).
const MIN_VALUES_PER_THREAD: usize = 16 * 1024;
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

    /// `logits += bias` (when there is one) and `output = activation(logits)`, row by row
    /// so each row is still in L1 for the second step: the bias add and the activation
    /// are fused, with the same rounding as doing them one after the other. Blocks of rows
    /// go to `par`'s threads (rows are independent: the same bits).
    pub fn forward(self, logits: &mut [f32], bias: Option<&[f32]>, output: &mut [f32], cols: usize, par: Parallelism) {
        let blocks = row_blocks(par, logits.len() / cols.max(1), MIN_VALUES_PER_THREAD / cols.max(1));
        for_row_blocks2(par, (logits, cols), (output, cols), &blocks, |_, z, y| self.forward_rows(z, bias, y, cols));
    }

    fn forward_rows(self, logits: &mut [f32], bias: Option<&[f32]>, output: &mut [f32], cols: usize) {
        for (z, y) in logits.chunks_exact_mut(cols).zip(output.chunks_exact_mut(cols)) {
            if let Some(b) = bias {
                z.iter_mut().zip(b).for_each(|(z, &b)| *z += b);
            }
            match self {
                Self::Linear => y.copy_from_slice(z),
                Self::Relu => y.iter_mut().zip(z.iter()).for_each(|(y, &z)| *y = kernels::relu_scalar(z)),
                Self::Sigmoid => y.iter_mut().zip(z.iter()).for_each(|(y, &z)| *y = kernels::sigmoid_scalar(z)),
                Self::Tanh => y.iter_mut().zip(z.iter()).for_each(|(y, &z)| *y = z.tanh()),
                Self::Softmax => {
                    y.copy_from_slice(z);
                    kernels::softmax_rows(y, cols);
                }
            }
        }
    }

    /// Turns `grad` (w.r.t. the activation's output `out`) into the gradient w.r.t. its
    /// input, in place. Uses the output only, as TensorFlow's gradient kernels do. Blocks
    /// of rows go to `par`'s threads.
    pub fn backward(self, out: &[f32], grad: &mut [f32], cols: usize, par: Parallelism) {
        if self == Self::Linear {
            return;
        }
        let blocks = row_blocks(par, grad.len() / cols.max(1), MIN_VALUES_PER_THREAD / cols.max(1));
        for_row_blocks(par, grad, cols, &blocks, |r0, g| {
            self.backward_rows(&out[r0 * cols..r0 * cols + g.len()], g, cols)
        });
    }

    fn backward_rows(self, out: &[f32], grad: &mut [f32], cols: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_forward_equals_bias_then_activation_bitwise() {
        let cols = 5;
        let logits: Vec<f32> = (0..20).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let bias = [0.1, -0.2, 0.3, -0.4, 0.5];
        for act in [Activation::Linear, Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::Softmax] {
            let mut expected = logits.clone();
            kernels::add_row_vector(&mut expected, &bias);
            let expected_logits = expected.clone();
            act.apply(&mut expected, cols);

            let (mut z, mut y) = (logits.clone(), vec![0.0; logits.len()]);
            act.forward(&mut z, Some(&bias), &mut y, cols, Parallelism::Sequential);
            assert_eq!(z, expected_logits, "{act:?} logits");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&expected), "{act:?} output");

            let (mut z, mut y) = (logits.clone(), vec![0.0; logits.len()]);
            act.forward(&mut z, None, &mut y, cols, Parallelism::Sequential);
            assert_eq!(z, logits, "{act:?} without bias leaves the logits");
        }
    }
}
