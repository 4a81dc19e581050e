//! Max, average and global pooling, 1-D and 2-D, channels last.
//!
//! Keras: `keras/src/layers/pooling/base_pooling.py` (`strides` default to `pool_size`),
//! `max_pooling{1,2}d.py`, `average_pooling{1,2}d.py`, `base_global_pooling.py`,
//! `global_{average,max}_pooling{1,2}d.py`. TF's rules, from `kiln_tensor::conv`: max
//! pooling sends each output's gradient to the first maximum of its window, padded cells
//! never count, and average pooling with `same` divides by the real cells of the window.

use kiln_tensor::conv::{
    avg_pool_backward, avg_pool_forward, global_max_backward, max_pool_backward, max_pool_forward,
};
use kiln_tensor::pool::{Blocks, for_row_blocks, for_row_blocks2, row_blocks};
use kiln_tensor::{Matrix, Padding, Parallelism, Shape, ShapeError, View, ViewMut, Window2d};
use serde::{Deserialize, Serialize};

use crate::{BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// Which reduction a pooling layer takes over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Max,
    Average,
    /// The max over all positions, whose gradient splits ties as TensorFlow's `reduce_max`.
    GlobalMax,
}

/// The window, and (max pooling in training) where each output's maximum was.
#[derive(Debug, Clone, Default)]
struct PoolState {
    window: Option<Window2d>,
    argmax: Vec<u32>,
}

impl PoolState {
    fn build(&mut self, core: &mut LayerCore, window: Result<Window2d, ShapeError>) -> Result<Window2d, LayerError> {
        let window = window.map_err(|e| LayerError::Config { layer: core.name.clone(), message: e.0 })?;
        core.output = Matrix::zeros(0, window.output_len(window.input()[2]));
        *self = PoolState { window: Some(window), argmax: Vec::new() };
        Ok(window)
    }

    fn forward(
        &mut self,
        core: &mut LayerCore,
        reduce: Reduce,
        input: LayerInput<'_>,
        training: bool,
        par: Parallelism,
    ) {
        let g = self.window.unwrap_or_else(|| panic!("layer `{}` used before build", core.name));
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", core.name) };
        let (in_len, out_len) = (x.cols, g.output_len(g.input()[2]));
        core.output.resize(x.rows, out_len);
        // The argmax is only needed to send gradients back: kept in training only.
        let keep_argmax = training && reduce == Reduce::Max;
        let arg_len = if keep_argmax { out_len } else { 0 };
        self.argmax.resize(x.rows * arg_len, 0);
        let blocks = image_blocks(par, x.rows, in_len);
        let buffers = ((core.output.as_mut_slice(), out_len), (&mut self.argmax[..], arg_len));
        for_row_blocks2(par, buffers.0, buffers.1, &blocks, |first, out, arg| {
            let images = first..first + out.len() / out_len.max(1);
            let x =
                View { rows: images.len(), cols: in_len, data: &x.data[images.start * in_len..images.end * in_len] };
            let out = ViewMut { rows: images.len(), cols: out_len, data: out };
            match reduce {
                Reduce::Max => max_pool_forward(out, keep_argmax.then_some(arg), x, &g),
                Reduce::GlobalMax => max_pool_forward(out, None, x, &g),
                Reduce::Average => avg_pool_forward(out, x, &g),
            }
        });
    }

    fn backward(
        &self,
        reduce: Reduce,
        input: LayerInput<'_>,
        grad: &Matrix,
        grad_input: Option<&mut Matrix>,
        par: Parallelism,
    ) {
        let Some(gi) = grad_input else { return };
        let g = self.window.expect("built");
        let LayerInput::Dense(input_values) = input else { panic!("pooling takes dense input") };
        gi.resize(input.rows(), input.cols());
        gi.fill(0.0);
        let (in_len, out_len) = (gi.cols(), grad.cols());
        let blocks = image_blocks(par, gi.rows(), in_len);
        for_row_blocks(par, gi.as_mut_slice(), in_len, &blocks, |first, dx| {
            let images = first..first + dx.len() / in_len.max(1);
            let dx = ViewMut { rows: images.len(), cols: in_len, data: dx };
            let values = images.start * out_len..images.end * out_len;
            let dy = View { rows: images.len(), cols: out_len, data: &grad.as_slice()[values.clone()] };
            match reduce {
                Reduce::Max => max_pool_backward(dx, dy, &self.argmax[values]),
                Reduce::GlobalMax => {
                    let rows = images.start * in_len..images.end * in_len;
                    let x = View { rows: images.len(), cols: in_len, data: &input_values.data[rows] };
                    global_max_backward(dx, dy, x, g.input()[2]);
                }
                Reduce::Average => avg_pool_backward(dx, dy, &g),
            }
        });
    }
}

