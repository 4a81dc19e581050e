//! Activation functions and their derivatives.

use kiln_tensor::pool::{for_row_blocks, for_row_blocks2, row_blocks};
use kiln_tensor::subnormal::flush;
use kiln_tensor::{Parallelism, kernels};

/// Fewest values a thread's block of rows should hold (below that, threads cost more).
pub(crate) const MIN_VALUES_PER_THREAD: usize = 16 * 1024;
use serde::{Deserialize, Serialize};

/// An activation applied elementwise (or row-wise for softmax) after a layer's product,
/// as Keras 3's `keras/src/activations/activations.py` computes it on TensorFlow (float32
/// constants and TF's formulas, gradients as TF's kernels or Keras' own gradient code).
/// Serialized as Keras' identifiers: `"relu"`, `"sigmoid"`, `"softmax"`, `"tanh"`,
/// `"linear"`, `"relu6"`, `"elu"`, `"selu"`, `"leaky_relu"`, `"softplus"`, `"silu"`
/// (also read as `"swish"`), `"gelu"`, `"hard_sigmoid"`, `"softsign"`, `"mish"`,
/// `"exponential"`.
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
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x < 0 ? eˣ − 1 : x` (alpha 1; TF computes `exp(x) − 1`, not `expm1`).
    Elu,
    /// `x < 0 ? s·α·(eˣ − 1) : s·x`, α = 1.6732632, s = 1.0507010 (float32 `s·α`).
    Selu,
    /// `x > 0 ? x : 0.2·x` (Keras 3's default `negative_slope` 0.2).
    #[serde(rename = "leaky_relu")]
    LeakyRelu,
    /// `log(1 + eˣ)`, TensorFlow's: `x` above 13.942385, `eˣ` below −13.942385.
    Softplus,
    /// `x·σ(x)` (Keras' `silu`, also `swish`).
    #[serde(alias = "swish")]
    Silu,
    /// `0.5·x·erfc(−x/√2)`, the exact GELU (Keras' default `approximate=False`).
    Gelu,
    /// `relu6(x + 3) · (1/6)` (Keras 3's; TensorFlow's graph multiplies by `1/6`).
    #[serde(rename = "hard_sigmoid")]
    HardSigmoid,
    /// `x / (|x| + 1)`.
    Softsign,
    /// `x·tanh(softplus(x))`.
    Mish,
    /// `eˣ`.
    Exponential,
}

/// TF's `selu` scale, as float32.
const SELU_SCALE: f32 = 1.050_701;
/// TF's `selu` scale·alpha, as float32 (the one constant its negative branch uses).
const SELU_SCALE_ALPHA: f32 = 1.758_099_3;
/// Keras 3's `leaky_relu` default `negative_slope`.
const LEAKY_SLOPE: f32 = 0.2;
/// TF's `softplus` threshold: `log(float32 epsilon) + 2`.
const SOFTPLUS_THRESHOLD: f32 = -13.942_385;
/// `1/√2` as TF's `gelu` casts it.
const GELU_C: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `2/√π`, the factor of erfc's derivative.
const TWO_OVER_SQRT_PI: f32 = std::f32::consts::FRAC_2_SQRT_PI;

impl std::str::FromStr for Activation {
    type Err = crate::LayerError;

    /// A Keras identifier (`"relu"`), as [`from_keras`](Activation::from_keras) reads it;
    /// anything else is refused with the list of known ones.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_keras(name)
            .ok_or_else(|| crate::LayerError::UnknownActivation { name: name.to_string(), known: Self::KERAS_NAMES })
    }
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
            "relu6" => Self::Relu6,
            "elu" => Self::Elu,
            "selu" => Self::Selu,
            "leaky_relu" => Self::LeakyRelu,
            "softplus" => Self::Softplus,
            "silu" | "swish" => Self::Silu,
            "gelu" => Self::Gelu,
            "hard_sigmoid" => Self::HardSigmoid,
            "softsign" => Self::Softsign,
            "mish" => Self::Mish,
            "exponential" => Self::Exponential,
            _ => return None,
        })
    }

    /// Every Keras identifier [`from_keras`](Activation::from_keras) reads, for messages.
    pub const KERAS_NAMES: &'static str = "linear, relu, sigmoid, softmax, tanh, relu6, elu, selu, leaky_relu, \
                                           softplus, silu (swish), gelu, hard_sigmoid, softsign, mish, exponential";

    /// The Keras identifier.
    pub fn keras_name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Relu => "relu",
            Self::Sigmoid => "sigmoid",
            Self::Softmax => "softmax",
            Self::Tanh => "tanh",
            Self::Relu6 => "relu6",
            Self::Elu => "elu",
            Self::Selu => "selu",
            Self::LeakyRelu => "leaky_relu",
            Self::Softplus => "softplus",
            Self::Silu => "silu",
            Self::Gelu => "gelu",
            Self::HardSigmoid => "hard_sigmoid",
            Self::Softsign => "softsign",
            Self::Mish => "mish",
            Self::Exponential => "exponential",
        }
    }

    /// Whether Keras' TensorFlow backend attaches the activation's input to its output
    /// (`_keras_logits`: sigmoid, softmax), which crossentropies then read as logits.
    pub fn attaches_logits(self) -> bool {
        matches!(self, Self::Sigmoid | Self::Softmax)
    }

    /// Whether the gradient needs the activation's input (TensorFlow computes it from
    /// `x`, and `x` cannot be recovered from the output): softplus, silu, gelu, softsign,
    /// mish. A layer with one of these keeps its pre-activation values for `backward`.
    pub fn needs_input(self) -> bool {
        matches!(self, Self::Softplus | Self::Silu | Self::Gelu | Self::Softsign | Self::Mish)
    }

    /// Applies the activation in place to a row-major buffer with `cols` columns.
    pub fn apply(self, values: &mut [f32], cols: usize) {
        match self {
            Self::Linear => {}
            Self::Relu => kernels::relu(values),
            // Probabilities below the normal range are 0 under TensorFlow's flush-to-zero
            // (a diverged model's argmax depends on it).
            Self::Sigmoid => {
                kernels::sigmoid(values);
                kiln_tensor::subnormal::flush_subnormals(values);
            }
            Self::Softmax => {
                kernels::softmax_rows(values, cols);
                kiln_tensor::subnormal::flush_subnormals(values);
            }
            Self::Tanh => kernels::tanh(values),
            other => values.iter_mut().for_each(|v| *v = other.scalar(*v)),
        }
    }

    /// `act(x)` for the elementwise activations beyond the first five (as TF computes it).
    fn scalar(self, x: f32) -> f32 {
        match self {
            Self::Relu6 => at_most_six(kernels::relu_scalar(x)),
            Self::Elu => {
                if x < 0.0 {
                    x.exp() - 1.0
                } else {
                    x
                }
            }
            Self::Selu => {
                if x < 0.0 {
                    SELU_SCALE_ALPHA * (x.exp() - 1.0)
                } else {
                    SELU_SCALE * x
                }
            }
            Self::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    LEAKY_SLOPE * x
                }
            }
            Self::Softplus => softplus(x),
            Self::Silu => x * kernels::sigmoid_scalar(x),
            Self::Gelu => (0.5 * x) * libm::erfcf((-x) * GELU_C),
            Self::HardSigmoid => at_most_six(kernels::relu_scalar(x + 3.0)) * (1.0 / 6.0),
            Self::Softsign => x / (x.abs() + 1.0),
            Self::Mish => x * softplus(x).tanh(),
            Self::Exponential => x.exp(),
            Self::Linear => x,
            Self::Relu => kernels::relu_scalar(x),
            Self::Sigmoid => kernels::sigmoid_scalar(x),
            Self::Tanh => x.tanh(),
            Self::Softmax => unreachable!("softmax is row-wise"),
        }
    }

    /// `act'` at input `x` with output `y`, as TF's gradient computes it (from `y` where
    /// TF's kernel does, from `x` where it needs the input).
    fn slope(self, x: f32, y: f32) -> f32 {
        match self {
            Self::Relu6 => f32::from(u8::from(y > 0.0 && y < 6.0)),
            Self::Elu => {
                if y < 0.0 {
                    y + 1.0
                } else {
                    1.0
                }
            }
            Self::Selu => {
                if y < 0.0 {
                    y + SELU_SCALE_ALPHA
                } else {
                    SELU_SCALE
                }
            }
            Self::LeakyRelu => {
                if y > 0.0 {
                    1.0
                } else {
                    LEAKY_SLOPE
                }
            }
            Self::Softplus => kernels::sigmoid_scalar(x),
            Self::Silu => {
                let s = kernels::sigmoid_scalar(x);
                s * (1.0 + x * (1.0 - s))
            }
            // d/dx (0.5x)·erfc(−cx) = 0.5·erfc(−cx) + 0.5x·(2/√π)·c·e^{−(cx)²}
            Self::Gelu => {
                let u = (-x) * GELU_C;
                0.5 * libm::erfcf(u) + (0.5 * x) * (TWO_OVER_SQRT_PI * GELU_C * (-(u * u)).exp())
            }
            Self::HardSigmoid => f32::from(u8::from(y > 0.0 && y < 1.0)) * (1.0 / 6.0),
            Self::Softsign => {
                let d = x.abs() + 1.0;
                1.0 / (d * d)
            }
            // tanh(sp) + x·(1 − tanh²(sp))·σ(x), sp = softplus(x)
            Self::Mish => {
                let t = softplus(x).tanh();
                t + x * (1.0 - t * t) * kernels::sigmoid_scalar(x)
            }
            Self::Exponential => y,
            Self::Linear => 1.0,
            Self::Relu => f32::from(u8::from(y > 0.0)),
            Self::Sigmoid => y * (1.0 - y),
            Self::Tanh => 1.0 - y * y,
            Self::Softmax => unreachable!("softmax is row-wise"),
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
                // Subnormal probabilities flushed, as under TensorFlow's flush-to-zero.
                Self::Sigmoid => y.iter_mut().zip(z.iter()).for_each(|(y, &z)| *y = flush(kernels::sigmoid_scalar(z))),
                Self::Tanh => y.iter_mut().zip(z.iter()).for_each(|(y, &z)| *y = z.tanh()),
                Self::Softmax => {
                    y.copy_from_slice(z);
                    kernels::softmax_rows(y, cols);
                    y.iter_mut().for_each(|v| *v = flush(*v));
                }
                other => y.iter_mut().zip(z.iter()).for_each(|(y, &z)| *y = other.scalar(z)),
            }
        }
    }

    /// Turns `grad` (w.r.t. the activation's output `out`) into the gradient w.r.t. its
    /// input, in place, as TensorFlow's gradients compute it: from the output, or, for the
    /// activations that [`need the input`](Activation::needs_input), from `input` (the
    /// pre-activation values, same layout). Blocks of rows go to `par`'s threads.
    ///
    /// # Panics
    /// When `input` is `None` for an activation that needs it: a layer using one keeps its
    /// pre-activation values.
    pub fn backward(self, input: Option<&[f32]>, out: &[f32], grad: &mut [f32], cols: usize, par: Parallelism) {
        if self == Self::Linear {
            return;
        }
        assert!(
            input.is_some() || !self.needs_input(),
            "activation `{}` needs its input for the gradient",
            self.keras_name()
        );
        let blocks = row_blocks(par, grad.len() / cols.max(1), MIN_VALUES_PER_THREAD / cols.max(1));
        for_row_blocks(par, grad, cols, &blocks, |r0, g| {
            let range = r0 * cols..r0 * cols + g.len();
            self.backward_rows(input.map(|x| &x[range.clone()]), &out[range], g, cols);
            // No subnormal gradient, as under TensorFlow's flush-to-zero (see `subnormal`).
            kiln_tensor::subnormal::flush_subnormals(g);
        });
    }

    fn backward_rows(self, input: Option<&[f32]>, out: &[f32], grad: &mut [f32], cols: usize) {
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
            other => match input {
                Some(x) => {
                    grad.iter_mut().zip(x).zip(out).for_each(|((g, &x), &y)| *g *= other.slope(x, y));
                }
                None => grad.iter_mut().zip(out).for_each(|(g, &y)| *g *= other.slope(f32::NAN, y)),
            },
        }
    }
}

