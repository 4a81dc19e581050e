//! Activations of the recurrent cells and their derivatives from the output. The gates'
//! logistic and `tanh` are the vectorized [`kiln_tensor::vmath`] ones (within a few ulp,
//! as TensorFlow's own CPU kernels are); relu and linear are exact.

use kiln_tensor::{kernels, vmath};

use crate::Activation;

/// `act'(x)` from `y = act(x)`, as TensorFlow's gradient kernels compute it.
#[inline(always)]
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
        _ => unreachable!("refused at build"),
    }
}

/// An activation of the cells as a type: a loop generic over it is compiled once per
/// activation, with the choice hoisted out of the loop so the loop vectorizes. Each one
/// computes exactly what the slice kernels (`kernels::relu`, `vmath::sigmoid`,
/// `vmath::tanh`) and [`slope`] compute, bit for bit.
pub(super) trait CellAct {
    /// `act(x)`.
    fn apply(x: f32) -> f32;
    /// `act'(x)` from `y = act(x)`, as [`slope`].
    fn slope(y: f32) -> f32;
}

/// `linear` as a type.
pub(super) struct Linear;
/// `relu` as a type.
pub(super) struct Relu;
/// The logistic function as a type.
pub(super) struct Sigmoid;
/// `tanh` as a type.
pub(super) struct Tanh;

impl CellAct for Linear {
    #[inline(always)]
    fn apply(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn slope(_: f32) -> f32 {
        1.0
    }
}

impl CellAct for Relu {
    #[inline(always)]
    fn apply(x: f32) -> f32 {
        kernels::relu_scalar(x)
    }
    #[inline(always)]
    fn slope(y: f32) -> f32 {
        if y > 0.0 { 1.0 } else { 0.0 }
    }
}

impl CellAct for Sigmoid {
    #[inline(always)]
    fn apply(x: f32) -> f32 {
        vmath::sigmoid_one(x)
    }
    #[inline(always)]
    fn slope(y: f32) -> f32 {
        y * (1.0 - y)
    }
}

impl CellAct for Tanh {
    #[inline(always)]
    fn apply(x: f32) -> f32 {
        vmath::tanh_one(x)
    }
    #[inline(always)]
    fn slope(y: f32) -> f32 {
        1.0 - y * y
    }
}

/// `$f::<R, A>(args…)` with `R` and `A` the [`CellAct`] types of the activations `$rec`
/// and `$act` (the four a cell accepts; the others are refused at build).
macro_rules! with_cell_acts {
    ($rec:expr, $act:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $rec {
            Activation::Sigmoid => with_cell_acts!(@act cells::Sigmoid, $act, $f, ($($arg),*)),
            Activation::Tanh => with_cell_acts!(@act cells::Tanh, $act, $f, ($($arg),*)),
            Activation::Relu => with_cell_acts!(@act cells::Relu, $act, $f, ($($arg),*)),
            Activation::Linear => with_cell_acts!(@act cells::Linear, $act, $f, ($($arg),*)),
            _ => unreachable!("refused at build"),
        }
    };
    (@act $r:ty, $act:expr, $f:ident, ($($arg:expr),*)) => {
        match $act {
            Activation::Sigmoid => $f::<$r, cells::Sigmoid>($($arg),*),
            Activation::Tanh => $f::<$r, cells::Tanh>($($arg),*),
            Activation::Relu => $f::<$r, cells::Relu>($($arg),*),
            Activation::Linear => $f::<$r, cells::Linear>($($arg),*),
            _ => unreachable!("refused at build"),
        }
    };
}
pub(super) use with_cell_acts;
