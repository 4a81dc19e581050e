//! Convolution and pooling kernels on NHWC activations (one sample per row, `h·w·c` values).
//!
//! - [`Window2d`] / [`Padding`]: output sizes and TF's `SAME` split, checked once at build time.
//! - [`im2col`] / [`col2im`]: the receptive fields as a matrix, and the adjoint scatter-add.
//! - [`conv2d_forward`], [`conv2d_backward_kernel`], [`conv2d_backward_input`]: im2col per
//!   fixed block of output pixels + one faer product, with the kernel in Keras' layout
//!   `[kh, kw, cin, cout]` read as `[kh·kw·cin, cout]` (no transpose). The bias gradient is
//!   [`crate::kernels::column_sums_blocked`] over `dy` read as `[images·oh·ow, cout]`.
//! - Pooling ([`max_pool_forward`], [`avg_pool_forward`], …): TF's first-maximum argmax and
//!   averages over real (non-padded) cells; global pooling is a [`Window2d::global`] window.
//!
//! Nothing here allocates: callers size `col` scratch with [`Window2d::col_scratch_len`] and
//! argmax buffers with [`Window2d::output_len`] when the layer is built. 1-D layers use the
//! same kernels with `h = 1` ([`Window2d::new_1d`]).
//!
//! ```
//! use kiln_tensor::conv::{conv2d_forward, max_pool_forward};
//! use kiln_tensor::{Matrix, Padding, Parallelism, Window2d};
//!
//! // One 3×3×1 image, a 2×2 kernel of ones, valid: each output sums a 2×2 patch.
//! let g = Window2d::new([3, 3, 1], [2, 2], [1, 1], [1, 1], Padding::Valid).unwrap();
//! let x = Matrix::from_vec(1, 9, (1..=9).map(|v| v as f32).collect()).unwrap();
//! let k = Matrix::from_vec(g.col_width(), 1, vec![1.0; 4]).unwrap();
//! let mut y = Matrix::zeros(1, g.output_len(1));
//! let mut scratch = vec![0.0; g.col_scratch_len(1)];
//! conv2d_forward(y.view_mut(), x.view(), k.view(), &g, &mut scratch, Parallelism::Sequential);
//! assert_eq!(y.as_slice(), &[12.0, 16.0, 24.0, 28.0]);
//!
//! // 2×2 max pooling, same padding on the odd input: out 2×2, the odd pixel padded at the end.
//! let p = Window2d::pool([3, 3, 1], [2, 2], [2, 2], Padding::Same).unwrap();
//! let (mut m, mut arg) = (Matrix::zeros(1, p.output_len(1)), vec![0u32; 4]);
//! max_pool_forward(m.view_mut(), Some(&mut arg), x.view(), &p);
//! assert_eq!((m.as_slice(), &arg[..]), (&[5.0, 6.0, 8.0, 9.0][..], &[4u32, 5, 7, 8][..]));
//! ```

mod geometry;
mod im2col;
mod pooling;

pub use geometry::{Padding, Window2d};
pub use im2col::{col2im, im2col};
pub use pooling::{avg_pool_backward, avg_pool_forward, global_max_backward, max_pool_backward, max_pool_forward};

use crate::{Accumulate, Parallelism, View, ViewMut, matmul};

/// Bytes of `col` scratch one block may use (~L2): 1 MiB.
pub const COL_BLOCK_BYTES: usize = 1 << 20;

impl Window2d {
    /// Rows of `col` per block: `max(1, COL_BLOCK_BYTES / (4·kh·kw·c))`. It depends on the
    /// geometry only, never on threads or batch size, so block sums (and bits) are fixed.
    pub fn col_block_rows(&self) -> usize {
        (COL_BLOCK_BYTES / (std::mem::size_of::<f32>() * self.col_width())).max(1)
    }

    /// `f32`s of scratch the conv functions need for a batch of `images`:
    /// `min(images·oh·ow, col_block_rows)·kh·kw·c`, or 0 when [`Window2d::is_pointwise`].
    pub fn col_scratch_len(&self, images: usize) -> usize {
        if self.is_pointwise() {
            return 0;
        }
        (images * self.output_pixels()).min(self.col_block_rows()) * self.col_width()
    }

