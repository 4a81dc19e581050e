//! `BatchNormalization` and `LayerNormalization` over the last axis.
//!
//! Keras: `keras/src/layers/normalization/batch_normalization.py` and
//! `layer_normalization.py`; the TensorFlow formulas they reach
//! (`tf.nn.moments`: mean, then the mean of squared differences from it — the biased
//! variance; `tf.nn.batch_normalization`: `inv = rsqrt(var + ε)·γ`,
//! `y = x·inv + (β − mean·inv)`), and `keras/src/ops/nn.py` `_layer_normalization`
//! (`y = x·inv + (−mean·inv + β)`). Long sums (over batch·h·w rows) accumulate in `f64`,
//! so kiln's own rounding stays far below the trace tolerance.

use kiln_regularizers::Regularizer;
use kiln_tensor::{Matrix, Parallelism, Shape};
use serde::{Deserialize, Serialize};

use crate::{BuildContext, GradOf, Initializer, Layer, LayerCore, LayerError, LayerInput};

fn yes() -> bool {
    true
}

fn minus_one() -> i64 {
    -1
}

/// The builder methods both normalization layers have.
macro_rules! norm_builders {
    ($t:ty) => {
        impl $t {
            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }

            /// Sets ε (Keras' default 1e-3).
            pub fn epsilon(mut self, epsilon: f32) -> Self {
                self.epsilon = epsilon;
                self
            }

            /// Turns the offset β on or off.
            pub fn center(mut self, center: bool) -> Self {
                self.center = center;
                self
            }

            /// Turns the scale γ on or off.
            pub fn scale(mut self, scale: bool) -> Self {
                self.scale = scale;
                self
            }
        }
    };
}

/// Checks `axis` (Keras counts the batch as axis 0) names the last axis of `input`.
fn check_last_axis(core: &LayerCore, axis: i64, input: &Shape) -> Result<(), LayerError> {
    if axis == -1 || axis == input.rank() as i64 {
        return Ok(());
    }
    Err(LayerError::Config {
        layer: core.name.clone(),
        message: format!(
            "argument `axis` = {axis} is not supported: kiln normalizes the last axis only (-1, or {} here)",
            input.rank()
        ),
    })
}

fn check_epsilon(core: &LayerCore, epsilon: f32) -> Result<(), LayerError> {
    if epsilon.is_finite() && epsilon > 0.0 {
        return Ok(());
    }
    Err(LayerError::Config {
        layer: core.name.clone(),
        message: format!("argument `epsilon` must be a finite number > 0, received epsilon={epsilon}"),
    })
}

/// Checks the initializers of a layer's 1-D parameters (those it creates: `(argument,
/// initializer, created)`): valid arguments, and none that needs two dimensions.
fn check_vector_inits(core: &LayerCore, inits: &[(&str, Initializer, bool)]) -> Result<(), LayerError> {
    let error = |message: String| LayerError::Config { layer: core.name.clone(), message };
    for &(what, init, _) in inits.iter().filter(|i| i.2) {
        init.validate().map_err(|e| error(format!("{what}: {e}")))?;
        init.check_vector(what).map_err(error)?;
    }
    Ok(())
}

/// Checks the `gamma`/`beta` regularizers' factors, as Keras does when it makes them
/// (`validate_float_arg`: a finite number ≥ 0), whether or not the parameter is created.
fn check_regularizers(
    core: &LayerCore,
    gamma: &Option<Box<dyn Regularizer>>,
    beta: &Option<Box<dyn Regularizer>>,
) -> Result<(), LayerError> {
    for (what, reg) in [("gamma_regularizer", gamma), ("beta_regularizer", beta)] {
        if let Some(reg) = reg {
            reg.validate()
                .map_err(|e| LayerError::Config { layer: core.name.clone(), message: format!("{what}: {e}") })?;
        }
    }
    Ok(())
}

/// The optional `gamma`/`beta` pair both layers create over `width` features, with their
/// initializers and regularizers, in Keras' order (gamma, then beta).
#[allow(clippy::too_many_arguments)]
fn affine_params(
    ctx: &mut BuildContext<'_>,
    width: usize,
    scale: bool,
    center: bool,
    gamma_init: Initializer,
    beta_init: Initializer,
    gamma_reg: &Option<Box<dyn Regularizer>>,
    beta_reg: &Option<Box<dyn Regularizer>>,
) -> Result<Vec<crate::Param>, LayerError> {
    let mut params = Vec::new();
    if scale {
        let mut gamma = ctx.param("gamma", vec![width])?.with_regularizer(gamma_reg.clone());
        gamma_init.fill_vector(gamma.value_mut(), ctx.rng());
        params.push(gamma);
    }
    if center {
        let mut beta = ctx.param("beta", vec![width])?.with_regularizer(beta_reg.clone());
        beta_init.fill_vector(beta.value_mut(), ctx.rng());
        params.push(beta);
    }
    Ok(params)
}

