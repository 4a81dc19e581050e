//! Recurrent layers — `SimpleRNN`, `LSTM`, `GRU` — over `[time, features]` samples.
//!
//! Keras: `keras/src/layers/rnn/{simple_rnn,lstm,gru}.py` (the cells' `call`, which
//! TensorFlow runs step by step on CPU) and `rnn.py` (zero initial state,
//! `return_sequences`). The kernels follow `docs/architecture-priors` §4.2: the batch is
//! copied once to time-major order, the input projection of every step is one product,
//! each step adds one recurrent product, and after backpropagation through time the
//! weight and input gradients are single products again. Buffers are sized for the
//! largest batch and reused.

mod cells;
mod gru;
mod gru_step;
mod lstm;
mod lstm_step;
mod simple_rnn;

use std::ops::Range;

use kiln_regularizers::Regularizer;
use kiln_tensor::{Accumulate, Matrix, Parallelism, Shape, View, ViewMut, matmul};
use serde::{Deserialize, Serialize};

pub use gru::GRU;
pub use lstm::LSTM;
pub use simple_rnn::SimpleRNN;

use crate::{Activation, BuildContext, Initializer, LayerCore, LayerError, Param};

/// The fewest samples a thread takes through a recurrent layer's steps: with threads,
/// each takes a block of samples through every step (`pool::for_sample_blocks`), and a
/// block's per-step products should not be smaller than this.
const MIN_BLOCK_ROWS: usize = 16;

/// A step's products run on the calling thread: they are too small to split (splitting
/// each step's 32×32·32×128 product made W4 a third slower); the layers split the batch
/// into blocks of samples instead, and the whole-sequence products use the layer's
/// threads.
const STEP: Parallelism = Parallelism::Sequential;

fn yes() -> bool {
    true
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

fn zeros() -> Initializer {
    Initializer::Zeros
}

fn orthogonal() -> Initializer {
    Initializer::Orthogonal { gain: 1.0 }
}

fn tanh() -> Activation {
    Activation::Tanh
}

/// The builder methods every recurrent layer has (its `core` and `options` fields).
macro_rules! recurrent_builders {
    ($t:ty) => {
        impl $t {
            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }

            /// Sets the activation (Keras' default `tanh`).
            pub fn activation(mut self, activation: crate::Activation) -> Self {
                self.options.activation = activation;
                self
            }

            /// Outputs every step's state (`[time, units]`) instead of the last one.
            pub fn return_sequences(mut self, on: bool) -> Self {
                self.options.return_sequences = on;
                self
            }

            /// Turns the bias on or off.
            pub fn use_bias(mut self, on: bool) -> Self {
                self.options.use_bias = on;
                self
            }

            /// Processes the steps last to first (Keras' `go_backwards`); with
            /// `return_sequences` the states come in that order too.
            pub fn go_backwards(mut self, on: bool) -> Self {
                self.options.go_backwards = on;
                self
            }
        }
    };
}
use recurrent_builders;

/// What the three recurrent layers share: Keras' arguments besides the cell's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecurrentOptions {
    /// Size of the state (≥ 1).
    pub units: usize,
    /// Activation of the state (Keras' default `tanh`).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Whether the cell has biases (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Output every step's state (`[time, units]`) instead of the last one (`[units]`).
    #[serde(default)]
    pub return_sequences: bool,
    /// Process the steps last to first (Keras' `go_backwards`, default false): step `t`
    /// reads input `T − 1 − t`, and `return_sequences` outputs the states in processing
    /// order, as Keras does. Written only when true, so configs saved before it read the
    /// same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub go_backwards: bool,
    /// Initializer of the input kernel (default `glorot_uniform`).
    #[serde(default)]
    pub kernel_initializer: Initializer,
    /// Initializer of the recurrent kernel (default `orthogonal`).
    #[serde(default = "orthogonal")]
    pub recurrent_initializer: Initializer,
    /// Initializer of the bias (default zeros).
    #[serde(default = "zeros")]
    pub bias_initializer: Initializer,
    /// Penalty on the input kernel.
    #[serde(default)]
    pub kernel_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on the recurrent kernel.
    #[serde(default)]
    pub recurrent_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on the bias.
    #[serde(default)]
    pub bias_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on the output, divided by the batch size.
    #[serde(default)]
    pub activity_regularizer: Option<Box<dyn Regularizer>>,
}

impl RecurrentOptions {
    fn new(units: usize) -> Self {
        Self {
            units,
            activation: Activation::Tanh,
            use_bias: true,
            return_sequences: false,
            go_backwards: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: orthogonal(),
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            recurrent_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        }
    }

