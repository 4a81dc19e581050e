//! im2col and its adjoint col2im for NHWC samples.
//!
//! `col` has one row per output pixel (image-major, then `oy`, then `ox`) holding the
//! `kh·kw` contiguous `c`-vectors of its receptive field in `(ki, kj, c)` order — the row
//! order of a Keras kernel `[kh, kw, c, cout]` reshaped to `[kh·kw·c, cout]`, so
//! `out = col · K` needs no transpose. Both functions walk the same segments
//! ([`for_each_segment`]), which makes col2im the exact adjoint of im2col by construction.

use super::Window2d;
use crate::{View, ViewMut};

/// Calls `f(col_offset, input_offset, len)` for every run of `len` values of `col` rows
/// `first_row..first_row + rows` (offsets relative to the block's first row): `input_offset`
/// is the offset into the batch's flat input, `None` where the run lies in padding.
#[inline(always)]
fn for_each_segment(g: &Window2d, first_row: usize, rows: usize, mut f: impl FnMut(usize, Option<usize>, usize)) {
    let [h, w, c] = g.input();
    let [kh, kw] = g.kernel();
    let [sh, sw] = g.strides();
    let [dh, dw] = g.dilation();
    let [top, left] = g.pad_before();
    let [_, ow] = g.output();
    let (pixels, in_len, cw) = (g.output_pixels(), g.input_len(), g.col_width());
    for r in 0..rows {
        let p = first_row + r;
        let (image, pixel) = (p / pixels, p % pixels);
        let (oy, ox) = (pixel / ow, pixel % ow);
        let row_at = r * cw;
        let x0 = ox * sw; // padded column of the window's first cell
        for ki in 0..kh {
            let seg = row_at + ki * kw * c;
            let Some(iy) = Window2d::unpad(oy * sh + ki * dh, top, h) else {
                f(seg, None, kw * c);
                continue;
            };
            let line = image * in_len + iy * w * c;
            if dw == 1 && x0 >= left && x0 - left + kw <= w {
                // The whole kernel row is inside the image and contiguous: one run.
                f(seg, Some(line + (x0 - left) * c), kw * c);
                continue;
            }
            for kj in 0..kw {
                let at = Window2d::unpad(x0 + kj * dw, left, w).map(|ix| line + ix * c);
                f(seg + kj * c, at, c);
            }
        }
    }
}

/// Checks the shapes shared by [`im2col`] and [`col2im`].
fn check(g: &Window2d, images: usize, image_cols: usize, col_rows: usize, col_cols: usize, first_row: usize) {
    assert_eq!(image_cols, g.input_len(), "im2col: input rows must hold h·w·c values");
    assert_eq!(col_cols, g.col_width(), "im2col: col rows must hold kh·kw·c values");
    let total = images * g.output_pixels();
    assert!(first_row + col_rows <= total, "im2col: col rows {first_row}+{col_rows} exceed {total} output pixels");
}

/// Writes `col` rows for output pixels `first_row..first_row + col.rows` of the batch `x`
/// (`[images, h·w·c]`): `col[r, (ki·kw + kj)·c + ch] = x[image, iy, ix, ch]` with
/// `iy = oy·sh + ki·dh − top`, `ix = ox·sw + kj·dw − left`, zero in padding.
pub fn im2col(col: ViewMut<'_>, x: View<'_>, g: &Window2d, first_row: usize) {
    check(g, x.rows, x.cols, col.rows, col.cols, first_row);
    let (dst, src) = (col.data, x.data);
    for_each_segment(g, first_row, col.rows, |at, from, len| match from {
        Some(i) => dst[at..at + len].copy_from_slice(&src[i..i + len]),
        None => dst[at..at + len].fill(0.0),
    });
}

/// The adjoint of [`im2col`]: adds each value of `dcol` (rows `first_row..`) into the input
/// cell it was copied from, `dx[image, iy, ix, ch] += dcol[r, …]`; padding is dropped.
/// Adds — the caller zeros `dx` first.
pub fn col2im(dx: ViewMut<'_>, dcol: View<'_>, g: &Window2d, first_row: usize) {
    check(g, dx.rows, dx.cols, dcol.rows, dcol.cols, first_row);
    let (dst, src) = (dx.data, dcol.data);
    for_each_segment(g, first_row, dcol.rows, |at, to, len| {
        if let Some(i) = to {
            dst[i..i + len].iter_mut().zip(&src[at..at + len]).for_each(|(d, &s)| *d += s);
        }
    });
}