/// TensorFlow's `softplus`: `x` above −T, `eˣ` below T, `log1p(eˣ)` between, T = −13.942385.
fn softplus(x: f32) -> f32 {
    if x > -SOFTPLUS_THRESHOLD {
        x
    } else if x < SOFTPLUS_THRESHOLD {
        x.exp()
    } else {
        x.exp().ln_1p()
    }
}

/// `min(x, 6)` keeping a NaN (`f32::min` returns the other operand): TF's `relu6` and
/// `hard_sigmoid` (`relu6(x + 3) / 6`) pass a NaN through, so a diverged model shows it.
fn at_most_six(x: f32) -> f32 {
    if x > 6.0 { 6.0 } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu6_and_hard_sigmoid_keep_nan_as_tf_does() {
        // TF: relu6([nan, 1, 7]) = [nan, 1, 6]; hard_sigmoid = relu6(x + 3) / 6.
        let relu6: Vec<f32> = [f32::NAN, 1.0, 7.0].iter().map(|&x| Activation::Relu6.scalar(x)).collect();
        assert!(relu6[0].is_nan() && relu6[1..] == [1.0, 6.0]);
        let hard: Vec<f32> = [f32::NAN, 0.0, 9.0].iter().map(|&x| Activation::HardSigmoid.scalar(x)).collect();
        assert!(hard[0].is_nan() && hard[1..] == [0.5, 1.0]);
    }

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
