//! `Conv1D` and `Conv2D`: `y = activation(conv(x, kernel) + bias)`, channels last.
//!
//! Keras: `keras/src/layers/convolutional/base_conv.py`, `conv1d.py`, `conv2d.py`; output
//! sizes and TF's `SAME` split from `keras/src/ops/operation_utils.py`. The kernels (im2col
//! per block + one product) are `kiln_tensor::conv`.

use kiln_regularizers::Regularizer;
use kiln_tensor::conv::{conv2d_backward_input, conv2d_backward_kernel, conv2d_forward};
use kiln_tensor::pool::{for_row_blocks2, row_blocks};
use kiln_tensor::{Accumulate, Matrix, Padding, Parallelism, Shape, View, ViewMut, Window2d, kernels};
use serde::{Deserialize, Serialize};

use crate::activation::MIN_VALUES_PER_THREAD;
use crate::{Activation, BuildContext, GradOf, Initializer, Layer, LayerCore, LayerError, LayerInput};

/// What Conv1D and Conv2D share: Keras' arguments besides the window's sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConvOptions {
    /// Output channels (≥ 1).
    pub filters: usize,
    /// `valid` (default), `same` (TF's split: an odd pad goes after), or `causal` (Conv1D).
    #[serde(default)]
    pub padding: Padding,
    /// Activation applied to `conv + bias`.
    #[serde(default)]
    pub activation: Activation,
    /// Whether the layer has a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Initializer of the kernel (default `glorot_uniform`, fans from the kernel's shape).
    #[serde(default)]
    pub kernel_initializer: Initializer,
    /// Initializer of the bias (default zeros).
    #[serde(default = "zeros")]
    pub bias_initializer: Initializer,
    /// Penalty on the kernel.
    #[serde(default)]
    pub kernel_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on the bias.
    #[serde(default)]
    pub bias_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on the output (after the activation), divided by the batch size.
    #[serde(default)]
    pub activity_regularizer: Option<Box<dyn Regularizer>>,
}

fn yes() -> bool {
    true
}

fn zeros() -> Initializer {
    Initializer::Zeros
}

impl ConvOptions {
    fn new(filters: usize) -> Self {
        Self {
            filters,
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        }
    }
}

/// Per-batch buffers and the geometry fixed at build.
#[derive(Debug, Clone, Default)]
struct ConvState {
    window: Option<Window2d>,
    /// im2col blocks, sized for the largest batch seen (at most ~1 MiB).
    scratch: Vec<f32>,
    /// The pre-activation output, kept only for an activation whose gradient needs it
    /// (gelu, silu, …).
    pre: Vec<f32>,
}

/// The math both layers run once their window is known.
struct Conv<'a> {
    core: &'a mut LayerCore,
    options: &'a ConvOptions,
    state: &'a mut ConvState,
}