    /// Refuses a bias initializer that needs two dimensions for a 1-D bias (every cell's
    /// but GRU's `reset_after` one), as Keras does.
    fn check_vector_bias(&self, core: &LayerCore) -> Result<(), LayerError> {
        if !self.use_bias {
            return Ok(());
        }
        let error = |message: String| LayerError::Config { layer: core.name.clone(), message };
        self.bias_initializer.check_vector("bias_initializer").map_err(error)
    }

    /// Checks the arguments and the input shape `[time, features]`; returns
    /// `(time, features, output shape)`.
    fn check(
        &self,
        core: &LayerCore,
        input: &Shape,
        acts: &[(&str, Activation)],
    ) -> Result<(usize, usize, Shape), LayerError> {
        let error = |message: String| LayerError::Config { layer: core.name.clone(), message };
        let &[time, features] = input.dims() else {
            return Err(error(format!("takes samples of shape [time, features], got {:?}", input.dims())));
        };
        if self.units == 0 {
            return Err(error("argument `units` must be at least 1, received units=0".into()));
        }
        for &(name, act) in acts {
            if !matches!(act, Activation::Linear | Activation::Relu | Activation::Sigmoid | Activation::Tanh) {
                return Err(error(format!(
                    "argument `{name}` = {} is not supported in a recurrent cell (linear, relu, sigmoid and tanh are)",
                    act.keras_name()
                )));
            }
        }
        for (name, init) in [
            ("kernel_initializer", &self.kernel_initializer),
            ("recurrent_initializer", &self.recurrent_initializer),
            ("bias_initializer", &self.bias_initializer),
        ] {
            init.validate().map_err(|e| error(format!("{name}: {e}")))?;
        }
        for (name, reg) in [
            ("kernel_regularizer", &self.kernel_regularizer),
            ("recurrent_regularizer", &self.recurrent_regularizer),
            ("bias_regularizer", &self.bias_regularizer),
            ("activity_regularizer", &self.activity_regularizer),
        ] {
            if let Some(reg) = reg {
                reg.validate().map_err(|e| error(format!("{name}: {e}")))?;
            }
        }
        let dims = if self.return_sequences { vec![time, self.units] } else { vec![self.units] };
        Ok((time, features, Shape::new(dims).map_err(error)?))
    }

    /// Creates `kernel [features, gates·units]` and `recurrent_kernel [units, gates·units]`
    /// (Keras' fans: the whole matrix), and the bias of `bias_shape` filled by `bias_fill`.
    fn params(
        &self,
        ctx: &mut BuildContext<'_>,
        features: usize,
        gates: usize,
        bias_shape: Vec<usize>,
        bias_fill: impl FnOnce(&mut [f32], &mut BuildContext<'_>),
    ) -> Result<Vec<Param>, LayerError> {
        let width = gates * self.units;
        let mut kernel = ctx.param("kernel", vec![features, width])?.with_regularizer(self.kernel_regularizer.clone());
        self.kernel_initializer.fill(kernel.value_mut(), features, width, ctx.rng());
        let mut recurrent = ctx
            .param("recurrent_kernel", vec![self.units, width])?
            .with_regularizer(self.recurrent_regularizer.clone());
        self.recurrent_initializer.fill(recurrent.value_mut(), self.units, width, ctx.rng());
        let mut params = vec![kernel, recurrent];
        if self.use_bias {
            let mut bias = ctx.param("bias", bias_shape)?.with_regularizer(self.bias_regularizer.clone());
            bias_fill(bias.value_mut(), ctx);
            params.push(bias);
        }
        Ok(params)
    }
}

/// The output gradient for step `t` (of `time`) of the samples `rows`, added into their
/// rows `dh` (`[rows, units]`): the step's slice of each sample's gradient with
/// `return_sequences`, else the whole gradient at the last step.
fn add_output_grad(
    grad: &Matrix,
    (t, time): (usize, usize),
    return_sequences: bool,
    rows: Range<usize>,
    dh: &mut [f32],
) {
    if rows.is_empty() {
        return;
    }
    let u = dh.len() / rows.len();
    if return_sequences {
        for (i, d) in rows.zip(dh.chunks_exact_mut(u)) {
            let g = &grad.row(i)[t * u..(t + 1) * u];
            d.iter_mut().zip(g).for_each(|(d, &g)| *d += g);
        }
    } else if t + 1 == time {
        let g = &grad.as_slice()[rows.start * u..rows.end * u];
        dh.iter_mut().zip(g).for_each(|(d, &g)| *d += g);
    }
}

/// Buffers shared by the cells, time-major (`row t·b + i` is sample `i` at step `t`).
#[derive(Debug, Clone, Default)]
struct Steps {
    time: usize,
    features: usize,
    batch: usize,
    /// Step `t` reads input `T − 1 − t` (`go_backwards`).
    backwards: bool,
    /// The input, time-major `[T·b, features]`.
    x: Matrix,
    /// States `h_0 = 0, h_1, …, h_T`: `[(T + 1)·b, units]`.
    h: Matrix,
    /// Gradient w.r.t. the pre-activations the input projection feeds: `[T·b, width]`.
    dz: Matrix,
    /// The gradient flowing into `h_{t}` from later steps and the output: `[b, units]`.
    dh: Matrix,
    /// Scratch `[b, units]`.
    tmp: Matrix,
    /// The input gradient, time-major, before it is put back in sample order.
    dx: Matrix,
    /// The parts' sums of a weight gradient (`matmul::atb_parts`).
    parts: Matrix,
}

impl Steps {
    /// Copies the batch `x` (`[b, T·features]`) to time-major order, last step first when
    /// `backwards`.
    fn load(&mut self, x: View<'_>, (time, features, units): (usize, usize, usize), backwards: bool) {
        let b = x.rows;
        (self.time, self.features, self.batch, self.backwards) = (time, features, b, backwards);
        self.x.resize(time * b, features);
        for i in 0..b {
            for t in 0..time {
                let at = i * time + self.input_step(t);
                let src = &x.data[at * features..(at + 1) * features];
                self.x.row_mut(t * b + i).copy_from_slice(src);
            }
        }
        self.h.resize((time + 1) * b, units);
        self.h.as_mut_slice()[..b * units].fill(0.0);
    }

