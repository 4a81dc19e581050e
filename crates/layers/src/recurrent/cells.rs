//! Activations of the recurrent cells and their derivatives from the output. The gates'
//! logistic and `tanh` are the vectorized [`kiln_tensor::vmath`] ones (within a few ulp,
//! as TensorFlow's own CPU kernels are); relu and linear are exact.

use kiln_tensor::{kernels, vmath};

use crate::Activation;

/// `act(x)` in place over a slice.
pub(super) fn apply_slice(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Linear => {}
        Activation::Relu => kernels::relu(x),
        Activation::Sigmoid => vmath::sigmoid(x),
        Activation::Tanh => vmath::tanh(x),
        _ => unreachable!("refused at build"),
    }
}

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

/// `out = act'(x)` from `y = act(x)`, elementwise ([`slope`] with the match hoisted out of
/// the loop, so the loop vectorizes).
pub(super) fn slope_slice(act: Activation, y: &[f32], out: &mut [f32]) {
    let out = &mut out[..y.len()];
    match act {
        Activation::Linear => out.fill(1.0),
        Activation::Relu => out.iter_mut().zip(y).for_each(|(o, &y)| *o = slope(Activation::Relu, y)),
        Activation::Sigmoid => out.iter_mut().zip(y).for_each(|(o, &y)| *o = y * (1.0 - y)),
        Activation::Tanh => out.iter_mut().zip(y).for_each(|(o, &y)| *o = 1.0 - y * y),
        _ => unreachable!("refused at build"),
    }
}

/// One sample's GRU step backward through `h = z·h₋ + (1 − z)·hh`, given the activated
/// gates, their slopes `s_z, s_r, s_h` and `dh`: `dz_z = dh·(h₋ − hh)·s_z` (also the
/// gradient of the recurrent product's z part, `di_z`), `dz_h = dh·(1 − z)·s_h`, the direct
/// path `tmp = z·dh`; with `reset_after` (`hh = act(x̂_h + r·ĥ_h)`, `inner_h = ĥ_h`) also
/// `dz_r = di_r = dz_h·ĥ_h·s_r` and `di_h = dz_h·r`. Written slices are separate arguments
/// so the loop vectorizes.
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
pub(super) fn gru_backward_row(
    [z, r, hh, h_prev, dh]: [&[f32]; 5],
    [s_z, s_r, s_h]: [&[f32]; 3],
    reset_after: Option<&[f32]>,
    dz_z: &mut [f32],
    dz_r: &mut [f32],
    dz_h: &mut [f32],
    di_z: &mut [f32],
    di_r: &mut [f32],
    di_h: &mut [f32],
    tmp: &mut [f32],
) {
    let n = tmp.len();
    let (z, r, hh, h_prev, dh) = (&z[..n], &r[..n], &hh[..n], &h_prev[..n], &dh[..n]);
    let (s_z, s_r, s_h) = (&s_z[..n], &s_r[..n], &s_h[..n]);
    let (dz_z, dz_h, di_z) = (&mut dz_z[..n], &mut dz_h[..n], &mut di_z[..n]);
    for j in 0..n {
        let dz_pre = dh[j] * (h_prev[j] - hh[j]) * s_z[j];
        dz_z[j] = dz_pre;
        dz_h[j] = dh[j] * (1.0 - z[j]) * s_h[j];
        di_z[j] = dz_pre;
        tmp[j] = z[j] * dh[j];
    }
    if let Some(inner_h) = reset_after {
        let (inner_h, dz_r, di_r, di_h) = (&inner_h[..n], &mut dz_r[..n], &mut di_r[..n], &mut di_h[..n]);
        for j in 0..n {
            let dr_pre = dz_h[j] * inner_h[j] * s_r[j];
            dz_r[j] = dr_pre;
            di_r[j] = dr_pre;
            di_h[j] = dz_h[j] * r[j];
        }
    }
}

/// An activation of the cells as a type: a loop generic over it is compiled once per
/// activation, with the choice hoisted out of the loop so the loop vectorizes. Each one
/// computes exactly what [`apply_slice`] and [`slope`] compute, bit for bit.
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