impl Conv<'_> {
    fn error(&self, message: String) -> LayerError {
        LayerError::Config { layer: self.core.name.clone(), message }
    }

    /// Checks the arguments, creates kernel `[kernel…, cin, filters]` and bias
    /// `[filters]`, and returns the output shape.
    fn build(
        &mut self,
        window: Result<Window2d, kiln_tensor::ShapeError>,
        kernel_dims: &[usize],
        out_dims: impl Fn([usize; 2]) -> Vec<usize>,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Shape, LayerError> {
        let o = self.options;
        if o.filters == 0 {
            return Err(self.error("argument `filters` must be at least 1, received filters=0".into()));
        }
        for (what, init) in [("kernel_initializer", &o.kernel_initializer), ("bias_initializer", &o.bias_initializer)] {
            init.validate().map_err(|e| self.error(format!("{what}: {e}")))?;
        }
        if o.use_bias {
            o.bias_initializer.check_vector("bias_initializer").map_err(|e| self.error(e))?;
        }
        let regs = [
            ("kernel_regularizer", &o.kernel_regularizer),
            ("bias_regularizer", &o.bias_regularizer),
            ("activity_regularizer", &o.activity_regularizer),
        ];
        for (what, reg) in regs {
            if let Some(reg) = reg {
                reg.validate().map_err(|e| self.error(format!("{what}: {e}")))?;
            }
        }
        let window = window.map_err(|e| self.error(e.to_string()))?;
        let cin = window.input()[2];
        let out = Shape::new(out_dims(window.output())).map_err(|e| self.error(e))?;
        let mut shape: Vec<usize> = kernel_dims.to_vec();
        shape.extend([cin, o.filters]);
        // Keras' `compute_fans` for rank > 2: the receptive field multiplies both fans.
        let receptive: usize = kernel_dims.iter().product();
        let (fan_in, fan_out) = (cin * receptive, o.filters * receptive);
        let mut kernel = ctx.param("kernel", shape)?.with_regularizer(o.kernel_regularizer.clone());
        match o.kernel_initializer {
            // Keras' Orthogonal draws the kernel as a `(k… · cin) × filters` matrix (rows
            // `fan_in`), not with the fans, which both carry the receptive field.
            init @ Initializer::Orthogonal { .. } => init.fill(kernel.value_mut(), fan_in, o.filters, ctx.rng()),
            init => init.fill(kernel.value_mut(), fan_in, fan_out, ctx.rng()),
        }
        let mut params = vec![kernel];
        if o.use_bias {
            let mut bias = ctx.param("bias", vec![o.filters])?.with_regularizer(o.bias_regularizer.clone());
            o.bias_initializer.fill_vector(bias.value_mut(), ctx.rng());
            params.push(bias);
        }
        self.core.params = params;
        self.core.output = Matrix::zeros(0, out.numel());
        *self.state = ConvState { window: Some(window), scratch: Vec::new(), pre: Vec::new() };
        Ok(out)
    }

    fn window(&self) -> Window2d {
        self.state.window.unwrap_or_else(|| panic!("layer `{}` used before build", self.core.name))
    }

    fn forward(&mut self, input: LayerInput<'_>, par: Parallelism) {
        let g = self.window();
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let (n, cout) = (x.rows, self.options.filters);
        let s = &mut *self.state;
        let need = g.col_scratch_len(n);
        if s.scratch.len() < need {
            s.scratch.resize(need, 0.0);
        }
        let (params, out) = (&self.core.params, &mut self.core.output);
        out.resize(n, g.output_len(cout));
        let kernel = View { rows: g.col_width(), cols: cout, data: params[0].value() };
        conv2d_forward(out.view_mut(), x, kernel, &g, &mut s.scratch[..need], par);
        // Keras' order: conv, then `+ bias`, then the activation (same rounding as fused),
        // rows of `cout` values split between threads (each row on its own: same bits).
        let (act, bias) = (self.options.activation, params.get(1).map(|b| b.value()));
        let (rows, pre_width) = (out.as_slice().len() / cout, if act.needs_input() { cout } else { 0 });
        s.pre.resize(rows * pre_width, 0.0);
        let blocks = row_blocks(par, rows, MIN_VALUES_PER_THREAD / cout);
        for_row_blocks2(par, (out.as_mut_slice(), cout), (&mut s.pre, pre_width), &blocks, |_, out, pre| {
            if let Some(bias) = bias {
                kernels::add_row_vector(out, bias);
            }
            if pre_width > 0 {
                pre.copy_from_slice(out);
            }
            act.apply(out, cout);
        });
    }

    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Parallelism,
    ) {
        let g = self.window();
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let cout = self.options.filters;
        if grad_of == GradOf::Output {
            let pre = self.options.activation.needs_input().then_some(self.state.pre.as_slice());
            self.options.activation.backward(pre, self.core.output.as_slice(), grad.as_mut_slice(), cout, par);
        }
        let need = g.col_scratch_len(x.rows);
        let scratch = &mut self.state.scratch[..need];
        let (kernel, rest) = self.core.params.split_first_mut().expect("built");
        let dk = ViewMut { rows: g.col_width(), cols: cout, data: kernel.grad_mut() };
        conv2d_backward_kernel(dk, x, grad.view(), &g, scratch, Accumulate::Replace, par);
        if let Some(bias) = rest.first_mut() {
            // A sum over batch·oh·ow rows: blocked, so its error stays near one rounding.
            kernels::column_sums_blocked(grad.as_slice(), bias.grad_mut());
        }
        if let Some(gi) = grad_input {
            gi.resize(x.rows, x.cols);
            gi.fill(0.0);
            let k = View { rows: g.col_width(), cols: cout, data: kernel.value() };
            conv2d_backward_input(gi.view_mut(), grad.view(), k, &g, scratch, par);
        }
    }
}