    /// `h_t` (`t` in `0..=T`) as a view.
    fn h(&self, t: usize) -> View<'_> {
        let (b, u) = (self.batch, self.h.cols());
        View { rows: b, cols: u, data: &self.h.as_slice()[t * b * u..(t + 1) * b * u] }
    }

    /// Writes the layer's output: every `h_t` (`[b, T·units]`) or the last one.
    fn output(&self, out: &mut Matrix, return_sequences: bool) {
        let (b, u, time) = (self.batch, self.h.cols(), self.time);
        if return_sequences {
            out.resize(b, time * u);
            for i in 0..b {
                for t in 0..time {
                    out.row_mut(i)[t * u..(t + 1) * u].copy_from_slice(self.h.row((t + 1) * b + i));
                }
            }
        } else {
            out.resize(b, u);
            out.as_mut_slice().copy_from_slice(self.h(time).data);
        }
    }

    /// The input step that step `t` reads.
    fn input_step(&self, t: usize) -> usize {
        if self.backwards { self.time - 1 - t } else { t }
    }

    /// After the backward loop: `dK = Xᵀ·dZ` and the input gradient `dZ·Kᵀ`, back in
    /// sample order.
    fn input_grads(&mut self, kernel: &mut Param, grad_input: Option<&mut Matrix>, par: Parallelism) {
        let (b, time, features) = (self.batch, self.time, self.features);
        let width = self.dz.cols();
        let dk = ViewMut { rows: features, cols: width, data: kernel.grad_mut() };
        matmul::atb_parts(dk, self.x.view(), self.dz.view(), &mut self.parts, par);
        if let Some(gi) = grad_input {
            gi.resize(b, time * features);
            let k = View { rows: features, cols: width, data: kernel.value() };
            // dX time-major, then back to the sample rows.
            self.dx.resize(time * b, features);
            matmul::abt(self.dx.view_mut(), self.dz.view(), k, Accumulate::Replace, par);
            for i in 0..b {
                for t in 0..time {
                    let at = self.input_step(t);
                    gi.row_mut(i)[at * features..(at + 1) * features].copy_from_slice(self.dx.row(t * b + i));
                }
            }
        }
    }

    /// `dst = H₋ᵀ·d` for the gradients `d` (`[T·b, n]`; `dz` when `None`) of a product
    /// `h_{t−1}·R`.
    fn recurrent_grad(&mut self, dst: ViewMut<'_>, d: Option<&Matrix>, par: Parallelism) {
        let Steps { h, dz, parts, batch, time, .. } = self;
        let (rows, u) = (*time * *batch, h.cols());
        let h_prev = View { rows, cols: u, data: &h.as_slice()[..rows * u] };
        matmul::atb_parts(dst, h_prev, d.unwrap_or(dz).view(), parts, par);
    }
}
