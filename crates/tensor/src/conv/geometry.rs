//! The geometry of a sliding window over an NHWC sample: output size and TF's padding split.
//!
//! Rules follow Keras 3.15.1 `keras/src/ops/operation_utils.py`
//! (`compute_conv_output_shape`, `compute_pooling_output_shape`), `layers/convolutional/
//! base_conv.py` (stride and dilation not both > 1) and `conv1d.py` (causal = left pad
//! `d·(k − 1)`, then valid), with TensorFlow's `SAME` split (the odd pixel at the end).

use crate::ShapeError;

/// How the input is padded before the window slides (Keras' `padding` argument; default
/// `Valid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: `out = floor((n − d·(k − 1) − 1) / s) + 1`; the kernel must fit.
    #[default]
    Valid,
    /// TF `SAME`: `out = ceil(n / s)`, zeros split `total // 2` before, the rest after.
    Same,
    /// Conv1D only: left pad `d·(k − 1)` on the width axis, then valid (`out = ceil(n / s)`).
    Causal,
}

/// A 2-D window (kernel or pool) sliding over NHWC samples of shape `[h, w, c]`; 1-D is `h = 1`.
///
/// Built only through [`Window2d::new`], [`Window2d::new_1d`] or [`Window2d::pool`], which
/// check every size, so the kernels that take it index without further checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window2d {
    input: [usize; 3],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    output: [usize; 2],
    /// `[top, left]` zeros before the input.
    pad_before: [usize; 2],
    /// `[bottom, right]` zeros after the input.
    pad_after: [usize; 2],
}

/// One spatial axis: `(out, pad_before, pad_after)` for size `n`, kernel `k`, stride `s`,
/// dilation `d` (all ≥ 1 here).
fn axis(n: usize, k: usize, s: usize, d: usize, padding: Padding, name: &str) -> Result<[usize; 3], ShapeError> {
    let err = |m: String| ShapeError(format!("{name} axis: {m}"));
    // The dilated extent d·(k − 1) + 1 of the window.
    let overflow = || err(format!("dilation {d} × (kernel {k} − 1) + 1 overflows"));
    let reach = d.checked_mul(k - 1).ok_or_else(overflow)?;
    let extent = reach.checked_add(1).ok_or_else(overflow)?;
    match padding {
        Padding::Valid => {
            if extent > n {
                return Err(err(format!(
                    "kernel {k} with dilation {d} spans {extent} cells, more than the input's {n} \
                     (valid padding: the output would be empty)"
                )));
            }
            Ok([(n - extent) / s + 1, 0, 0])
        }
        Padding::Same => {
            let out = n.div_ceil(s);
            // TF SAME (tensorflow/core/framework/kernel_shape_util.cc, Keras' torch backend
            // `_compute_padding_length`): total = max(0, (out − 1)·s + extent − n), odd pixel at the end.
            let needed = (out - 1)
                .checked_mul(s)
                .and_then(|v| v.checked_add(extent))
                .ok_or_else(|| err(format!("(out {out} − 1) × stride {s} + extent {extent} overflows")))?;
            let total = needed.saturating_sub(n);
            Ok([out, total / 2, total - total / 2])
        }
        Padding::Causal => Ok([n.div_ceil(s), reach, 0]),
    }
}