macro_rules! conv_layer_common {
    () => {
        fn core(&self) -> &LayerCore {
            &self.core
        }

        fn core_mut(&mut self) -> &mut LayerCore {
            &mut self.core
        }

        fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Parallelism) {
            Conv { core: &mut self.core, options: &self.options, state: &mut self.state }.forward(input, par)
        }

        fn backward(
            &mut self,
            input: LayerInput<'_>,
            grad: &mut Matrix,
            grad_of: GradOf,
            grad_input: Option<&mut Matrix>,
            par: Parallelism,
        ) {
            Conv { core: &mut self.core, options: &self.options, state: &mut self.state }
                .backward(input, grad, grad_of, grad_input, par)
        }

        fn activation(&self) -> Activation {
            self.options.activation
        }

        fn activity_regularizer(&self) -> Option<&dyn Regularizer> {
            self.options.activity_regularizer.as_deref()
        }
    };
}

/// Builder methods both layers share.
macro_rules! conv_builders {
    ($t:ty) => {
        impl $t {
            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }

            /// Sets the padding (`Valid` by default).
            pub fn padding(mut self, padding: Padding) -> Self {
                self.options.padding = padding;
                self
            }

            /// Sets the activation.
            pub fn activation(mut self, activation: Activation) -> Self {
                self.options.activation = activation;
                self
            }

            /// Turns the bias on or off.
            pub fn use_bias(mut self, use_bias: bool) -> Self {
                self.options.use_bias = use_bias;
                self
            }

            /// Sets the kernel initializer.
            pub fn kernel_initializer(mut self, init: Initializer) -> Self {
                self.options.kernel_initializer = init;
                self
            }

            /// Adds a kernel regularizer.
            pub fn kernel_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
                self.options.kernel_regularizer = Some(Box::new(reg));
                self
            }

            /// Adds a bias regularizer.
            pub fn bias_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
                self.options.bias_regularizer = Some(Box::new(reg));
                self
            }

            /// Adds an activity regularizer.
            pub fn activity_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
                self.options.activity_regularizer = Some(Box::new(reg));
                self
            }

            /// The shared arguments (filters, padding, activation, initializers, …).
            pub fn options(&self) -> &ConvOptions {
                &self.options
            }

            /// The shared arguments, mutably.
            pub fn options_mut(&mut self) -> &mut ConvOptions {
                &mut self.options
            }
        }
    };
}

/// 2-D convolution over `[h, w, cin]` samples (Keras `layers.Conv2D`): kernel
/// `[kh, kw, cin, filters]`, bias `[filters]`, output `[oh, ow, filters]` with
/// `o = floor((n − d(k−1) − 1)/s) + 1` (`valid`) or `ceil(n/s)` (`same`). Defaults as
/// Keras: strides and dilation 1, `valid`, bias, `glorot_uniform` (fans × kh·kw).
/// `strides > 1` with `dilation_rate > 1` is refused, as Keras refuses it.
///
/// # Shapes
/// - input: `[h, w, cin]` per sample
/// - output: `[oh, ow, filters]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conv2D {
    #[serde(flatten)]
    core: LayerCore,
    /// `[kh, kw]`.
    pub kernel_size: [usize; 2],
    /// `[sh, sw]` (default `[1, 1]`).
    pub strides: [usize; 2],
    /// `[dh, dw]` (default `[1, 1]`).
    pub dilation_rate: [usize; 2],
    /// Filters, padding, activation, bias, initializers and regularizers.
    #[serde(flatten)]
    pub options: ConvOptions,
    #[serde(skip)]
    state: ConvState,
}

impl Conv2D {
    /// `filters` output channels, a `kernel_size` window, Keras' defaults otherwise.
    pub fn new(filters: usize, kernel_size: [usize; 2]) -> Self {
        Self {
            core: LayerCore::default(),
            kernel_size,
            strides: [1, 1],
            dilation_rate: [1, 1],
            options: ConvOptions::new(filters),
            state: ConvState::default(),
        }
    }

    /// Sets the strides.
    pub fn strides(mut self, strides: [usize; 2]) -> Self {
        self.strides = strides;
        self
    }

