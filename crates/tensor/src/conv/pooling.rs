//! Max and average pooling over NHWC samples, with TF's tie and padding rules.
//!
//! Max pooling follows TF's CPU `SpatialMaxPoolWithArgMaxHelper`
//! (`tensorflow/core/kernels/maxpooling_op.cc`), which `MaxPoolGrad` uses: per output the
//! first real cell in row-major window order is taken unconditionally, and a later cell
//! replaces it only when `best < value`. So ties go to the **first** maximum, which gets
//! the whole gradient, and NaN is chosen only as the first real cell (then it sticks,
//! since `NaN < v` is false); a later NaN is skipped. TF's forward `MaxPool` op itself goes
//! through Eigen's `cwiseMax` or oneDNN, whose NaN handling is unspecified; kiln returns the
//! value at the recorded argmax so forward and backward always agree.
//!
//! Average pooling divides by the count of real cells (Keras' numpy backend pools a ones
//! tensor for `window_counts`, `keras/src/backend/numpy/nn.py`; TF `avg_pool` and ONNX
//! `count_include_pad=0` agree). Padded cells never enter max or average.

use std::ops::Range;

use super::Window2d;
use crate::{View, ViewMut};

/// The real (unpadded) input range on one axis of the window at output `o`.
#[inline]
fn clipped(o: usize, stride: usize, k: usize, before: usize, n: usize) -> Range<usize> {
    let start = o * stride;
    start.saturating_sub(before)..(start + k).saturating_sub(before).min(n)
}

/// Calls `f(out_offset, rows, cols)` for every output pixel of one sample, with its real
/// window `rows × cols` and `out_offset = (oy·ow + ox)·c` its first value in the output sample.
#[inline(always)]
fn for_each_window(g: &Window2d, mut f: impl FnMut(usize, Range<usize>, Range<usize>)) {
    let [h, w, c] = g.input();
    let [kh, kw] = g.kernel();
    let [sh, sw] = g.strides();
    let [top, left] = g.pad_before();
    let [oh, ow] = g.output();
    for oy in 0..oh {
        let ys = clipped(oy, sh, kh, top, h);
        for ox in 0..ow {
            let xs = clipped(ox, sw, kw, left, w);
            // Same/valid guarantee a real cell in every window (pad before < k, see geometry).
            debug_assert!(!ys.is_empty() && !xs.is_empty());
            f((oy * ow + ox) * c, ys.clone(), xs);
        }
    }
}

/// Checks pooling shapes: `x`/`dx` `[images, h·w·c]`, `y`/`dy` `[images, oh·ow·c]`.
fn check(g: &Window2d, input: (usize, usize), output: (usize, usize)) {
    // The window walk below ignores dilation: a conv geometry with dilation is not a pool.
    assert_eq!(g.dilation(), [1, 1], "pool: windows have no dilation (build them with Window2d::pool)");
    assert_eq!(input.1, g.input_len(), "pool: input rows must hold h·w·c values");
    assert_eq!(output, (input.0, g.output_len(g.input()[2])), "pool: output must be [images, oh·ow·c]");
}

/// Max pooling: `out[o, ch] = max` over the real cells of window `o` (no dilation), and, when
/// given, `argmax[o, ch]` = the index `(iy·w + ix)·c + ch` of that cell within its sample
/// (TF's `include_batch_in_index=False`). First maximum wins ties; NaN as in the module docs.
/// `argmax` has `images·oh·ow·c` entries ([`Window2d::output_len`] per image).
pub fn max_pool_forward(out: ViewMut<'_>, mut argmax: Option<&mut [u32]>, x: View<'_>, g: &Window2d) {
    check(g, (x.rows, x.cols), (out.rows, out.cols));
    if let Some(a) = &argmax {
        assert_eq!(a.len(), out.data.len(), "pool: argmax needs one index per output value");
    }
    let [_, w, c] = g.input();
    let (in_len, out_len) = (x.cols, out.cols);
    for (image, (src, dst)) in
        x.data.chunks_exact(in_len.max(1)).zip(out.data.chunks_exact_mut(out_len.max(1))).enumerate()
    {
        let mut arg = argmax.as_deref_mut().map(|a| &mut a[image * out_len..(image + 1) * out_len]);
        for_each_window(g, |at, ys, xs| {
            let best = &mut dst[at..at + c];
            let mut first = true;
            let mut arg = arg.as_deref_mut().map(|a| &mut a[at..at + c]);
            for iy in ys {
                for ix in xs.clone() {
                    let cell = (iy * w + ix) * c;
                    let v = &src[cell..cell + c];
                    if first {
                        best.copy_from_slice(v);
                        if let Some(a) = arg.as_deref_mut() {
                            a.iter_mut().enumerate().for_each(|(ch, a)| *a = (cell + ch) as u32);
                        }
                        first = false;
                        continue;
                    }
                    for ch in 0..c {
                        // `best < v` exactly as TF: ties keep the first, NaN never replaces.
                        if best[ch] < v[ch] {
                            best[ch] = v[ch];
                            if let Some(a) = arg.as_deref_mut() {
                                a[ch] = (cell + ch) as u32;
                            }
                        }
                    }
                }
            }
        });
    }
}

