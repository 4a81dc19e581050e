//! Scalar activations of the recurrent cells and their derivatives from the output, with
//! the same scalar functions Dense uses (so the bits match TensorFlow's as Dense's do).

use kiln_tensor::kernels;

use crate::Activation;

/// `act(x)` for one value.
pub(super) fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Linear => x,
        Activation::Relu => kernels::relu_scalar(x),
        Activation::Sigmoid => kernels::sigmoid_scalar(x),
        Activation::Tanh => x.tanh(),
        Activation::Softmax => unreachable!("refused at build"),
    }
}

/// `act'(x)` from `y = act(x)`, as TensorFlow's gradient kernels compute it.
pub(super) fn slope(act: Activation, y: f32) -> f32 {
    match act {
        Activation::Linear => 1.0,
        Activation::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Tanh => 1.0 - y * y,
        Activation::Softmax => unreachable!("refused at build"),
    }
}
