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

/// One sample's LSTM step backward, given the activated gates `i, f, g, o`, their slopes
/// `s_*` and the slope `s_c` of `act(c)`: `dc += dh·o·s_c`; `dz_i = dc·g·s_i`,
/// `dz_f = dc·c₋·s_f`, `dz_g = dc·i·s_g`, `dz_o = dh·act(c)·s_o`; then `dc ← dc·f` for the
/// previous step. Every slice written is a separate argument: only then does the compiler
/// know it overlaps nothing else, and vectorize.
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
pub(super) fn lstm_backward_row(
    [ig, fg, g, og]: [&[f32]; 4],
    [s_i, s_f, s_g, s_o, s_c]: [&[f32]; 5],
    (c_prev, act_c, dh): (&[f32], &[f32], &[f32]),
    dc: &mut [f32],
    dzi: &mut [f32],
    dzf: &mut [f32],
    dzg: &mut [f32],
    dzo: &mut [f32],
) {
    let n = dc.len();
    // Slices of one known length, so the loop has no bounds checks.
    let (ig, fg, g, og) = (&ig[..n], &fg[..n], &g[..n], &og[..n]);
    let (s_i, s_f, s_g, s_o, s_c) = (&s_i[..n], &s_f[..n], &s_g[..n], &s_o[..n], &s_c[..n]);
    let (c_prev, act_c, dh) = (&c_prev[..n], &act_c[..n], &dh[..n]);
    let (dzi, dzf, dzg, dzo) = (&mut dzi[..n], &mut dzf[..n], &mut dzg[..n], &mut dzo[..n]);
    for j in 0..n {
        let d = dc[j] + dh[j] * og[j] * s_c[j];
        dzi[j] = d * g[j] * s_i[j];
        dzf[j] = d * c_prev[j] * s_f[j];
        dzg[j] = d * ig[j] * s_g[j];
        dzo[j] = dh[j] * act_c[j] * s_o[j];
        dc[j] = d * fg[j];
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
