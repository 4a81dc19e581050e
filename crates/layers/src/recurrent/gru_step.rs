//! The GRU step's elementwise work, fused: one pass over a row's gates after each
//! recurrent product (forward), and one before the products into the previous state
//! (backward), with the activations' types known to the loop (see [`CellAct`]). The
//! operations and their order are Keras' cell's (`keras/src/layers/rnn/gru.py`,
//! `GRUCell.call`), so the bits are those of separate passes.

use super::cells::{self, CellAct, with_cell_acts};
use crate::Activation;

/// `reset_after`, after `ĥ = h₋·R` for a block of rows (`inner`, `[rows, 3u]`, gates z, r,
/// h): adds the recurrent bias to `ĥ` (kept: the backward reads `ĥ_h`), then
/// `z = rec(x̂_z + ĥ_z)`, `r = rec(x̂_r + ĥ_r)`, `hh = act(x̂_h + r·ĥ_h)` in place of `x̂`
/// in `gates`, and `h = z·h₋ + (1 − z)·hh`.
pub(super) fn forward_after(
    (rec, act): (Activation, Activation),
    u: usize,
    (gates, inner): (&mut [f32], &mut [f32]),
    b_rec: Option<&[f32]>,
    h_prev: &[f32],
    h_next: &mut [f32],
) {
    with_cell_acts!(rec, act, forward_after_rows(u, gates, inner, b_rec, h_prev, h_next));
}

/// Reset before (`reset_after=False`), after `h₋·R_zr` (`inner`, `[rows, 2u]`):
/// `z = rec(x̂_z + ·)`, `r = rec(x̂_r + ·)` in place in `gates`, and `rh = r·h₋`.
pub(super) fn reset_gates(rec: Activation, u: usize, gates: &mut [f32], inner: &[f32], h_prev: &[f32], rh: &mut [f32]) {
    with_cell_acts!(rec, Activation::Linear, reset_gates_rows(u, gates, inner, h_prev, rh));
}

/// Reset before, after `(r·h₋)·R_h` (`inner_h`, `[rows, u]`): `hh = act(x̂_h + ·)` in place
/// in `gates`, and `h = z·h₋ + (1 − z)·hh`.
pub(super) fn candidate(
    act: Activation,
    u: usize,
    gates: &mut [f32],
    inner_h: &[f32],
    h_prev: &[f32],
    h_next: &mut [f32],
) {
    with_cell_acts!(Activation::Linear, act, candidate_rows(u, gates, inner_h, h_prev, h_next));
}