    /// Sets the dilation rate.
    pub fn dilation_rate(mut self, dilation_rate: [usize; 2]) -> Self {
        self.dilation_rate = dilation_rate;
        self
    }

    fn window(&self, input: &Shape) -> Result<Window2d, kiln_tensor::ShapeError> {
        let &[h, w, c] = input.dims() else {
            return Err(kiln_tensor::ShapeError(format!(
                "Conv2D takes samples of shape [h, w, channels], got {:?}",
                input.dims()
            )));
        };
        if self.options.padding == Padding::Causal {
            return Err(kiln_tensor::ShapeError("argument `padding`: `causal` is for Conv1D only".into()));
        }
        Window2d::new([h, w, c], self.kernel_size, self.strides, self.dilation_rate, self.options.padding)
    }
}

conv_builders!(Conv2D);

#[typetag::serde]
impl Layer for Conv2D {
    conv_layer_common!();

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let g = self.window(input).ok()?;
        let f = self.options.filters;
        let weights = g.col_width().checked_mul(f)?.checked_add(if self.options.use_bias { f } else { 0 })?;
        let [oh, ow] = g.output();
        Some((weights, Shape::new([oh, ow, f]).ok()?))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let window = self.window(input);
        let kernel = self.kernel_size;
        let filters = self.options.filters;
        Conv { core: &mut self.core, options: &self.options, state: &mut self.state }.build(
            window,
            &kernel,
            |[oh, ow]| vec![oh, ow, filters],
            ctx,
        )
    }
}

/// 1-D convolution over `[steps, cin]` samples (Keras `layers.Conv1D`): kernel
/// `[k, cin, filters]`, output `[out_steps, filters]`; `padding` may also be `causal`
/// (left pad `d·(k − 1)`, so step t sees only steps ≤ t). Computed as Conv2D with h = 1.
///
/// # Shapes
/// - input: `[steps, cin]` per sample
/// - output: `[out_steps, filters]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conv1D {
    #[serde(flatten)]
    core: LayerCore,
    /// The window's length.
    pub kernel_size: usize,
    /// The stride (default 1).
    pub strides: usize,
    /// The dilation rate (default 1).
    pub dilation_rate: usize,
    /// Filters, padding, activation, bias, initializers and regularizers.
    #[serde(flatten)]
    pub options: ConvOptions,
    #[serde(skip)]
    state: ConvState,
}

impl Conv1D {
    /// `filters` output channels, a window of `kernel_size` steps, Keras' defaults otherwise.
    pub fn new(filters: usize, kernel_size: usize) -> Self {
        Self {
            core: LayerCore::default(),
            kernel_size,
            strides: 1,
            dilation_rate: 1,
            options: ConvOptions::new(filters),
            state: ConvState::default(),
        }
    }

    /// Sets the stride.
    pub fn strides(mut self, strides: usize) -> Self {
        self.strides = strides;
        self
    }

    /// Sets the dilation rate.
    pub fn dilation_rate(mut self, dilation_rate: usize) -> Self {
        self.dilation_rate = dilation_rate;
        self
    }

    fn window(&self, input: &Shape) -> Result<Window2d, kiln_tensor::ShapeError> {
        let &[steps, c] = input.dims() else {
            return Err(kiln_tensor::ShapeError(format!(
                "Conv1D takes samples of shape [steps, channels], got {:?}",
                input.dims()
            )));
        };
        Window2d::new_1d(steps, c, self.kernel_size, self.strides, self.dilation_rate, self.options.padding)
    }
}

conv_builders!(Conv1D);

#[typetag::serde]
impl Layer for Conv1D {
    conv_layer_common!();

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let g = self.window(input).ok()?;
        let f = self.options.filters;
        let weights = g.col_width().checked_mul(f)?.checked_add(if self.options.use_bias { f } else { 0 })?;
        Some((weights, Shape::new([g.output()[1], f]).ok()?))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let window = self.window(input);
        let kernel = self.kernel_size;
        let filters = self.options.filters;
        Conv { core: &mut self.core, options: &self.options, state: &mut self.state }.build(
            window,
            &[kernel],
            |[_, steps]| vec![steps, filters],
            ctx,
        )
    }
}