/// Max pooling backward: `dx[image, argmax[o]] += dy[image, o]` for every output value `o`
/// (the one input each output came from); adds — the caller zeros `dx`. `argmax` is what
/// [`max_pool_forward`] recorded (indices within a sample), so this also serves global max.
pub fn max_pool_backward(dx: ViewMut<'_>, dy: View<'_>, argmax: &[u32]) {
    assert_eq!(dx.rows, dy.rows, "pool: dx and dy need the same images");
    assert_eq!(argmax.len(), dy.data.len(), "pool: argmax needs one index per output value");
    let (in_len, out_len) = (dx.cols.max(1), dy.cols.max(1));
    for ((d, g), a) in
        dx.data.chunks_exact_mut(in_len).zip(dy.data.chunks_exact(out_len)).zip(argmax.chunks_exact(out_len))
    {
        // Indexing the sample's row (not the batch) keeps a bad index from leaking across samples.
        g.iter().zip(a).for_each(|(&g, &i)| d[i as usize] += g);
    }
}

/// Global max pooling backward as TensorFlow differentiates `reduce_max` (Keras'
/// `GlobalMaxPooling*` is `ops.max`): each channel's `dy` is split equally among the
/// positions holding its maximum, `(1/n)·dy` for `n` ties (math_grad.py `_MaxOrMinGrad`:
/// indicators divided by their count, times the gradient). The maximum is found as
/// [`max_pool_forward`] finds it. `x` holds each image as `positions × channels`; adds —
/// the caller zeros `dx`.
pub fn global_max_backward(dx: ViewMut<'_>, dy: View<'_>, x: View<'_>, channels: usize) {
    assert_eq!((dx.rows, dx.cols), (x.rows, x.cols), "pool: dx and x need the same shape");
    assert_eq!((dy.rows, dy.cols), (x.rows, channels), "pool: dy needs one value per channel");
    let (in_len, c) = (x.cols.max(1), channels.max(1));
    for ((d, g), v) in dx.data.chunks_exact_mut(in_len).zip(dy.data.chunks_exact(c)).zip(x.data.chunks_exact(in_len)) {
        for ch in 0..channels {
            let column = || v[ch..].iter().step_by(c);
            // `best < v` from the first, as the forward pass: ties keep it, NaN never wins.
            let best = column().skip(1).fold(v[ch], |best, &y| if best < y { y } else { best });
            let ties = column().filter(|&&y| y == best).count();
            let share = (1.0 / ties as f32) * g[ch];
            for (dxi, &y) in d[ch..].iter_mut().step_by(c).zip(column()) {
                if y == best {
                    *dxi += share;
                }
            }
        }
    }
}

/// Average pooling: `out[o, ch] = (Σ real cells of window o) / count(real cells)`, summed in
/// row-major window order; overwrites `out`.
pub fn avg_pool_forward(out: ViewMut<'_>, x: View<'_>, g: &Window2d) {
    check(g, (x.rows, x.cols), (out.rows, out.cols));
    let [_, w, c] = g.input();
    let (in_len, out_len) = (x.cols.max(1), out.cols.max(1));
    for (src, dst) in x.data.chunks_exact(in_len).zip(out.data.chunks_exact_mut(out_len)) {
        for_each_window(g, |at, ys, xs| {
            let sum = &mut dst[at..at + c];
            sum.fill(0.0);
            let count = (ys.len() * xs.len()) as f32;
            for iy in ys {
                for ix in xs.clone() {
                    let cell = (iy * w + ix) * c;
                    sum.iter_mut().zip(&src[cell..cell + c]).for_each(|(s, &v)| *s += v);
                }
            }
            sum.iter_mut().for_each(|s| *s /= count);
        });
    }
}

/// Average pooling backward: every real cell of window `o` gets `dy[o, ch] / count(real
/// cells)` added (the adjoint of [`avg_pool_forward`]); adds — the caller zeros `dx`.
pub fn avg_pool_backward(dx: ViewMut<'_>, dy: View<'_>, g: &Window2d) {
    check(g, (dx.rows, dx.cols), (dy.rows, dy.cols));
    let [_, w, c] = g.input();
    let (in_len, out_len) = (dx.cols.max(1), dy.cols.max(1));
    for (dst, src) in dx.data.chunks_exact_mut(in_len).zip(dy.data.chunks_exact(out_len)) {
        for_each_window(g, |at, ys, xs| {
            let count = (ys.len() * xs.len()) as f32;
            let grad = &src[at..at + c];
            for iy in ys {
                for ix in xs.clone() {
                    let cell = (iy * w + ix) * c;
                    dst[cell..cell + c].iter_mut().zip(grad).for_each(|(d, &g)| *d += g / count);
                }
            }
        });
    }
}