/// Pooling splits between threads by images, at least 32 K input values a thread (one
/// 26×26×32 image of W3 is 21,632): each image's windows are its own, so the bits do not
/// depend on the threads.
fn image_blocks(par: Parallelism, images: usize, values_per_image: usize) -> Blocks {
    row_blocks(par, images, (32 * 1024usize).div_ceil(values_per_image.max(1)))
}

/// The sample of a 1-D layer as the `[1, steps, c]` a 2-D window slides over.
fn as_1d(input: &Shape, class: &str) -> Result<[usize; 2], ShapeError> {
    match *input.dims() {
        [steps, c] => Ok([steps, c]),
        _ => Err(ShapeError(format!("{class} takes samples of shape [steps, channels], got {:?}", input.dims()))),
    }
}

fn as_2d(input: &Shape, class: &str) -> Result<[usize; 3], ShapeError> {
    match *input.dims() {
        [h, w, c] => Ok([h, w, c]),
        _ => Err(ShapeError(format!("{class} takes samples of shape [h, w, channels], got {:?}", input.dims()))),
    }
}

/// The `Layer` methods every pooling layer shares; `$reduce` is its reduction.
macro_rules! pooling_layer {
    ($reduce:expr) => {
        fn core(&self) -> &LayerCore {
            &self.core
        }

        fn core_mut(&mut self) -> &mut LayerCore {
            &mut self.core
        }

        fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
            let g = self.window(input).ok()?;
            Some((0, self.out_shape(&g)))
        }

        fn build(&mut self, input: &Shape, _ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
            let window = self.window(input);
            let g = self.state.build(&mut self.core, window)?;
            Ok(self.out_shape(&g))
        }

        fn forward(&mut self, input: LayerInput<'_>, training: bool, par: Parallelism) {
            self.state.forward(&mut self.core, $reduce, input, training, par);
        }

        fn backward(
            &mut self,
            input: LayerInput<'_>,
            grad: &mut Matrix,
            _grad_of: GradOf,
            grad_input: Option<&mut Matrix>,
            par: Parallelism,
        ) {
            self.state.backward($reduce, input, grad, grad_input, par);
        }
    };
}

/// Defines a windowed 2-D pooling layer.
macro_rules! pooling_2d {
    ($(#[$doc:meta])* $name:ident, $reduce:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub struct $name {
            #[serde(flatten)]
            core: LayerCore,
            /// `[ph, pw]` (Keras' default `[2, 2]`).
            pub pool_size: [usize; 2],
            /// `[sh, sw]`; `None` (Keras' default) means `pool_size`.
            #[serde(default)]
            pub strides: Option<[usize; 2]>,
            /// `valid` (default) or `same` (TF's split: an odd pad goes after).
            #[serde(default)]
            pub padding: Padding,
            #[serde(skip)]
            state: PoolState,
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new([2, 2])
            }
        }

        impl $name {
            /// A `pool_size` window moving by `pool_size`, `valid` padding.
            pub fn new(pool_size: [usize; 2]) -> Self {
                Self { core: LayerCore::default(), pool_size, strides: None, padding: Padding::Valid, state: PoolState::default() }
            }

            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }

            /// Sets the strides.
            pub fn strides(mut self, strides: [usize; 2]) -> Self {
                self.strides = Some(strides);
                self
            }

            /// Sets the padding.
            pub fn padding(mut self, padding: Padding) -> Self {
                self.padding = padding;
                self
            }

            fn window(&self, input: &Shape) -> Result<Window2d, ShapeError> {
                let dims = as_2d(input, stringify!($name))?;
                Window2d::pool(dims, self.pool_size, self.strides.unwrap_or(self.pool_size), self.padding)
            }

            fn out_shape(&self, g: &Window2d) -> Shape {
                let [oh, ow] = g.output();
                Shape::new([oh, ow, g.input()[2]]).expect("sizes checked by the window")
            }
        }

        #[typetag::serde]
        impl Layer for $name {
            pooling_layer!($reduce);
        }
    };
}

