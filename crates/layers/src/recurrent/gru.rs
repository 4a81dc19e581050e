//! `GRU` (Keras `keras/src/layers/rnn/gru.py`, implementation 2): gates z, r, h;
//! `reset_after=True` (default: bias `[2, 3u]`, the reset gate applied after the recurrent
//! product) or `False` (bias `[3u]`, applied before).

use kiln_regularizers::Regularizer;
use kiln_tensor::{Accumulate, Matrix, Parallelism, Shape, View, ViewMut, kernels, matmul, pool};
use serde::{Deserialize, Serialize};

use super::{RecurrentOptions, Steps, cells, gru_step, sigmoid, yes};
use crate::{Activation, BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// Gated recurrent unit (Keras `layers.GRU`): kernel `[features, 3u]`, recurrent kernel
/// `[u, 3u]`, columns in gate order z, r, h. Per step, as Keras' cell, with
/// `x̂ = x_t·K + b_in`:
/// - `reset_after` (default): `ĥ = h·R + b_rec`; `z = σ(x̂_z + ĥ_z)`, `r = σ(x̂_r + ĥ_r)`,
///   `hh = act(x̂_h + r·ĥ_h)`; bias `[2, 3u]` (input row, recurrent row);
/// - otherwise: `z = σ(x̂_z + h·R_z)`, `r = σ(x̂_r + h·R_r)`, `hh = act(x̂_h + (r·h)·R_h)`;
///   bias `[3u]`;
///
/// then `h = z·h₋ + (1 − z)·hh`, from a zero state. Defaults as Keras: `tanh`,
/// `sigmoid`, `reset_after`, bias, `glorot_uniform` / `orthogonal` / zeros.
///
/// # Shapes
/// - input: `[time, features]` per sample
/// - output: `[units]`, or `[time, units]` with `return_sequences`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GRU {
    #[serde(flatten)]
    core: LayerCore,
    /// Units, activation, bias, `return_sequences`, initializers and regularizers.
    #[serde(flatten)]
    pub options: RecurrentOptions,
    /// Activation of the gates z, r (default `sigmoid`).
    #[serde(default = "sigmoid")]
    pub recurrent_activation: Activation,
    /// Apply the reset gate after the recurrent product (default true, Keras 3's).
    #[serde(default = "yes")]
    pub reset_after: bool,
    #[serde(skip)]
    state: GruState,
}

/// Per-step caches, time-major.
#[derive(Debug, Clone, Default)]
struct GruState {
    steps: Steps,
    /// The activated z, r and hh of each step: `[T·b, 3u]` (x̂ before activation).
    gates: Matrix,
    /// The recurrent products: `ĥ = h·R + b_rec` (`[T·b, 3u]`, reset_after), or `h·R_zr`
    /// (`[T·b, 2u]`) then `(r·h)·R_h` (`[T·b, u]`) in `inner_h`.
    inner: Matrix,
    inner_h: Matrix,
    /// `r·h₋` of each step (reset before): `[T·b, u]`.
    rh: Matrix,
    /// The recurrent kernel split in contiguous `R_zr [u, 2u]` and `R_h [u, u]` (reset
    /// before), copied each forward.
    r_zr: Matrix,
    r_h: Matrix,
    /// Gradients w.r.t. the recurrent products' outputs.
    d_inner: Matrix,
    d_inner_h: Matrix,
    /// Scratch `[b, u]` and the `[u, 2u]`/`[u, u]` halves of `dR` (reset before).
    d_rh: Matrix,
    dr_zr: Matrix,
    dr_h: Matrix,
}

impl GRU {
    /// A layer of `units` with Keras' defaults.
    pub fn new(units: usize) -> Self {
        Self {
            core: LayerCore::default(),
            options: RecurrentOptions::new(units),
            recurrent_activation: Activation::Sigmoid,
            reset_after: true,
            state: GruState::default(),
        }
    }

    /// Sets `reset_after`.
    pub fn reset_after(mut self, on: bool) -> Self {
        self.reset_after = on;
        self
    }