impl Window2d {
    /// A conv window over `input = [h, w, c]` with `kernel = [kh, kw]`, `strides`, `dilation`
    /// (Keras defaults 1) and `padding`.
    ///
    /// Refuses zero sizes, stride > 1 together with dilation > 1 on any axes (Keras
    /// `base_conv.py`), a valid kernel larger than the input, causal padding on a 2-D
    /// window (Keras has it for Conv1D only), and sizes that overflow or whose sample has
    /// more than `u32::MAX` values (max pooling records `u32` indices into the sample).
    pub fn new(
        input: [usize; 3],
        kernel: [usize; 2],
        strides: [usize; 2],
        dilation: [usize; 2],
        padding: Padding,
    ) -> Result<Self, ShapeError> {
        let [h, w, c] = input;
        for (what, v) in [
            ("input height", h),
            ("input width", w),
            ("channels", c),
            ("kernel height", kernel[0]),
            ("kernel width", kernel[1]),
            ("stride height", strides[0]),
            ("stride width", strides[1]),
            ("dilation height", dilation[0]),
            ("dilation width", dilation[1]),
        ] {
            if v == 0 {
                return Err(ShapeError(format!("{what} must be at least 1, got 0")));
            }
        }
        if strides.iter().any(|&s| s > 1) && dilation.iter().any(|&d| d > 1) {
            return Err(ShapeError(format!(
                "strides {strides:?} > 1 together with dilation {dilation:?} > 1 is not supported \
                 (Keras refuses it too)"
            )));
        }
        if padding == Padding::Causal && (h != 1 || kernel[0] != 1) {
            return Err(ShapeError(format!(
                "causal padding is for 1-D windows (height 1, kernel height 1), got input height {h} \
                 and kernel height {}",
                kernel[0]
            )));
        }
        let sample = h.checked_mul(w).and_then(|v| v.checked_mul(c));
        if sample.is_none_or(|n| n > u32::MAX as usize) {
            return Err(ShapeError(format!("a sample of {h}×{w}×{c} values exceeds u32::MAX")));
        }
        let col = kernel[0].checked_mul(kernel[1]).and_then(|v| v.checked_mul(c));
        if col.is_none_or(|n| n > u32::MAX as usize) {
            return Err(ShapeError(format!(
                "a receptive field of {}×{}×{c} values exceeds u32::MAX",
                kernel[0], kernel[1]
            )));
        }
        // Height never has causal padding (checked above: it is 1 with kernel 1 then).
        let vertical = if padding == Padding::Causal { Padding::Valid } else { padding };
        let [oh, top, bottom] = axis(h, kernel[0], strides[0], dilation[0], vertical, "height")?;
        let [ow, left, right] = axis(w, kernel[1], strides[1], dilation[1], padding, "width")?;
        if oh.checked_mul(ow).and_then(|v| v.checked_mul(c.max(kernel[0] * kernel[1] * c))).is_none() {
            return Err(ShapeError(format!("an output of {oh}×{ow} pixels overflows")));
        }
        Ok(Self {
            input,
            kernel,
            strides,
            dilation,
            padding,
            output: [oh, ow],
            pad_before: [top, left],
            pad_after: [bottom, right],
        })
    }

    /// A 1-D window (Conv1D, `[steps, c]` samples): [`Window2d::new`] with `h = 1`, `kh = 1`.
    pub fn new_1d(
        steps: usize,
        channels: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        padding: Padding,
    ) -> Result<Self, ShapeError> {
        Self::new([1, steps, channels], [1, kernel], [1, stride], [1, dilation], padding)
    }

    /// A pooling window: no dilation, `strides` default to `pool` in Keras
    /// (`base_pooling.py`: `strides = pool_size if strides is None`); only `Valid`/`Same`.
    pub fn pool(
        input: [usize; 3],
        pool: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Result<Self, ShapeError> {
        if padding == Padding::Causal {
            return Err(ShapeError("pooling takes `valid` or `same` padding, not `causal`".into()));
        }
        Self::new(input, pool, strides, [1, 1], padding)
    }

    /// A 1-D pooling window over `[steps, c]` samples (MaxPooling1D/AveragePooling1D; Keras
    /// defaults `pool = 2`, `stride = pool`): [`Window2d::pool`] with `h = 1`.
    pub fn pool_1d(
        steps: usize,
        channels: usize,
        pool: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<Self, ShapeError> {
        Self::pool([1, steps, channels], [1, pool], [1, stride], padding)
    }

    /// Input sample shape `[h, w, c]`.
    pub fn input(&self) -> [usize; 3] {
        self.input
    }

    /// Kernel (or pool) size `[kh, kw]`.
    pub fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// Strides `[sh, sw]`.
    pub fn strides(&self) -> [usize; 2] {
        self.strides
    }

    /// Dilation `[dh, dw]` (`[1, 1]` for pools).
    pub fn dilation(&self) -> [usize; 2] {
        self.dilation
    }

    /// The padding mode.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Output spatial size `[oh, ow]`.
    pub fn output(&self) -> [usize; 2] {
        self.output
    }

    /// Zeros before the input, `[top, left]`.
    pub fn pad_before(&self) -> [usize; 2] {
        self.pad_before
    }

    /// Zeros after the input, `[bottom, right]` (TF puts the odd pixel here).
    pub fn pad_after(&self) -> [usize; 2] {
        self.pad_after
    }

    /// Values per input sample: `h·w·c`.
    pub fn input_len(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2]
    }

    /// Output pixels per sample: `oh·ow` (rows of `col` per image).
    pub fn output_pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Values per output sample with `channels` output channels: `oh·ow·channels`
    /// (a conv's `filters`, or `c` for a pool).
    pub fn output_len(&self, channels: usize) -> usize {
        self.output_pixels() * channels
    }

    /// Width of a `col` row: `kh·kw·c`, the rows of the Keras kernel `[kh, kw, c, cout]`
    /// reshaped to `[kh·kw·c, cout]`.
    pub fn col_width(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.input[2]
    }

    /// Whether the window is 1×1 at stride 1 with no padding, so the input rows regrouped
    /// as `[images·h·w, c]` already are the `col` matrix (no copy needed).
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.strides == [1, 1]
    }

