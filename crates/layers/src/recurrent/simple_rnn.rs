//! `SimpleRNN` (Keras `keras/src/layers/rnn/simple_rnn.py`): `h_t = act((x_t·K + b) + h_{t−1}·R)`.

use kiln_regularizers::Regularizer;
use kiln_tensor::{Accumulate, Matrix, Parallelism, Shape, View, ViewMut, kernels, matmul, pool};
use serde::{Deserialize, Serialize};

use super::cells::{self, CellAct, with_cell_acts};
use super::{RecurrentOptions, Steps};
use crate::{Activation, BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// A fully connected recurrent layer (Keras `layers.SimpleRNN`): kernel `[features, units]`,
/// recurrent kernel `[units, units]`, bias `[units]`; `h_t = act((x_t·K + b) + h_{t−1}·R)`
/// in Keras' order of additions, from `h_0 = 0`. Defaults as Keras: `tanh`, bias,
/// `glorot_uniform` / `orthogonal` / zeros, the last state only.
///
/// # Shapes
/// - input: `[time, features]` per sample
/// - output: `[units]`, or `[time, units]` with `return_sequences`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimpleRNN {
    #[serde(flatten)]
    core: LayerCore,
    /// Units, activation, bias, `return_sequences`, initializers and regularizers.
    #[serde(flatten)]
    pub options: RecurrentOptions,
    #[serde(skip)]
    steps: Steps,
}

impl SimpleRNN {
    /// A layer of `units` with Keras' defaults.
    pub fn new(units: usize) -> Self {
        Self { core: LayerCore::default(), options: RecurrentOptions::new(units), steps: Steps::default() }
    }
}

super::recurrent_builders!(SimpleRNN);

#[typetag::serde]
impl Layer for SimpleRNN {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let (_, features, out) =
            self.options.check(&self.core, input, &[("activation", self.options.activation)]).ok()?;
        let u = self.options.units;
        Some(((features + u + usize::from(self.options.use_bias)).checked_mul(u)?, out))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let (_, features, out) = self.options.check(&self.core, input, &[("activation", self.options.activation)])?;
        self.options.check_vector_bias(&self.core)?;
        let u = self.options.units;
        let init = self.options.bias_initializer;
        self.core.params = self.options.params(ctx, features, 1, vec![u], |b, ctx| init.fill_vector(b, ctx.rng()))?;
        self.core.output = Matrix::zeros(0, out.numel());
        Ok(out)
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Parallelism) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let (k, r) = (&self.core.params[0], &self.core.params[1]);
        let (features, u) = (k.shape()[0], self.options.units);
        let time = x.cols / features;
        let s = &mut self.steps;
        s.load(x, (time, features, u), self.options.go_backwards);
        let b = x.rows;
        // z = x·K (+ b) for every step at once; then per step z_t += h_{t−1}·R.
        s.dz.resize(time * b, u);
        let kv = View { rows: features, cols: u, data: k.value() };
        matmul::ab(s.dz.view_mut(), s.x.view(), kv, Accumulate::Replace, par);
        if let Some(bias) = self.core.params.get(2) {
            kernels::add_row_vector(s.dz.as_mut_slice(), bias.value());
        }
        let rv = View { rows: u, cols: u, data: r.value() };
        let act = self.options.activation;
        // Samples are independent: with threads, each takes a block of samples through
        // every step.
        let blocks = pool::row_blocks(par, b, super::MIN_BLOCK_ROWS);
        let bufs = [(s.dz.as_mut_slice(), u), (s.h.as_mut_slice(), u)];
        pool::for_sample_blocks(par, b, &blocks, bufs, |rows, [mut z, mut h]| {
            let n = rows.len();
            for t in 0..time {
                let ((h_prev, h_next), z) = (h.read_write(t, t + 1), z.step(t));
                let h_prev = View { rows: n, cols: u, data: h_prev };
                matmul::ab(ViewMut { rows: n, cols: u, data: z }, h_prev, rv, Accumulate::Add, super::STEP);
                activate(act, z, h_next);
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
        let (params, s) = (&mut self.core.params, &mut self.steps);
        let (b, time) = (s.batch, s.time);
        let act = self.options.activation;
        s.dh.resize(b, u);
        s.dh.fill(0.0);
        let rv = View { rows: u, cols: u, data: params[1].value() };
        let (grad, return_sequences) = (&*grad, self.options.return_sequences);
        let blocks = pool::row_blocks(par, b, super::MIN_BLOCK_ROWS);
        let Steps { h, dz, dh, .. } = &mut *s;
        let h = h.as_slice();
        pool::for_sample_blocks(
            par,
            b,
            &blocks,
            [(dz.as_mut_slice(), u), (dh.as_mut_slice(), u)],
            |rows, [mut dz, mut dh]| {
                let (n, dh) = (rows.len(), dh.step(0));
                for t in (0..time).rev() {
                    super::add_output_grad(grad, (t, time), return_sequences, rows.clone(), dh);
                    // dz_t = dh_t ⊙ act'(h_t); dh_{t−1} = dz_t·Rᵀ.
                    let h_t = &h[((t + 1) * b + rows.start) * u..((t + 1) * b + rows.end) * u];
                    let dz = dz.step(t);
                    slopes(act, dh, h_t, dz);
                    let dz = View { rows: n, cols: u, data: dz };
                    matmul::abt(ViewMut { rows: n, cols: u, data: dh }, dz, rv, Accumulate::Replace, super::STEP);
                }
            },
        );
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

/// `h = act(z)` over a block's step (the activation's type known to the loop).
fn activate(act: Activation, z: &[f32], h: &mut [f32]) {
    with_cell_acts!(Activation::Linear, act, activate_rows(z, h));
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn activate_rows<R: CellAct, A: CellAct>(z: &[f32], h: &mut [f32]) {
    h.iter_mut().zip(z).for_each(|(h, &z)| *h = A::apply(z));
}

/// `dz = dh ⊙ act'(h)` from the states `h = act(z)`.
fn slopes(act: Activation, dh: &[f32], h: &[f32], dz: &mut [f32]) {
    with_cell_acts!(Activation::Linear, act, slopes_rows(dh, h, dz));
}

#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn slopes_rows<R: CellAct, A: CellAct>(dh: &[f32], h: &[f32], dz: &mut [f32]) {
    dz.iter_mut().zip(dh).zip(h).for_each(|((d, &g), &h)| *d = g * A::slope(h));
}