/// Defines a windowed 1-D pooling layer.
macro_rules! pooling_1d {
    ($(#[$doc:meta])* $name:ident, $reduce:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub struct $name {
            #[serde(flatten)]
            core: LayerCore,
            /// The window's length (Keras' default 2).
            pub pool_size: usize,
            /// The stride; `None` (Keras' default) means `pool_size`.
            #[serde(default)]
            pub strides: Option<usize>,
            /// `valid` (default) or `same`.
            #[serde(default)]
            pub padding: Padding,
            #[serde(skip)]
            state: PoolState,
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new(2)
            }
        }

        impl $name {
            /// A window of `pool_size` steps moving by `pool_size`, `valid` padding.
            pub fn new(pool_size: usize) -> Self {
                Self { core: LayerCore::default(), pool_size, strides: None, padding: Padding::Valid, state: PoolState::default() }
            }

            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }

            /// Sets the stride.
            pub fn strides(mut self, strides: usize) -> Self {
                self.strides = Some(strides);
                self
            }

            /// Sets the padding.
            pub fn padding(mut self, padding: Padding) -> Self {
                self.padding = padding;
                self
            }

            fn window(&self, input: &Shape) -> Result<Window2d, ShapeError> {
                let [steps, c] = as_1d(input, stringify!($name))?;
                Window2d::pool_1d(steps, c, self.pool_size, self.strides.unwrap_or(self.pool_size), self.padding)
            }

            fn out_shape(&self, g: &Window2d) -> Shape {
                Shape::new([g.output()[1], g.input()[2]]).expect("sizes checked by the window")
            }
        }

        #[typetag::serde]
        impl Layer for $name {
            pooling_layer!($reduce);
        }
    };
}

/// Defines a global pooling layer (one value per channel; `keepdims` keeps 1-sized axes).
macro_rules! global_pooling {
    ($(#[$doc:meta])* $name:ident, $reduce:expr, $dims:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        pub struct $name {
            #[serde(flatten)]
            core: LayerCore,
            /// Keep the pooled axes as size 1 (`[1, 1, c]` / `[1, c]`) instead of `[c]`.
            #[serde(default)]
            pub keepdims: bool,
            #[serde(skip)]
            state: PoolState,
        }

        impl $name {
            /// A global pooling layer, `keepdims` off (Keras' default).
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }

            /// Keeps the pooled axes as size 1.
            pub fn keepdims(mut self, keepdims: bool) -> Self {
                self.keepdims = keepdims;
                self
            }

            fn window(&self, input: &Shape) -> Result<Window2d, ShapeError> {
                let dims: fn(&Shape, &str) -> Result<[usize; 3], ShapeError> = $dims;
                Window2d::global(dims(input, stringify!($name))?)
            }

            fn out_shape(&self, g: &Window2d) -> Shape {
                let c = g.input()[2];
                let rank_1d = stringify!($name).ends_with("1D");
                let dims = match (self.keepdims, rank_1d) {
                    (false, _) => vec![c],
                    (true, true) => vec![1, c],
                    (true, false) => vec![1, 1, c],
                };
                Shape::new(dims).expect("c ≥ 1")
            }
        }

        #[typetag::serde]
        impl Layer for $name {
            pooling_layer!($reduce);
        }
    };
}

fn dims_1d(input: &Shape, class: &str) -> Result<[usize; 3], ShapeError> {
    as_1d(input, class).map(|[steps, c]| [1, steps, c])
}

pooling_2d!(
    /// Max over each `pool_size` window of `[h, w, c]` samples (Keras `layers.MaxPooling2D`).
    /// Output `floor((n − p)/s) + 1` (`valid`) or `ceil(n/s)` (`same`) per axis; the
    /// gradient goes to the first maximum of each window.
    MaxPooling2D,
    Reduce::Max
);
pooling_2d!(
    /// Mean over each `pool_size` window of `[h, w, c]` samples (Keras
    /// `layers.AveragePooling2D`); with `same`, over the window's real cells only.
    AveragePooling2D,
    Reduce::Average
);
pooling_1d!(
    /// Max over each window of `[steps, c]` samples (Keras `layers.MaxPooling1D`).
    MaxPooling1D,
    Reduce::Max
);
pooling_1d!(
    /// Mean over each window of `[steps, c]` samples (Keras `layers.AveragePooling1D`).
    AveragePooling1D,
    Reduce::Average
);
global_pooling!(
    /// Mean over `h, w` per channel: `[h, w, c] → [c]` (Keras `layers.GlobalAveragePooling2D`).
    GlobalAveragePooling2D,
    Reduce::Average,
    as_2d
);
global_pooling!(
    /// Max over `h, w` per channel: `[h, w, c] → [c]` (Keras `layers.GlobalMaxPooling2D`,
    /// `ops.max`): the gradient is split equally among tied maxima, as TensorFlow's.
    GlobalMaxPooling2D,
    Reduce::GlobalMax,
    as_2d
);
global_pooling!(
    /// Mean over the steps per channel: `[steps, c] → [c]` (Keras
    /// `layers.GlobalAveragePooling1D`, without masks).
    GlobalAveragePooling1D,
    Reduce::Average,
    dims_1d
);
global_pooling!(
    /// Max over the steps per channel: `[steps, c] → [c]` (Keras `layers.GlobalMaxPooling1D`,
    /// `ops.max`): the gradient is split equally among tied maxima, as TensorFlow's.
    GlobalMaxPooling1D,
    Reduce::GlobalMax,
    dims_1d
);