/// Normalizes each channel (the last axis) with the batch's mean and biased variance in
/// training, and with moving averages of them otherwise (Keras
/// `layers.BatchNormalization`): `y = γ·(x − μ)/√(σ² + ε) + β`, computed as TF does.
///
/// In a training forward, before the optimizer step, `moving = moving·momentum +
/// batch·(1 − momentum)` for the mean and the variance (non-trainable parameters
/// `moving_mean`, `moving_variance`). Evaluation, prediction and validation inside `fit`
/// use the moving statistics. Defaults as Keras: `momentum` 0.99, `epsilon` 1e-3, `center`
/// and `scale` on, γ ones, β and the moving mean zeros, the moving variance ones.
///
/// # Shapes
/// - input: any sample shape `[…, c]`; statistics per `c` over batch and leading axes
/// - output: the same shape
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchNormalization {
    #[serde(flatten)]
    core: LayerCore,
    /// The normalized axis: -1 (the last, Keras' default) or its index counting the batch.
    #[serde(default = "minus_one")]
    pub axis: i64,
    /// Weight of the old value in the moving averages (default 0.99).
    pub momentum: f64,
    /// Added to the variance (default 1e-3).
    pub epsilon: f32,
    /// Learn an offset β (default true).
    #[serde(default = "yes")]
    pub center: bool,
    /// Learn a scale γ (default true).
    #[serde(default = "yes")]
    pub scale: bool,
    /// Initializer of γ (default ones).
    pub gamma_initializer: Initializer,
    /// Initializer of β (default zeros).
    pub beta_initializer: Initializer,
    /// Initializer of the moving mean (default zeros).
    pub moving_mean_initializer: Initializer,
    /// Initializer of the moving variance (default ones).
    pub moving_variance_initializer: Initializer,
    /// Penalty on γ.
    #[serde(default)]
    pub gamma_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on β.
    #[serde(default)]
    pub beta_regularizer: Option<Box<dyn Regularizer>>,
    #[serde(skip)]
    state: NormState,
}

/// What a training forward keeps for backward, per normalized group (a channel for BN, a
/// row for LN): the mean and `1/√(σ² + ε)`.
#[derive(Debug, Clone, Default)]
struct NormState {
    width: usize,
    mean: Vec<f32>,
    rstd: Vec<f32>,
    /// BN: whether the last forward used batch statistics (training).
    batch_stats: bool,
    /// f64 sums per feature, sized at build (no allocation per batch).
    sum_a: Vec<f64>,
    sum_b: Vec<f64>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// A batch normalization layer with Keras' defaults.
    pub fn new() -> Self {
        Self {
            core: LayerCore::default(),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            gamma_initializer: Initializer::Ones,
            beta_initializer: Initializer::Zeros,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            gamma_regularizer: None,
            beta_regularizer: None,
            state: NormState::default(),
        }
    }

    /// Sets the momentum of the moving averages.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Indices of γ, β, the moving mean and the moving variance in `params`.
    fn indices(&self) -> (Option<usize>, Option<usize>, usize, usize) {
        let gamma = self.scale.then_some(0);
        let beta = self.center.then_some(usize::from(self.scale));
        let moving = usize::from(self.scale) + usize::from(self.center);
        (gamma, beta, moving, moving + 1)
    }
}

norm_builders!(BatchNormalization);