    /// The window of global pooling over a whole `[h, w, c]` sample (Keras'
    /// `GlobalAveragePooling2D`/`GlobalMaxPooling2D`: mean/max over axes 1, 2; output `[c]`).
    pub fn global(input: [usize; 3]) -> Result<Self, crate::ShapeError> {
        Self::pool(input, [input[0], input[1]], [1, 1], Padding::Valid)
    }
}

/// Checks shapes shared by the conv functions; returns `(output rows, cout)`.
fn check(g: &Window2d, images: usize, x_cols: usize, kernel: View<'_>, y_rows: usize, y_cols: usize) -> (usize, usize) {
    assert_eq!(x_cols, g.input_len(), "conv: input rows must hold h·w·cin values");
    assert_eq!(kernel.rows, g.col_width(), "conv: kernel must be [kh·kw·cin, cout]");
    assert_eq!((y_rows, y_cols), (images, g.output_len(kernel.cols)), "conv: output must be [images, oh·ow·cout]");
    (images * g.output_pixels(), kernel.cols)
}

/// Fixed blocks `(first_row, rows)` of `total` col rows, `g.col_block_rows()` each.
fn blocks(g: &Window2d, total: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = g.col_block_rows();
    (0..total).step_by(step).map(move |r0| (r0, step.min(total - r0)))
}

/// The scratch prefix holding `rows` col rows (panics when the caller sized it too small).
fn col_block<'a>(scratch: &'a mut [f32], g: &Window2d, rows: usize) -> &'a mut [f32] {
    let need = rows * g.col_width();
    assert!(scratch.len() >= need, "conv: scratch holds {} values, a block needs {need}", scratch.len());
    &mut scratch[..need]
}

/// Fewest `f32`s of `col` worth splitting over threads (below, spawning costs more).
const PAR_MIN_VALUES: usize = 1 << 15;

/// [`im2col`] of `col.len() / kh·kw·c` rows from `first_row`, split by rows over `par`'s
/// threads (a pure copy: the bits never depend on the split).
fn im2col_par(col: &mut [f32], x: View<'_>, g: &Window2d, first_row: usize, par: Parallelism) {
    let cw = g.col_width();
    let rows = col.len() / cw;
    let min_rows = PAR_MIN_VALUES.div_ceil(cw);
    let ranges = crate::pool::row_blocks(par, rows, min_rows);
    crate::pool::for_row_blocks(par, col, cw, &ranges, |start, block| {
        im2col(ViewMut { rows: block.len() / cw, cols: cw, data: block }, x, g, first_row + start);
    });
}

/// [`col2im`] of `dcol` (rows from `first_row`) into the batch `dx`, split by image over
/// `par`'s threads: each image's cells receive their rows in the same order as on one
/// thread, so the bits never depend on the split (and no two threads touch one image).
fn col2im_par(dx: &mut [f32], dcol: View<'_>, g: &Window2d, first_row: usize, par: Parallelism) {
    let (pixels, in_len, cw) = (g.output_pixels(), g.input_len(), g.col_width());
    let (first_image, end_image) = (first_row / pixels, (first_row + dcol.rows).div_ceil(pixels));
    let images = &mut dx[first_image * in_len..end_image * in_len];
    let min_images = PAR_MIN_VALUES.div_ceil(pixels * cw);
    let ranges = crate::pool::row_blocks(par, end_image - first_image, min_images);
    crate::pool::for_row_blocks(par, images, in_len, &ranges, |start, block| {
        // The dcol rows of images first_image + start .. + block images, clipped to this block.
        let (b0, b1) = (first_image + start, first_image + start + block.len() / in_len);
        let (r0, r1) = ((b0 * pixels).max(first_row), (b1 * pixels).min(first_row + dcol.rows));
        let rows = View { rows: r1 - r0, cols: cw, data: &dcol.data[(r0 - first_row) * cw..(r1 - first_row) * cw] };
        // col2im addresses images from 0: shift the geometry's image origin to b0.
        col2im(ViewMut { rows: b1 - b0, cols: in_len, data: block }, rows, g, r0 - b0 * pixels);
    });
}

