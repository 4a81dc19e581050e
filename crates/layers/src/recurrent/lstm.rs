//! `LSTM` (Keras `keras/src/layers/rnn/lstm.py`, implementation 2): gates in the order
//! i, f, c, o; `z = (x·K + h·R) + b`; `c = f·c₋ + i·act(z_c)`; `h = o·act(c)`.

use kiln_regularizers::Regularizer;
use kiln_tensor::{Accumulate, Matrix, Parallelism, Shape, View, ViewMut, kernels, matmul, pool};
use serde::{Deserialize, Serialize};

use super::{RecurrentOptions, Steps, lstm_step, sigmoid, yes};
use crate::{Activation, BuildContext, GradOf, Initializer, Layer, LayerCore, LayerError, LayerInput};

/// Long short-term memory (Keras `layers.LSTM`): kernel `[features, 4u]`, recurrent kernel
/// `[u, 4u]`, bias `[4u]`, columns in gate order i, f, c, o. Per step, as Keras' cell:
/// `z = (x_t·K + h·R) + b`; `i, f, o = rec_act(z_i, z_f, z_o)`, `g = act(z_c)`;
/// `c = f·c₋ + i·g`; `h = o·act(c)`; from zero states. Defaults as Keras: `tanh`,
/// `sigmoid`, bias with `unit_forget_bias` (the forget gate's bias starts at 1),
/// `glorot_uniform` / `orthogonal` / zeros, the last state only.
///
/// # Shapes
/// - input: `[time, features]` per sample
/// - output: `[units]`, or `[time, units]` with `return_sequences`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LSTM {
    #[serde(flatten)]
    core: LayerCore,
    /// Units, activation, bias, `return_sequences`, initializers and regularizers.
    #[serde(flatten)]
    pub options: RecurrentOptions,
    /// Activation of the gates i, f, o (default `sigmoid`).
    #[serde(default = "sigmoid")]
    pub recurrent_activation: Activation,
    /// Start the forget gate's bias at 1 (default true).
    #[serde(default = "yes")]
    pub unit_forget_bias: bool,
    #[serde(skip)]
    state: LstmState,
}

/// The cell's per-step caches, time-major `[T·b, …]`.
#[derive(Debug, Clone, Default)]
struct LstmState {
    steps: Steps,
    /// Cell states `c_0 = 0 … c_T`: `[(T + 1)·b, u]`.
    c: Matrix,
    /// `act(c_t)`: `[T·b, u]`.
    act_c: Matrix,
    /// The activated gates i, f, g, o of each step: `[T·b, 4u]`.
    gates: Matrix,
    /// `∂/∂c` flowing to the previous step: `[b, u]`.
    dc: Matrix,
}

impl LSTM {
    /// A layer of `units` with Keras' defaults.
    pub fn new(units: usize) -> Self {
        Self {
            core: LayerCore::default(),
            options: RecurrentOptions::new(units),
            recurrent_activation: Activation::Sigmoid,
            unit_forget_bias: true,
            state: LstmState::default(),
        }
    }