#[typetag::serde]
impl Layer for BatchNormalization {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        // An axis kiln refuses plans nothing: `build` then says why, naming the axis.
        check_last_axis(&self.core, self.axis, input).ok()?;
        let groups = 2 + usize::from(self.scale) + usize::from(self.center);
        Some((groups.checked_mul(input.last())?, input.clone()))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        check_last_axis(&self.core, self.axis, input)?;
        check_epsilon(&self.core, self.epsilon)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(LayerError::Config {
                layer: self.core.name.clone(),
                message: format!("argument `momentum` must be in [0, 1], received momentum={}", self.momentum),
            });
        }
        check_vector_inits(
            &self.core,
            &[
                ("gamma_initializer", self.gamma_initializer, self.scale),
                ("beta_initializer", self.beta_initializer, self.center),
                ("moving_mean_initializer", self.moving_mean_initializer, true),
                ("moving_variance_initializer", self.moving_variance_initializer, true),
            ],
        )?;
        check_regularizers(&self.core, &self.gamma_regularizer, &self.beta_regularizer)?;
        let c = input.last();
        let mut params = affine_params(
            ctx,
            c,
            self.scale,
            self.center,
            self.gamma_initializer,
            self.beta_initializer,
            &self.gamma_regularizer,
            &self.beta_regularizer,
        )?;
        let mut mean = ctx.param("moving_mean", vec![c])?.non_trainable();
        self.moving_mean_initializer.fill_vector(mean.value_mut(), ctx.rng());
        let mut var = ctx.param("moving_variance", vec![c])?.non_trainable();
        self.moving_variance_initializer.fill_vector(var.value_mut(), ctx.rng());
        params.extend([mean, var]);
        self.core.params = params;
        self.core.output = Matrix::zeros(0, input.numel());
        self.state = NormState {
            width: c,
            mean: vec![0.0; c],
            rstd: vec![0.0; c],
            batch_stats: false,
            sum_a: vec![0.0; c],
            sum_b: vec![0.0; c],
        };
        Ok(input.clone())
    }

    fn forward(&mut self, input: LayerInput<'_>, training: bool, _par: Parallelism) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let (gamma, beta, moving_mean, moving_var) = self.indices();
        let (c, eps) = (self.state.width, self.epsilon);
        let s = &mut self.state;
        // Keras: `if training and self.trainable` — a frozen BN runs in inference mode.
        let batch = training && self.core.trainable;
        s.batch_stats = batch;
        if batch {
            batch_moments(x.data, c, &mut s.sum_a, &mut s.mean, &mut s.rstd);
            // Keras: `moving·momentum + batch·(1 − momentum)`, both factors float32
            // constants (Python floats), the batch variance the biased one.
            let (m, one_minus) = (self.momentum as f32, (1.0 - self.momentum) as f32);
            let params = &mut self.core.params;
            for (mv, &b) in params[moving_mean].value_mut().iter_mut().zip(&s.mean) {
                *mv = *mv * m + b * one_minus;
            }
            for (mv, &b) in params[moving_var].value_mut().iter_mut().zip(&s.rstd) {
                *mv = *mv * m + b * one_minus;
            }
        } else {
            s.mean.copy_from_slice(self.core.params[moving_mean].value());
            s.rstd.copy_from_slice(self.core.params[moving_var].value());
        }
        // `s.rstd` holds the variance until here; from now on 1/√(σ² + ε).
        s.rstd.iter_mut().for_each(|v| *v = 1.0 / (*v + eps).sqrt());
        let params = &self.core.params;
        let out = &mut self.core.output;
        out.resize(x.rows, x.cols);
        for ch in 0..c {
            // inv = rsqrt(var + ε)·γ; y = x·inv + (β − mean·inv).
            let inv = gamma.map_or(s.rstd[ch], |g| s.rstd[ch] * params[g].value()[ch]);
            let shift = beta.map_or(0.0, |b| params[b].value()[ch]) - s.mean[ch] * inv;
            for (y, &xv) in out.as_mut_slice()[ch..].iter_mut().step_by(c).zip(x.data[ch..].iter().step_by(c)) {
                *y = xv * inv + shift;
            }
        }
    }

    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        _grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        _par: Parallelism,
    ) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let (gamma, beta, _, _) = self.indices();
        let c = self.state.width;
        let NormState { mean, rstd, batch_stats, sum_a: sum_dy, sum_b: sum_dy_xhat, .. } = &mut self.state;
        // Only a frozen layer trains with its moving statistics; a trainable one's backward
        // follows a training forward (γ and β need the batch's statistics).
        assert!(
            *batch_stats || !self.core.trainable,
            "layer `{}`: backward follows a training forward",
            self.core.name
        );
        if !*batch_stats {
            // A frozen layer in training: `y = x·inv + shift` with constant statistics, so
            // dx = dy·inv with forward's float32 `inv` (TF's gradient of
            // `tf.nn.batch_normalization`); γ and β are frozen and get no gradient.
            if let Some(gi) = grad_input {
                gi.resize(x.rows, x.cols);
                let params = &self.core.params;
                for (o, gr) in gi.as_mut_slice().chunks_exact_mut(c).zip(grad.as_slice().chunks_exact(c)) {
                    for ch in 0..c {
                        let inv = gamma.map_or(rstd[ch], |g| rstd[ch] * params[g].value()[ch]);
                        o[ch] = gr[ch] * inv;
                    }
                }
            }
            return;
        }
        let rows = (x.data.len() / c) as f64;
        // Σ dy and Σ dy·x̂ per channel, in f64 over batch × leading rows.
        sum_dy.fill(0.0);
        sum_dy_xhat.fill(0.0);
        for (xr, gr) in x.data.chunks_exact(c).zip(grad.as_slice().chunks_exact(c)) {
            for ch in 0..c {
                let xhat = (xr[ch] - mean[ch]) * rstd[ch];
                sum_dy[ch] += gr[ch] as f64;
                sum_dy_xhat[ch] += (gr[ch] * xhat) as f64;
            }
        }
        let params = &mut self.core.params;
        if let Some(gi) = grad_input {
            gi.resize(x.rows, x.cols);
            let gamma_values = gamma.map(|g| params[g].value());
            // dx = γ·r·(dy − mean(dy) − x̂·mean(dy·x̂)).
            for ((o, xr), gr) in
                gi.as_mut_slice().chunks_exact_mut(c).zip(x.data.chunks_exact(c)).zip(grad.as_slice().chunks_exact(c))
            {
                for ch in 0..c {
                    let xhat = (xr[ch] - mean[ch]) * rstd[ch];
                    let g = gamma_values.map_or(1.0, |v| v[ch]);
                    let centered = gr[ch] as f64 - sum_dy[ch] / rows - xhat as f64 * sum_dy_xhat[ch] / rows;
                    o[ch] = (g as f64 * rstd[ch] as f64 * centered) as f32;
                }
            }
        }
        if let Some(g) = gamma {
            params[g].grad_mut().iter_mut().zip(sum_dy_xhat.iter()).for_each(|(d, &v)| *d = v as f32);
        }
        if let Some(b) = beta {
            params[b].grad_mut().iter_mut().zip(sum_dy.iter()).for_each(|(d, &v)| *d = v as f32);
        }
    }
}