    /// The input index `i` on one axis for padded coordinate `p`, or `None` inside padding.
    #[inline]
    pub(crate) fn unpad(p: usize, before: usize, n: usize) -> Option<usize> {
        p.checked_sub(before).filter(|&i| i < n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: [usize; 2], k: [usize; 2], s: [usize; 2], d: [usize; 2], p: Padding) -> Window2d {
        Window2d::new([n[0], n[1], 1], k, s, d, p).unwrap()
    }

    #[test]
    fn same_split_puts_the_odd_pixel_at_the_end() {
        let w = g([28, 28], [3, 3], [2, 2], [1, 1], Padding::Same);
        assert_eq!((w.output(), w.pad_before(), w.pad_after()), ([14, 14], [0, 0], [1, 1]));
        let w = g([28, 28], [2, 2], [1, 1], [1, 1], Padding::Same);
        assert_eq!((w.output(), w.pad_before(), w.pad_after()), ([28, 28], [0, 0], [1, 1]));
        let w = g([28, 28], [4, 4], [1, 1], [1, 1], Padding::Same);
        assert_eq!((w.output(), w.pad_before(), w.pad_after()), ([28, 28], [1, 1], [2, 2]));
        // Kernel wider than the input is fine for same: ceil(3/1) = 3, total 4 → (2, 2).
        let w = g([3, 5], [1, 5], [1, 1], [1, 1], Padding::Same);
        assert_eq!((w.output(), w.pad_before(), w.pad_after()), ([3, 5], [0, 2], [0, 2]));
        // Stride larger than the window: total = max(0, …) = 0.
        let w = g([5, 5], [1, 1], [3, 3], [1, 1], Padding::Same);
        assert_eq!((w.output(), w.pad_before(), w.pad_after()), ([2, 2], [0, 0], [0, 0]));
        // Dilation 2, k3 → extent 5, out 7, total 4 → (2, 2).
        let w = g([7, 7], [3, 3], [1, 1], [2, 2], Padding::Same);
        assert_eq!((w.output(), w.pad_before(), w.pad_after()), ([7, 7], [2, 2], [2, 2]));
    }

    #[test]
    fn valid_and_causal_sizes() {
        assert_eq!(g([28, 28], [3, 3], [1, 1], [1, 1], Padding::Valid).output(), [26, 26]);
        assert_eq!(g([13, 13], [2, 2], [2, 2], [1, 1], Padding::Valid).output(), [6, 6]);
        assert_eq!(g([9, 10], [3, 3], [1, 1], [2, 2], Padding::Valid).output(), [5, 6]);
        let c = Window2d::new_1d(10, 2, 3, 1, 2, Padding::Causal).unwrap();
        assert_eq!((c.output(), c.pad_before(), c.pad_after()), ([1, 10], [0, 4], [0, 0]));
        let c = Window2d::new_1d(9, 2, 3, 2, 1, Padding::Causal).unwrap();
        assert_eq!((c.output(), c.pad_before()), ([1, 5], [0, 2]));
        assert_eq!(c.col_width(), 6);
    }

    #[test]
    fn bad_geometry_is_refused_with_a_reason() {
        let cases: [(Result<Window2d, ShapeError>, &str); 7] = [
            (Window2d::new([0, 4, 1], [1, 1], [1, 1], [1, 1], Padding::Valid), "input height"),
            (Window2d::new([4, 4, 1], [1, 1], [1, 0], [1, 1], Padding::Valid), "stride width"),
            (Window2d::new([9, 9, 1], [3, 3], [2, 2], [2, 1], Padding::Same), "dilation"),
            (Window2d::new([4, 4, 1], [5, 3], [1, 1], [1, 1], Padding::Valid), "height axis"),
            (Window2d::new([5, 5, 1], [3, 3], [1, 1], [3, 3], Padding::Valid), "spans 7 cells"),
            (Window2d::new([4, 4, 1], [3, 3], [1, 1], [1, 1], Padding::Causal), "causal"),
            (Window2d::new([1 << 20, 1 << 20, 8], [1, 1], [1, 1], [1, 1], Padding::Valid), "u32::MAX"),
        ];
        for (r, needle) in cases {
            let e = r.expect_err(needle).0;
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
        let huge = Window2d::new([1, 8, 1], [1, 3], [1, 1], [1, usize::MAX / 2 + 2], Padding::Same);
        assert!(huge.unwrap_err().0.contains("overflows"));
        assert!(Window2d::pool([4, 4, 1], [2, 2], [2, 2], Padding::Causal).is_err());
        assert!(Window2d::new([4, 4, 1], [3, 3], [1, 1], [1, 1], Padding::Valid).unwrap().output() == [2, 2]);
    }
}
