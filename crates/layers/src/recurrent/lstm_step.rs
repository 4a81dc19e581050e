//! The LSTM step's elementwise work, fused: one pass over a row's gates after its
//! recurrent product (forward), and one before the product into the previous state
//! (backward). Separate passes — bias, each gate's activation, `c`, `act(c)`, `h`, then
//! the slopes — each read and wrote the row again; here every value is loaded once.
//! The arithmetic is the same operations in the same order as Keras' cell
//! (`keras/src/layers/rnn/lstm.py`, `LSTMCell.call`), so the bits are those of the
//! separate passes.

use super::cells::{self, CellAct, with_cell_acts};
use crate::Activation;

/// After `z = x·K + h₋·R` for a block of rows (`[rows, 4u]`, gates i, f, c, o): adds the
/// bias (Keras adds it last), activates the gates in place, and writes
/// `c = f·c₋ + i·act(z_c)`, `act(c)` and `h = o·act(c)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    (rec, act): (Activation, Activation),
    u: usize,
    z: &mut [f32],
    bias: Option<&[f32]>,
    c_prev: &[f32],
    c_next: &mut [f32],
    a_c: &mut [f32],
    h_next: &mut [f32],
) {
    with_cell_acts!(rec, act, forward_rows(u, z, bias, c_prev, c_next, a_c, h_next));
}

/// From `dh` (into these rows' `h_t`) and `dc` (from the next step), the gradients `dz` of
/// the pre-activations (`[rows, 4u]`); leaves `dc·f` in `dc` for the previous step:
/// `d = dc + dh·o·act'(c)`; `dz_i = d·g·rec'(i)`, `dz_f = d·c₋·rec'(f)`,
/// `dz_g = d·i·act'(g)`, `dz_o = dh·act(c)·rec'(o)`.
pub(super) fn backward(
    (rec, act): (Activation, Activation),
    u: usize,
    (gates, a_c, c_prev): (&[f32], &[f32], &[f32]),
    dz: &mut [f32],
    dc: &mut [f32],
    dh: &[f32],
) {
    with_cell_acts!(rec, act, backward_rows(u, (gates, a_c, c_prev), dz, dc, dh));
}

#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn forward_rows<R: CellAct, A: CellAct>(
    u: usize,
    z: &mut [f32],
    bias: Option<&[f32]>,
    c_prev: &[f32],
    c_next: &mut [f32],
    a_c: &mut [f32],
    h_next: &mut [f32],
) {
    let rows = z.chunks_exact_mut(4 * u).zip(c_prev.chunks_exact(u));
    let outs = c_next.chunks_exact_mut(u).zip(a_c.chunks_exact_mut(u)).zip(h_next.chunks_exact_mut(u));
    for ((zr, cp), ((cn, ac), h)) in rows.zip(outs) {
        let (zi, rest) = zr.split_at_mut(u);
        let (zf, rest) = rest.split_at_mut(u);
        let (zg, zo) = rest.split_at_mut(u);
        match bias {
            Some(b) => {
                let b = [&b[..u], &b[u..2 * u], &b[2 * u..3 * u], &b[3 * u..4 * u]];
                forward_row::<R, A, true>(b, cp, zi, zf, zg, zo, cn, ac, h);
            }
            // (`cp` stands in for the bias slices: loaded, never used.)
            None => forward_row::<R, A, false>([cp; 4], cp, zi, zf, zg, zo, cn, ac, h),
        }
    }
}

/// One row of [`forward`]. Every slice written is a separate argument, so the compiler
/// knows they overlap nothing and vectorizes the loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_row<R: CellAct, A: CellAct, const BIAS: bool>(
    [bi, bf, bg, bo]: [&[f32]; 4],
    cp: &[f32],
    zi: &mut [f32],
    zf: &mut [f32],
    zg: &mut [f32],
    zo: &mut [f32],
    cn: &mut [f32],
    ac: &mut [f32],
    h: &mut [f32],
) {
    let n = cp.len();
    // Slices of one known length, so the loop has no bounds checks.
    let (bi, bf, bg, bo) = (&bi[..n], &bf[..n], &bg[..n], &bo[..n]);
    let (zi, zf, zg, zo) = (&mut zi[..n], &mut zf[..n], &mut zg[..n], &mut zo[..n]);
    let (cn, ac, h) = (&mut cn[..n], &mut ac[..n], &mut h[..n]);
    let pre = |z: f32, b: f32| if BIAS { z + b } else { z };
    for j in 0..n {
        let i = R::apply(pre(zi[j], bi[j]));
        let f = R::apply(pre(zf[j], bf[j]));
        let g = A::apply(pre(zg[j], bg[j]));
        let o = R::apply(pre(zo[j], bo[j]));
        let c = f * cp[j] + i * g;
        let a = A::apply(c);
        (zi[j], zf[j], zg[j], zo[j]) = (i, f, g, o);
        (cn[j], ac[j], h[j]) = (c, a, o * a);
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn backward_rows<R: CellAct, A: CellAct>(
    u: usize,
    (gates, a_c, c_prev): (&[f32], &[f32], &[f32]),
    dz: &mut [f32],
    dc: &mut [f32],
    dh: &[f32],
) {
    let rows = gates.chunks_exact(4 * u).zip(a_c.chunks_exact(u)).zip(c_prev.chunks_exact(u));
    let grads = dz.chunks_exact_mut(4 * u).zip(dc.chunks_exact_mut(u)).zip(dh.chunks_exact(u));
    for (((gr, ac), cp), ((dzr, dc), dh)) in rows.zip(grads) {
        let (dzi, rest) = dzr.split_at_mut(u);
        let (dzf, rest) = rest.split_at_mut(u);
        let (dzg, dzo) = rest.split_at_mut(u);
        let gates = [&gr[..u], &gr[u..2 * u], &gr[2 * u..3 * u], &gr[3 * u..]];
        backward_row::<R, A>(gates, (cp, ac, dh), dc, dzi, dzf, dzg, dzo);
    }
}

/// One row of [`backward`], the slopes computed where they are used (separate written
/// slices, as in [`forward_row`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<R: CellAct, A: CellAct>(
    [ig, fg, g, og]: [&[f32]; 4],
    (c_prev, act_c, dh): (&[f32], &[f32], &[f32]),
    dc: &mut [f32],
    dzi: &mut [f32],
    dzf: &mut [f32],
    dzg: &mut [f32],
    dzo: &mut [f32],
) {
    let n = dc.len();
    let (ig, fg, g, og) = (&ig[..n], &fg[..n], &g[..n], &og[..n]);
    let (c_prev, act_c, dh) = (&c_prev[..n], &act_c[..n], &dh[..n]);
    let (dzi, dzf, dzg, dzo) = (&mut dzi[..n], &mut dzf[..n], &mut dzg[..n], &mut dzo[..n]);
    for j in 0..n {
        let d = dc[j] + dh[j] * og[j] * A::slope(act_c[j]);
        dzi[j] = d * g[j] * R::slope(ig[j]);
        dzf[j] = d * c_prev[j] * R::slope(fg[j]);
        dzg[j] = d * ig[j] * A::slope(g[j]);
        dzo[j] = dh[j] * act_c[j] * R::slope(og[j]);
        dc[j] = d * fg[j];
    }
}