/// Per-channel mean and biased variance of rows of `c` values (`tf.nn.moments`: the
/// variance from the float32 mean), summed in f64 (`acc`: `c` scratch values). Writes the
/// variance into `var`.
fn batch_moments(x: &[f32], c: usize, acc: &mut [f64], mean: &mut [f32], var: &mut [f32]) {
    let rows = (x.len() / c) as f64;
    acc.fill(0.0);
    for row in x.chunks_exact(c) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v as f64);
    }
    mean.iter_mut().zip(acc.iter()).for_each(|(m, &a)| *m = (a / rows) as f32);
    acc.fill(0.0);
    for row in x.chunks_exact(c) {
        for ((a, &v), &m) in acc.iter_mut().zip(row).zip(mean.iter()) {
            let d = v - m;
            *a += (d * d) as f64;
        }
    }
    var.iter_mut().zip(acc.iter()).for_each(|(v, &a)| *v = (a / rows) as f32);
}

/// Normalizes each position's last-axis vector by its own mean and biased variance (Keras
/// `layers.LayerNormalization`): `y = γ·(x − μ)/√(σ² + ε) + β`, computed as Keras' TF path
/// does. The same in training and inference. Defaults as Keras: `epsilon` 1e-3, `center`
/// and `scale` on, γ ones, β zeros; `rms_scaling` is not computed.
///
/// # Shapes
/// - input: any sample shape `[…, d]`; statistics per `d`-vector
/// - output: the same shape
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerNormalization {
    #[serde(flatten)]
    core: LayerCore,
    /// The normalized axis: -1 (the last, Keras' default) or its index counting the batch.
    #[serde(default = "minus_one")]
    pub axis: i64,
    /// Added to the variance (default 1e-3).
    pub epsilon: f32,
    /// Learn an offset β (default true).
    #[serde(default = "yes")]
    pub center: bool,
    /// Learn a scale γ (default true).
    #[serde(default = "yes")]
    pub scale: bool,
    /// Initializer of γ (default ones).
    pub gamma_initializer: Initializer,
    /// Initializer of β (default zeros).
    pub beta_initializer: Initializer,
    /// Penalty on γ.
    #[serde(default)]
    pub gamma_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on β.
    #[serde(default)]
    pub beta_regularizer: Option<Box<dyn Regularizer>>,
    #[serde(skip)]
    state: NormState,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// A layer normalization layer with Keras' defaults.
    pub fn new() -> Self {
        Self {
            core: LayerCore::default(),
            axis: -1,
            epsilon: 1e-3,
            center: true,
            scale: true,
            gamma_initializer: Initializer::Ones,
            beta_initializer: Initializer::Zeros,
            gamma_regularizer: None,
            beta_regularizer: None,
            state: NormState::default(),
        }
    }
}

norm_builders!(LayerNormalization);