/// `out = conv(x, kernel)` without bias: `out [images·oh·ow, cout] = col(x) · K`, `K` the
/// Keras kernel `[kh, kw, cin, cout]` as `[kh·kw·cin, cout]`; overwrites `out`
/// (`[images, oh·ow·cout]`). `scratch` needs [`Window2d::col_scratch_len`] values.
pub fn conv2d_forward(
    out: ViewMut<'_>,
    x: View<'_>,
    kernel: View<'_>,
    g: &Window2d,
    scratch: &mut [f32],
    par: Parallelism,
) {
    let (rows, cout) = check(g, x.rows, x.cols, kernel, out.rows, out.cols);
    let cin = g.input()[2];
    if g.is_pointwise() {
        // The input rows regrouped as [images·h·w, cin] already are the col matrix.
        let x = View { rows, cols: cin, data: x.data };
        return matmul::ab(ViewMut { rows, cols: cout, data: out.data }, x, kernel, Accumulate::Replace, par);
    }
    let cw = g.col_width();
    for (r0, n) in blocks(g, rows) {
        let col = col_block(scratch, g, n);
        im2col_par(col, x, g, r0, par);
        let dst = ViewMut { rows: n, cols: cout, data: &mut out.data[r0 * cout..(r0 + n) * cout] };
        matmul::ab(dst, View { rows: n, cols: cw, data: col }, kernel, Accumulate::Replace, par);
    }
}

/// Kernel gradient `dk (accum) colᵀ·dy` (`dk [kh·kw·cin, cout]`, `dy [images, oh·ow·cout]`):
/// the first block applies `accum`, later blocks add, over a block partition fixed by the
/// geometry (bits do not depend on `par`). `col` is recomputed from `x` into `scratch`.
pub fn conv2d_backward_kernel(
    dk: ViewMut<'_>,
    x: View<'_>,
    dy: View<'_>,
    g: &Window2d,
    scratch: &mut [f32],
    accum: Accumulate,
    par: Parallelism,
) {
    let kernel_shape = View { rows: dk.rows, cols: dk.cols, data: &[] };
    let (rows, cout) = check(g, x.rows, x.cols, kernel_shape, dy.rows, dy.cols);
    let (cin, cw) = (g.input()[2], g.col_width());
    if g.is_pointwise() {
        let x = View { rows, cols: cin, data: x.data };
        return matmul::atb(dk, x, View { rows, cols: cout, data: dy.data }, accum, par);
    }
    for (k, (r0, n)) in blocks(g, rows).enumerate() {
        let col = col_block(scratch, g, n);
        im2col_par(col, x, g, r0, par);
        let dy_block = View { rows: n, cols: cout, data: &dy.data[r0 * cout..(r0 + n) * cout] };
        let dst = ViewMut { rows: dk.rows, cols: dk.cols, data: &mut *dk.data };
        let acc = if k == 0 { accum } else { Accumulate::Add };
        matmul::atb(dst, View { rows: n, cols: cw, data: col }, dy_block, acc, par);
    }
}

/// Input gradient `dx += col2im(dy · Kᵀ)` (`dx [images, h·w·cin]`); adds — the caller
/// zeros `dx` (or skips this call for a model's first layer).
pub fn conv2d_backward_input(
    dx: ViewMut<'_>,
    dy: View<'_>,
    kernel: View<'_>,
    g: &Window2d,
    scratch: &mut [f32],
    par: Parallelism,
) {
    let (rows, cout) = check(g, dx.rows, dx.cols, kernel, dy.rows, dy.cols);
    let (cin, cw) = (g.input()[2], g.col_width());
    if g.is_pointwise() {
        let dx = ViewMut { rows, cols: cin, data: dx.data };
        return matmul::abt(dx, View { rows, cols: cout, data: dy.data }, kernel, Accumulate::Add, par);
    }
    for (r0, n) in blocks(g, rows) {
        let dcol = col_block(scratch, g, n);
        let dy_block = View { rows: n, cols: cout, data: &dy.data[r0 * cout..(r0 + n) * cout] };
        matmul::abt(ViewMut { rows: n, cols: cw, data: &mut *dcol }, dy_block, kernel, Accumulate::Replace, par);
        col2im_par(&mut *dx.data, View { rows: n, cols: cw, data: dcol }, g, r0, par);
    }
}