/// Through `h = z·h₋ + (1 − z)·hh`, for a block of rows: `dz_z = di_z = dh·(h₋ − hh)·rec'(z)`,
/// `dz_h = dh·(1 − z)·act'(hh)`, the direct path `tmp = z·dh`; with `reset_after`
/// (`inner_h = ĥ_h`) also `dz_r = di_r = dz_h·ĥ_h·rec'(r)` and `di_h = dz_h·r`.
/// `dz` is `[rows, 3u]`, `d_inner` `[rows, 3u]` (or `[rows, 2u]`, reset before).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    (rec, act): (Activation, Activation),
    u: usize,
    (gates, inner, h_prev, dh): (&[f32], &[f32], &[f32], &[f32]),
    after: bool,
    dz: &mut [f32],
    d_inner: &mut [f32],
    tmp: &mut [f32],
) {
    with_cell_acts!(rec, act, backward_rows(u, (gates, inner, h_prev, dh), after, dz, d_inner, tmp));
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn forward_after_rows<R: CellAct, A: CellAct>(
    u: usize,
    gates: &mut [f32],
    inner: &mut [f32],
    b_rec: Option<&[f32]>,
    h_prev: &[f32],
    h_next: &mut [f32],
) {
    let rows = gates.chunks_exact_mut(3 * u).zip(inner.chunks_exact_mut(3 * u));
    for ((g, inr), (hp, hn)) in rows.zip(h_prev.chunks_exact(u).zip(h_next.chunks_exact_mut(u))) {
        let (gz, rest) = g.split_at_mut(u);
        let (gr, gh) = rest.split_at_mut(u);
        let (iz, rest) = inr.split_at_mut(u);
        let (ir, ih) = rest.split_at_mut(u);
        match b_rec {
            Some(b) => {
                let b = [&b[..u], &b[u..2 * u], &b[2 * u..3 * u]];
                forward_after_row::<R, A, true>(b, hp, gz, gr, gh, iz, ir, ih, hn);
            }
            // (`hp` stands in for the bias slices: loaded, never used.)
            None => forward_after_row::<R, A, false>([hp; 3], hp, gz, gr, gh, iz, ir, ih, hn),
        }
    }
}

/// One row of [`forward_after`]. Every slice written is a separate argument: only then
/// does the compiler know it overlaps nothing else, and vectorize (in arrays, it did not).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_after_row<R: CellAct, A: CellAct, const BIAS: bool>(
    [bz, br, bh]: [&[f32]; 3],
    hp: &[f32],
    gz: &mut [f32],
    gr: &mut [f32],
    gh: &mut [f32],
    iz: &mut [f32],
    ir: &mut [f32],
    ih: &mut [f32],
    hn: &mut [f32],
) {
    let n = hp.len();
    let (bz, br, bh) = (&bz[..n], &br[..n], &bh[..n]);
    let (gz, gr, gh, hn) = (&mut gz[..n], &mut gr[..n], &mut gh[..n], &mut hn[..n]);
    let (iz, ir, ih) = (&mut iz[..n], &mut ir[..n], &mut ih[..n]);
    let with_bias = |x: f32, b: f32| if BIAS { x + b } else { x };
    for j in 0..n {
        let (hz, hr, hh_in) = (with_bias(iz[j], bz[j]), with_bias(ir[j], br[j]), with_bias(ih[j], bh[j]));
        let z = R::apply(gz[j] + hz);
        let r = R::apply(gr[j] + hr);
        let hh = A::apply(gh[j] + r * hh_in);
        (iz[j], ir[j], ih[j]) = (hz, hr, hh_in);
        (gz[j], gr[j], gh[j]) = (z, r, hh);
        hn[j] = z * hp[j] + (1.0 - z) * hh;
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn reset_gates_rows<R: CellAct, A: CellAct>(
    u: usize,
    gates: &mut [f32],
    inner: &[f32],
    h_prev: &[f32],
    rh: &mut [f32],
) {
    let rows = gates.chunks_exact_mut(3 * u).zip(inner.chunks_exact(2 * u));
    for ((g, inr), (hp, rh)) in rows.zip(h_prev.chunks_exact(u).zip(rh.chunks_exact_mut(u))) {
        let (gz, rest) = g.split_at_mut(u);
        let gr = &mut rest[..u];
        let (iz, ir) = (&inr[..u], &inr[u..2 * u]);
        let (hp, rh) = (&hp[..u], &mut rh[..u]);
        for j in 0..u {
            let r = R::apply(gr[j] + ir[j]);
            (gz[j], gr[j]) = (R::apply(gz[j] + iz[j]), r);
            rh[j] = r * hp[j];
        }
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn candidate_rows<R: CellAct, A: CellAct>(
    u: usize,
    gates: &mut [f32],
    inner_h: &[f32],
    h_prev: &[f32],
    h_next: &mut [f32],
) {
    let rows = gates.chunks_exact_mut(3 * u).zip(inner_h.chunks_exact(u));
    for ((g, ih), (hp, hn)) in rows.zip(h_prev.chunks_exact(u).zip(h_next.chunks_exact_mut(u))) {
        let (gz, rest) = g.split_at_mut(u);
        let gh = &mut rest[u..2 * u];
        let (gz, ih, hp, hn) = (&gz[..u], &ih[..u], &hp[..u], &mut hn[..u]);
        for j in 0..u {
            let hh = A::apply(gh[j] + ih[j]);
            gh[j] = hh;
            hn[j] = gz[j] * hp[j] + (1.0 - gz[j]) * hh;
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn backward_rows<R: CellAct, A: CellAct>(
    u: usize,
    (gates, inner, h_prev, dh): (&[f32], &[f32], &[f32], &[f32]),
    after: bool,
    dz: &mut [f32],
    d_inner: &mut [f32],
    tmp: &mut [f32],
) {
    let inner_cols = if after { 3 * u } else { 2 * u };
    let saved = gates.chunks_exact(3 * u).zip(h_prev.chunks_exact(u)).zip(dh.chunks_exact(u));
    let grads = dz.chunks_exact_mut(3 * u).zip(d_inner.chunks_exact_mut(inner_cols)).zip(tmp.chunks_exact_mut(u));
    for (i, (((g, hp), dh), ((dzr, dir), tmp))) in saved.zip(grads).enumerate() {
        let (dz_z, rest) = dzr.split_at_mut(u);
        let (dz_r, dz_h) = rest.split_at_mut(u);
        let (di_z, rest) = dir.split_at_mut(u);
        let (di_r, di_h) = rest.split_at_mut(u);
        let gates = [&g[..u], &g[u..2 * u], &g[2 * u..], hp, dh];
        if after {
            let inner_h = &inner[i * inner_cols + 2 * u..(i + 1) * inner_cols];
            backward_row::<R, A, true>(gates, inner_h, dz_z, dz_r, dz_h, di_z, di_r, di_h, tmp);
        } else {
            // (`hp` stands in for `ĥ_h`, which is then never read.)
            backward_row::<R, A, false>(gates, hp, dz_z, dz_r, dz_h, di_z, di_r, di_h, tmp);
        }
    }
}

/// One row of [`backward`] (written slices as separate arguments, as in
/// [`forward_after_row`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<R: CellAct, A: CellAct, const AFTER: bool>(
    [z, r, hh, h_prev, dh]: [&[f32]; 5],
    inner_h: &[f32],
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
    let (dz_z, dz_h, di_z, tmp) = (&mut dz_z[..n], &mut dz_h[..n], &mut di_z[..n], &mut tmp[..n]);
    // Through the update gate and the candidate; returns `dz_h`.
    let mut common = |j: usize| {
        let dz_pre = dh[j] * (h_prev[j] - hh[j]) * R::slope(z[j]);
        let dzh = dh[j] * (1.0 - z[j]) * A::slope(hh[j]);
        (dz_z[j], dz_h[j], di_z[j]) = (dz_pre, dzh, dz_pre);
        tmp[j] = z[j] * dh[j];
        dzh
    };
    if AFTER {
        // (Reset before, `d_inner` has no `h` part and `dz_r` comes later: not sliced.)
        let (inner_h, dz_r, di_r, di_h) = (&inner_h[..n], &mut dz_r[..n], &mut di_r[..n], &mut di_h[..n]);
        for j in 0..n {
            let dzh = common(j);
            let dr_pre = dzh * inner_h[j] * R::slope(r[j]);
            (dz_r[j], di_r[j], di_h[j]) = (dr_pre, dr_pre, dzh * r[j]);
        }
    } else {
        for j in 0..n {
            common(j);
        }
    }
}