#[typetag::serde]
impl Layer for LayerNormalization {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        check_last_axis(&self.core, self.axis, input).ok()?;
        let groups = usize::from(self.scale) + usize::from(self.center);
        Some((groups.checked_mul(input.last())?, input.clone()))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        check_last_axis(&self.core, self.axis, input)?;
        check_epsilon(&self.core, self.epsilon)?;
        check_vector_inits(
            &self.core,
            &[
                ("gamma_initializer", self.gamma_initializer, self.scale),
                ("beta_initializer", self.beta_initializer, self.center),
            ],
        )?;
        check_regularizers(&self.core, &self.gamma_regularizer, &self.beta_regularizer)?;
        let d = input.last();
        self.core.params = affine_params(
            ctx,
            d,
            self.scale,
            self.center,
            self.gamma_initializer,
            self.beta_initializer,
            &self.gamma_regularizer,
            &self.beta_regularizer,
        )?;
        self.core.output = Matrix::zeros(0, input.numel());
        self.state = NormState { width: d, sum_a: vec![0.0; d], sum_b: vec![0.0; d], ..NormState::default() };
        Ok(input.clone())
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, _par: Parallelism) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let d = self.state.width;
        let rows = x.data.len() / d;
        let s = &mut self.state;
        s.mean.resize(rows, 0.0);
        s.rstd.resize(rows, 0.0);
        let gamma = self.scale.then(|| self.core.params[0].value());
        let beta = self.center.then(|| self.core.params[usize::from(self.scale)].value());
        let out = &mut self.core.output;
        out.resize(x.rows, x.cols);
        for (r, (xr, yr)) in x.data.chunks_exact(d).zip(out.as_mut_slice().chunks_exact_mut(d)).enumerate() {
            let mean = (xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64) as f32;
            let var = (xr.iter().map(|&v| ((v - mean) * (v - mean)) as f64).sum::<f64>() / d as f64) as f32;
            let rstd = 1.0 / (var + self.epsilon).sqrt();
            (s.mean[r], s.rstd[r]) = (mean, rstd);
            // inv = rsqrt(var + ε)·γ; y = x·inv + (−mean·inv + β).
            for j in 0..d {
                let inv = gamma.map_or(rstd, |g| rstd * g[j]);
                let res = -mean * inv + beta.map_or(0.0, |b| b[j]);
                yr[j] = xr[j] * inv + res;
            }
        }
    }

    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        _grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        _par: Parallelism,
    ) {
        let LayerInput::Dense(x) = input else { panic!("layer `{}` takes dense input", self.core.name) };
        let d = self.state.width;
        let NormState { mean, rstd, sum_a: dgamma, sum_b: dbeta, .. } = &mut self.state;
        let params = &mut self.core.params;
        let gamma_values = self.scale.then(|| params[0].value());
        dgamma.fill(0.0);
        dbeta.fill(0.0);
        let mut gi = grad_input;
        if let Some(gi) = gi.as_deref_mut() {
            gi.resize(x.rows, x.cols);
        }
        for (r, (xr, gr)) in x.data.chunks_exact(d).zip(grad.as_slice().chunks_exact(d)).enumerate() {
            let (mean, rstd) = (mean[r], rstd[r]);
            // With g = dy·γ: dx = r·(g − mean(g) − x̂·mean(g·x̂)).
            let (mut sum_g, mut sum_g_xhat) = (0.0f64, 0.0f64);
            for j in 0..d {
                let xhat = (xr[j] - mean) * rstd;
                let g = gr[j] * gamma_values.map_or(1.0, |v| v[j]);
                sum_g += g as f64;
                sum_g_xhat += (g * xhat) as f64;
                dgamma[j] += (gr[j] * xhat) as f64;
                dbeta[j] += gr[j] as f64;
            }
            if let Some(gi) = gi.as_deref_mut() {
                let row = &mut gi.as_mut_slice()[r * d..(r + 1) * d];
                for j in 0..d {
                    let xhat = (xr[j] - mean) * rstd;
                    let g = gr[j] * gamma_values.map_or(1.0, |v| v[j]);
                    let centered = g as f64 - sum_g / d as f64 - xhat as f64 * sum_g_xhat / d as f64;
                    row[j] = (rstd as f64 * centered) as f32;
                }
            }
        }
        if self.scale {
            params[0].grad_mut().iter_mut().zip(dgamma.iter()).for_each(|(g, &v)| *g = v as f32);
        }
        if self.center {
            params[usize::from(self.scale)].grad_mut().iter_mut().zip(dbeta.iter()).for_each(|(g, &v)| *g = v as f32);
        }
    }
}