    fn activations(&self) -> [(&'static str, Activation); 2] {
        [("activation", self.options.activation), ("recurrent_activation", self.recurrent_activation)]
    }
}

super::recurrent_builders!(LSTM);

#[typetag::serde]
impl Layer for LSTM {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let (_, features, out) = self.options.check(&self.core, input, &self.activations()).ok()?;
        let u = self.options.units;
        Some(((features + u + usize::from(self.options.use_bias)).checked_mul(4 * u)?, out))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let (_, features, out) = self.options.check(&self.core, input, &self.activations())?;
        self.options.check_vector_bias(&self.core)?;
        let u = self.options.units;
        let (init, forget_one) = (self.options.bias_initializer, self.unit_forget_bias);
        // Keras: [init(u), ones(u), init(2u)] with unit_forget_bias, else init(4u).
        let fill = |b: &mut [f32], ctx: &mut BuildContext<'_>| {
            if forget_one {
                init.fill_vector(&mut b[..u], ctx.rng());
                Initializer::Ones.fill_vector(&mut b[u..2 * u], ctx.rng());
                init.fill_vector(&mut b[2 * u..], ctx.rng());
            } else {
                init.fill_vector(b, ctx.rng());
            }
        };
        self.core.params = self.options.params(ctx, features, 4, vec![4 * u], fill)?;
        self.core.output = Matrix::zeros(0, out.numel());
        Ok(out)
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Parallelism) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let params = &self.core.params;
        let (features, u) = (params[0].shape()[0], self.options.units);
        let (w, time, b) = (4 * u, x.cols / features, x.rows);
        let cell = Cell { u, act: self.options.activation, rec: self.recurrent_activation };
        let st = &mut self.state;
        st.steps.load(x, (time, features, u), self.options.go_backwards);
        let s = &mut st.steps;
        st.c.resize((time + 1) * b, u);
        st.c.as_mut_slice()[..b * u].fill(0.0);
        st.act_c.resize(time * b, u);
        st.gates.resize(time * b, w);
        // The input projection of every step at once: gates ← x·K.
        let k = View { rows: features, cols: w, data: params[0].value() };
        matmul::ab(st.gates.view_mut(), s.x.view(), k, Accumulate::Replace, par);
        let r = View { rows: u, cols: w, data: params[1].value() };
        let bias = params.get(2).map(|p| p.value());
        // Samples are independent: with threads, each takes a block of samples through
        // every step.
        let blocks = pool::row_blocks(par, b, super::MIN_BLOCK_ROWS);
        let bufs = [
            (st.gates.as_mut_slice(), w),
            (st.c.as_mut_slice(), u),
            (st.act_c.as_mut_slice(), u),
            (s.h.as_mut_slice(), u),
        ];
        pool::for_sample_blocks(par, b, &blocks, bufs, |_, [mut z, mut c, mut a_c, mut h]| {
            for t in 0..time {
                let ((h_prev, h_next), (c_prev, c_next)) = (h.read_write(t, t + 1), c.read_write(t, t + 1));
                cell.forward(z.step(t), (h_prev, r, bias), c_prev, c_next, a_c.step(t), h_next);
            }
        });
        s.output(&mut self.core.output, self.options.return_sequences);
    }

    fn backward(
        &mut self,
        _input: LayerInput<'_>,
        grad: &mut Matrix,
        _grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Parallelism,
    ) {
        let u = self.options.units;
        let w = 4 * u;
        let cell = Cell { u, act: self.options.activation, rec: self.recurrent_activation };
        let (params, st) = (&mut self.core.params, &mut self.state);
        let LstmState { steps: s, c, act_c, gates, dc } = st;
        let (b, time) = (s.batch, s.time);
        s.dh.resize(b, u);
        s.dh.fill(0.0);
        dc.resize(b, u);
        dc.fill(0.0);
        s.dz.resize(time * b, w);
        let r = View { rows: u, cols: w, data: params[1].value() };
        let (grad, return_sequences) = (&*grad, self.options.return_sequences);
        let blocks = pool::row_blocks(par, b, super::MIN_BLOCK_ROWS);
        let bufs = [(s.dz.as_mut_slice(), w), (s.dh.as_mut_slice(), u), (dc.as_mut_slice(), u)];
        pool::for_sample_blocks(par, b, &blocks, bufs, |rows, [mut dz, mut dh, mut dc]| {
            let (dh, dc) = (dh.step(0), dc.step(0));
            let (ru, rw) = (rows.start * u..rows.end * u, rows.start * w..rows.end * w);
            for t in (0..time).rev() {
                super::add_output_grad(grad, (t, time), return_sequences, rows.clone(), dh);
                let (tu, tw) = (t * b * u, t * b * w);
                let gates = &gates.as_slice()[tw + rw.start..tw + rw.end];
                let a_c = &act_c.as_slice()[tu + ru.start..tu + ru.end];
                let c_prev = &c.as_slice()[tu + ru.start..tu + ru.end];
                let dz = dz.step(t);
                cell.backward((gates, a_c, c_prev), dz, dc, dh);
                // dh_{t−1} = dz_t·Rᵀ.
                let n = rows.len();
                let dz = View { rows: n, cols: w, data: dz };
                matmul::abt(ViewMut { rows: n, cols: u, data: dh }, dz, r, Accumulate::Replace, super::STEP);
            }
        });
        let (kernel, rest) = params.split_first_mut().expect("built");
        let (recurrent, bias) = rest.split_first_mut().expect("built");
        if let Some(bias) = bias.first_mut() {
            kernels::column_sums_blocked(s.dz.as_slice(), bias.grad_mut());
        }
        let (u, w) = (recurrent.shape()[0], recurrent.shape()[1]);
        s.recurrent_grad(ViewMut { rows: u, cols: w, data: recurrent.grad_mut() }, None, par);
        s.input_grads(kernel, grad_input, par);
    }

    fn activity_regularizer(&self) -> Option<&dyn Regularizer> {
        self.options.activity_regularizer.as_deref()
    }
}

/// One LSTM step over a block of samples' rows (the block's own threads run it).
#[derive(Clone, Copy)]
struct Cell {
    u: usize,
    act: Activation,
    rec: Activation,
}

impl Cell {
    /// `z` holds `x·K` for these rows; adds `h₋·R` (and `b`, Keras' order), activates the
    /// gates in place and writes `c`, `act(c)` and `h`.
    fn forward(
        self,
        z: &mut [f32],
        (h_prev, r, bias): (&[f32], View<'_>, Option<&[f32]>),
        c_prev: &[f32],
        c_next: &mut [f32],
        a_c: &mut [f32],
        h_next: &mut [f32],
    ) {
        let (u, w) = (self.u, 4 * self.u);
        let n = h_prev.len() / u;
        let h_prev = View { rows: n, cols: u, data: h_prev };
        matmul::ab(ViewMut { rows: n, cols: w, data: z }, h_prev, r, Accumulate::Add, super::STEP);
        lstm_step::forward((self.rec, self.act), u, z, bias, c_prev, c_next, a_c, h_next);
    }

    /// From `dh` (into these rows' `h_t`) and `dc` (from the next step), the gradients `dz`
    /// of the pre-activations; leaves `dc` for the previous step.
    fn backward(self, saved: (&[f32], &[f32], &[f32]), dz: &mut [f32], dc: &mut [f32], dh: &[f32]) {
        lstm_step::backward((self.rec, self.act), self.u, saved, dz, dc, dh);
    }
}