    fn activations(&self) -> [(&'static str, Activation); 2] {
        [("activation", self.options.activation), ("recurrent_activation", self.recurrent_activation)]
    }
}

super::recurrent_builders!(GRU);

/// `(input bias, recurrent bias)` of a `[3u]` or (`reset_after`) `[2, 3u]` bias.
fn biases(params: &[crate::Param], reset_after: bool, u: usize) -> (Option<&[f32]>, Option<&[f32]>) {
    match params.get(2).map(|p| p.value()) {
        None => (None, None),
        Some(b) if reset_after => (Some(&b[..3 * u]), Some(&b[3 * u..])),
        Some(b) => (Some(b), None),
    }
}

#[typetag::serde]
impl Layer for GRU {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let (_, features, out) = self.options.check(&self.core, input, &self.activations()).ok()?;
        let u = self.options.units;
        let biases = if !self.options.use_bias {
            0
        } else if self.reset_after {
            2
        } else {
            1
        };
        Some(((features + u + biases).checked_mul(3 * u)?, out))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let (_, features, out) = self.options.check(&self.core, input, &self.activations())?;
        let u = self.options.units;
        let shape = if self.reset_after { vec![2, 3 * u] } else { vec![3 * u] };
        let init = self.options.bias_initializer;
        // Keras' fans: `(2, 3u)` for the `reset_after` bias, `(3u, 3u)` for the 1-D one.
        if !self.reset_after {
            self.options.check_vector_bias(&self.core)?;
        }
        let reset_after = self.reset_after;
        self.core.params = self.options.params(ctx, features, 3, shape, |b, ctx| {
            if reset_after { init.fill(b, 2, 3 * u, ctx.rng()) } else { init.fill_vector(b, ctx.rng()) }
        })?;
        self.core.output = Matrix::zeros(0, out.numel());
        Ok(out)
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Parallelism) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let (features, u) = (self.core.params[0].shape()[0], self.options.units);
        let (w, time, b) = (3 * u, x.cols / features, x.rows);
        let (act, rec, after) = (self.options.activation, self.recurrent_activation, self.reset_after);
        let (params, st) = (&self.core.params, &mut self.state);
        let (b_in, b_rec) = biases(params, after, u);
        st.steps.load(x, (time, features, u), self.options.go_backwards);
        let s = &mut st.steps;
        // x̂ = x·K + b_in for every step at once.
        st.gates.resize(time * b, w);
        let k = View { rows: features, cols: w, data: params[0].value() };
        matmul::ab(st.gates.view_mut(), s.x.view(), k, Accumulate::Replace, par);
        if let Some(b_in) = b_in {
            kernels::add_row_vector(st.gates.as_mut_slice(), b_in);
        }
        let r_full = params[1].value();
        if after {
            st.inner.resize(time * b, w);
        } else {
            st.inner.resize(time * b, 2 * u);
            st.inner_h.resize(time * b, u);
            st.rh.resize(time * b, u);
            split_recurrent(r_full, u, &mut st.r_zr, &mut st.r_h);
        }
        // Samples are independent: with threads, each takes a block of samples through
        // every step.
        let blocks = pool::row_blocks(par, b, super::MIN_BLOCK_ROWS);
        let cols = st.inner.cols();
        let (r_zr, r_h) = (st.r_zr.view(), st.r_h.view());
        let bufs = [
            (st.gates.as_mut_slice(), w),
            (st.inner.as_mut_slice(), cols),
            (st.rh.as_mut_slice(), u),
            (st.inner_h.as_mut_slice(), u),
            (s.h.as_mut_slice(), u),
        ];
        pool::for_sample_blocks(par, b, &blocks, bufs, |rows, [mut gates, mut inner, mut rh, mut inner_h, mut h]| {
            let n = rows.len();
            for t in 0..time {
                let (h_prev, h_next) = h.read_write(t, t + 1);
                let hp = View { rows: n, cols: u, data: h_prev };
                let (gates, inner) = (gates.step(t), inner.step(t));
                if after {
                    let r = View { rows: u, cols: w, data: r_full };
                    matmul::ab(ViewMut { rows: n, cols: w, data: inner }, hp, r, Accumulate::Replace, super::STEP);
                    gru_step::forward_after((rec, act), u, (gates, inner), b_rec, h_prev, h_next);
                } else {
                    matmul::ab(
                        ViewMut { rows: n, cols: 2 * u, data: inner },
                        hp,
                        r_zr,
                        Accumulate::Replace,
                        super::STEP,
                    );
                    let rh = rh.step(t);
                    gru_step::reset_gates(rec, u, gates, inner, h_prev, rh);
                    // (r·h₋)·R_h.
                    let ih = inner_h.step(t);
                    let rh = View { rows: n, cols: u, data: rh };
                    matmul::ab(ViewMut { rows: n, cols: u, data: ih }, rh, r_h, Accumulate::Replace, super::STEP);
                    gru_step::candidate(act, u, gates, ih, h_prev, h_next);
                }
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
        let w = 3 * u;
        let (act, rec, after) = (self.options.activation, self.recurrent_activation, self.reset_after);
        let (params, st) = (&mut self.core.params, &mut self.state);
        let GruState { steps: s, gates, inner, rh, r_zr, r_h, d_inner, d_inner_h, d_rh, dr_zr, dr_h, .. } = st;
        let (b, time) = (s.batch, s.time);
        s.dh.resize(b, u);
        s.dh.fill(0.0);
        s.dz.resize(time * b, w);
        let inner_cols = inner.cols();
        d_inner.resize(time * b, inner_cols);
        if !after {
            d_inner_h.resize(time * b, u);
            d_rh.resize(b, u);
        }
        s.tmp.resize(b, u);
        let r_inner = if after { View { rows: u, cols: w, data: params[1].value() } } else { r_zr.view() };
        let (grad, return_sequences, r_h) = (&*grad, self.options.return_sequences, r_h.view());
        let (gates, inner, h) = (gates.as_slice(), inner.as_slice(), s.h.as_slice());
        let blocks = pool::row_blocks(par, b, super::MIN_BLOCK_ROWS);
        let bufs = [
            (s.dz.as_mut_slice(), w),
            (d_inner.as_mut_slice(), inner_cols),
            (d_inner_h.as_mut_slice(), u),
            (d_rh.as_mut_slice(), u),
            (s.dh.as_mut_slice(), u),
            (s.tmp.as_mut_slice(), u),
        ];
        pool::for_sample_blocks(
            par,
            b,
            &blocks,
            bufs,
            |rows, [mut dz, mut d_inner, mut dhh, mut d_rh, mut dh, mut tmp]| {
                let n = rows.len();
                let (dh, tmp) = (dh.step(0), tmp.step(0));
                for t in (0..time).rev() {
                    super::add_output_grad(grad, (t, time), return_sequences, rows.clone(), dh);
                    let at = |width: usize| (t * b + rows.start) * width..(t * b + rows.end) * width;
                    let (gates, inner, h_prev) = (&gates[at(w)], &inner[at(inner_cols)], &h[at(u)]);
                    let (dz, d_inner) = (dz.step(t), d_inner.step(t));
                    // Through h = z·h₋ + (1 − z)·hh (and the reset gate, reset_after).
                    gru_step::backward((rec, act), u, (gates, inner, h_prev, &*dh), after, dz, d_inner, tmp);
                    if !after {
                        // (r·h₋)·R_h: d(r·h₋) = dhh·R_hᵀ; then ∂r = d(rh)·h₋, ∂h₋ += d(rh)·r.
                        let (dhh, d_rh) = (dhh.step(t), d_rh.step(0));
                        for (dst, src) in dhh.chunks_exact_mut(u).zip(dz.chunks_exact(w)) {
                            dst.copy_from_slice(&src[2 * u..]);
                        }
                        let dhh = View { rows: n, cols: u, data: dhh };
                        matmul::abt(
                            ViewMut { rows: n, cols: u, data: d_rh },
                            dhh,
                            r_h,
                            Accumulate::Replace,
                            super::STEP,
                        );
                        for i in 0..n {
                            for j in 0..u {
                                let (r, drh) = (gates[i * w + u + j], d_rh[i * u + j]);
                                let dr_pre = drh * h_prev[i * u + j] * cells::slope(rec, r);
                                dz[i * w + u + j] = dr_pre;
                                d_inner[i * inner_cols + u + j] = dr_pre;
                                tmp[i * u + j] += drh * r;
                            }
                        }
                    }
                    // dh₋ = direct + d_inner·R_innerᵀ.
                    let d_inner = View { rows: n, cols: inner_cols, data: d_inner };
                    dh.copy_from_slice(tmp);
                    matmul::abt(ViewMut { rows: n, cols: u, data: dh }, d_inner, r_inner, Accumulate::Add, super::STEP);
                }
            },
        );
        let (d_inner, d_inner_h) = (&*d_inner, &*d_inner_h);
        let (kernel, rest) = params.split_first_mut().expect("built");
        let (recurrent, bias) = rest.split_first_mut().expect("built");
        if let Some(bias) = bias.first_mut() {
            let g = bias.grad_mut();
            kernels::column_sums_blocked(s.dz.as_slice(), &mut g[..w]);
            if after {
                kernels::column_sums_blocked(d_inner.as_slice(), &mut g[w..]);
            }
        }
        if after {
            s.recurrent_grad(ViewMut { rows: u, cols: w, data: recurrent.grad_mut() }, Some(d_inner), par);
        } else {
            // dR_zr = H₋ᵀ·d_inner, dR_h = (r·h₋)ᵀ·dhh, put back side by side as [u, 3u].
            dr_zr.resize(u, 2 * u);
            s.recurrent_grad(dr_zr.view_mut(), Some(d_inner), par);
            dr_h.resize(u, u);
            matmul::atb_parts(dr_h.view_mut(), rh.view(), d_inner_h.view(), &mut s.parts, par);
            let g = recurrent.grad_mut();
            for row in 0..u {
                g[row * w..row * w + 2 * u].copy_from_slice(dr_zr.row(row));
                g[row * w + 2 * u..(row + 1) * w].copy_from_slice(dr_h.row(row));
            }
        }
        s.input_grads(kernel, grad_input, par);
    }

    fn activity_regularizer(&self) -> Option<&dyn Regularizer> {
        self.options.activity_regularizer.as_deref()
    }
}

/// `R [u, 3u]` split into contiguous `R_zr [u, 2u]` and `R_h [u, u]`.
fn split_recurrent(r: &[f32], u: usize, zr: &mut Matrix, h: &mut Matrix) {
    zr.resize(u, 2 * u);
    h.resize(u, u);
    for row in 0..u {
        zr.row_mut(row).copy_from_slice(&r[row * 3 * u..row * 3 * u + 2 * u]);
        h.row_mut(row).copy_from_slice(&r[row * 3 * u + 2 * u..(row + 1) * 3 * u]);
    }
}
