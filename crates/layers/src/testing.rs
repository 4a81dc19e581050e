//! The finite-difference gradient check every layer, built-in or custom, should pass.
//!
//! It checks a layer's hand-written [`backward`](crate::Layer::backward) against central
//! differences of its [`forward`](crate::Layer::forward): the scalar compared is
//! `L = Σ r ⊙ output + activity penalty + weight penalties` for a fixed random `r`, so
//! `∂L/∂output = r`, computed in `f64` from the layer's `f32` forwards.
//!
//! ```
//! use kiln_layers::testing::{GradCheck, check_gradients};
//! use kiln_layers::{Activation, Dense};
//! use kiln_tensor::Shape;
//!
//! let mut dense = Dense::new(3).activation(Activation::Tanh);
//! let report = check_gradients(&mut dense, &Shape::new([2, 4]).unwrap(), &GradCheck::default()).unwrap();
//! assert!(report.checked > 0);
//! ```

use kiln_tensor::{Matrix, Parallelism, Rng, Shape};

use crate::penalties::{activity_penalty, add_activity_grad, add_weight_grads, weight_penalties};
use crate::{BuildContext, DEFAULT_MAX_WEIGHTS, GradOf, Layer, LayerInput};

const SEQ: Parallelism = Parallelism::Sequential;

/// How [`check_gradients`] probes a layer. Defaults: 3 samples, seed 0, step `1e-2`
/// (`1e-3` along directions), element-wise up to 600 values then 24 random directions,
/// tolerance
/// `2e-3 + 2e-2·|finite difference|`, training mode.
#[derive(Debug, Clone)]
pub struct GradCheck {
    /// Samples in the batch checked.
    pub batch: usize,
    /// Seed of the weights, inputs and the output weighting `r`.
    pub seed: u64,
    /// The finite-difference step `h` of element-wise checks: `(L(θ + h) − L(θ − h)) / 2h`.
    pub step: f32,
    /// The step along random directions. Smaller than `step`: a direction moves every
    /// value at once, so on a large layer some of its thousands of ReLU or max-pool units
    /// always sit within `h` of a kink, and their error shrinks with `h²`.
    pub direction_step: f32,
    /// With at most this many parameter and input values in all, every one is checked;
    /// with more, [`directions`](GradCheck::directions) random directions are.
    pub elementwise_max: usize,
    /// Random directions checked on large shapes: `(L(θ + hv) − L(θ − hv)) / 2h` against
    /// `⟨∇L, v⟩`, `v` a random unit vector over every parameter and input value.
    pub directions: usize,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (of the finite difference).
    pub rtol: f64,
    /// Run `forward` in training mode (dropout masks, batch statistics).
    pub training: bool,
    /// Also check the gradient with respect to the logits (`GradOf::Logits`), for a layer
    /// whose output a loss may read as logits.
    pub from_logits: bool,
}

impl Default for GradCheck {
    fn default() -> Self {
        Self {
            batch: 3,
            seed: 0,
            step: 1e-2,
            direction_step: 1e-3,
            elementwise_max: 600,
            directions: 24,
            atol: 2e-3,
            rtol: 2e-2,
            training: true,
            from_logits: false,
        }
    }
}

/// What a passing [`check_gradients`] compared.
#[derive(Debug, Clone, PartialEq)]
pub struct GradReport {
    /// Values or directions compared.
    pub checked: usize,
    /// Points skipped because the layer is not differentiable there (a ReLU kink, a
    /// near-tie in a max pool): the differences at `h` and `h/2` disagree.
    pub skipped: usize,
    /// The largest `|finite difference − analytic|` seen.
    pub worst: f64,
}

/// Builds `layer` for samples of `input` shape, runs forward and backward on a random
/// batch, and compares every parameter gradient and the input gradient with central
/// differences (element-wise on small shapes, along random directions on large ones).
///
/// Inputs are drawn in `±[0.1, 1]`, away from zero. A point where the layer is not
/// differentiable — a pre-activation at a ReLU kink, two nearly equal values in a max
/// pool — shows as differences at `h` and `h/2` that disagree; it is skipped and counted,
/// and the check fails when more than a fifth of the points are skipped. A layer with a
/// random generator (dropout) is rewound before every forward, so each one draws the same
/// mask. Non-trainable parameters (moving statistics) are neither moved nor checked; a
/// training forward may update them, which must not change its output. Errors name the
/// parameter (or `input`) and the index or direction.
pub fn check_gradients(layer: &mut dyn Layer, input: &Shape, opts: &GradCheck) -> Result<GradReport, String> {
    let mut rng = Rng::seed_from_u64(opts.seed);
    let out_shape =
        layer.build(input, &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS)).map_err(|e| format!("build: {e}"))?;
    // As the model does after `build`: a frozen layer's fresh parameters are frozen.
    let trainable = layer.is_trainable();
    layer.set_trainable(trainable);
    let n = opts.batch.max(1);
    let x = away_from_zero(n, input.numel(), &mut rng);
    let r =
        Matrix::from_vec(n, out_shape.numel(), (0..n * out_shape.numel()).map(|_| rng.uniform_in(-1.0, 1.0)).collect())
            .expect("sized");
    let mut report = GradReport { checked: 0, skipped: 0, worst: 0.0 };
    let modes: &[bool] = if opts.from_logits { &[false, true] } else { &[false] };
    for &from_logits in modes {
        let mut probe = Probe { layer: &mut *layer, r: &r, opts, from_logits, rng_state: None };
        probe.rng_state = probe.layer.rng_state();
        probe.check(&x, &mut report, &mut rng)?;
    }
    conclusive(report)
}

/// The report, unless more than a fifth of the points were skipped as not differentiable
/// (kinks or ties): then the check says nothing.
fn conclusive(report: GradReport) -> Result<GradReport, String> {
    if report.skipped * 5 > report.checked + report.skipped {
        return Err(format!(
            "{} of {} points were not differentiable (kinks or ties): the check says nothing; use another seed",
            report.skipped,
            report.checked + report.skipped
        ));
    }
    Ok(report)
}

/// A random `rows × cols` batch with every value in `±[0.1, 1]`.
fn away_from_zero(rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    let values = (0..rows * cols)
        .map(|_| {
            let v = rng.uniform_in(0.1, 1.0);
            if rng.uniform() < 0.5 { -v } else { v }
        })
        .collect();
    Matrix::from_vec(rows, cols, values).expect("sized")
}

/// One layer under test with its fixed output weighting.
struct Probe<'a> {
    layer: &'a mut dyn Layer,
    r: &'a Matrix,
    opts: &'a GradCheck,
    from_logits: bool,
    rng_state: Option<kiln_tensor::RngState>,
}

impl Probe<'_> {
    /// `L` at input `x` with the current parameters.
    fn objective(&mut self, x: &Matrix) -> Result<f64, String> {
        if let Some(state) = &self.rng_state {
            self.layer.set_rng_state(state).map_err(|e| e.to_string())?;
        }
        self.layer.forward(LayerInput::Dense(x.view()), self.opts.training, SEQ);
        let out = if self.from_logits {
            self.layer.logits().ok_or("from_logits: the layer keeps no logits")?
        } else {
            self.layer.output()
        };
        let mut total: f64 = out.as_slice().iter().zip(self.r.as_slice()).map(|(a, b)| (a * b) as f64).sum();
        total += activity_penalty(&*self.layer).map_err(|e| e.to_string())? as f64;
        weight_penalties(self.layer.params(), |p| total += p as f64).map_err(|e| e.to_string())?;
        Ok(total)
    }

    /// The analytic gradients `(parameter gradients…, input gradient)` at `x`.
    fn analytic(&mut self, x: &Matrix) -> Result<(Vec<Vec<f32>>, Vec<f32>), String> {
        self.objective(x)?;
        let mut grad = self.r.clone();
        let mut grad_x = Matrix::default();
        let of = if self.from_logits { GradOf::Logits } else { GradOf::Output };
        // The model's order: activity gradient, the layer's backward, then weight penalties.
        add_activity_grad(&*self.layer, &mut grad, of, &mut Matrix::default()).map_err(|e| e.to_string())?;
        self.layer.backward(LayerInput::Dense(x.view()), &mut grad, of, Some(&mut grad_x), SEQ);
        add_weight_grads(self.layer.params_mut()).map_err(|e| e.to_string())?;
        // Non-trainable parameters (moving statistics) have no gradient and are not moved.
        let params = self.layer.params().iter().map(|p| if p.is_trainable() { p.grad().to_vec() } else { Vec::new() });
        let params = params.collect();
        Ok((params, grad_x.as_slice().to_vec()))
    }

    /// `L` with parameters and input moved by `t·v` (`v` split as the analytic gradients are).
    fn moved(&mut self, x: &Matrix, v: &(Vec<Vec<f32>>, Vec<f32>), t: f32) -> Result<f64, String> {
        let base: Vec<Vec<f32>> = self.layer.params().iter().map(|p| p.value().to_vec()).collect();
        let name = self.layer.name().to_string();
        for (p, (b, d)) in self.layer.params_mut().iter_mut().zip(base.iter().zip(&v.0)) {
            if d.is_empty() {
                continue;
            }
            let w: Vec<f32> = b.iter().zip(d).map(|(b, d)| b + t * d).collect();
            p.set_value(&name, &w).map_err(|e| e.to_string())?;
        }
        let mut xs = x.clone();
        xs.as_mut_slice().iter_mut().zip(&v.1).for_each(|(x, d)| *x += t * d);
        let value = self.objective(&xs);
        for (p, b) in self.layer.params_mut().iter_mut().zip(&base) {
            p.set_value(&name, b).map_err(|e| e.to_string())?;
        }
        value
    }

    /// Compares `⟨∇L, v⟩` with the central differences along `v` at `h` and `h/2`.
    fn compare(
        &mut self,
        x: &Matrix,
        v: &(Vec<Vec<f32>>, Vec<f32>),
        analytic: f64,
        h: f32,
        what: &dyn Fn() -> String,
        report: &mut GradReport,
    ) -> Result<(), String> {
        let fd = |p: &mut Self, h: f32| -> Result<f64, String> {
            Ok((p.moved(x, v, h)? - p.moved(x, v, -h)?) / (2.0 * h as f64))
        };
        let (full, half) = (fd(self, h)?, fd(self, h / 2.0)?);
        let tol = |fd: f64| self.opts.atol + self.opts.rtol * fd.abs();
        if (full - half).abs() > tol(full) {
            report.skipped += 1;
            return Ok(());
        }
        let err = (full - analytic).abs();
        report.worst = report.worst.max(err);
        report.checked += 1;
        if err > tol(full) {
            let logits = if self.from_logits { " (w.r.t. logits)" } else { "" };
            return Err(format!(
                "layer `{}`{logits}, {}: finite difference {full} but backward gives {analytic}",
                self.layer.name(),
                what()
            ));
        }
        Ok(())
    }

    fn check(&mut self, x: &Matrix, report: &mut GradReport, rng: &mut Rng) -> Result<(), String> {
        let grads = self.analytic(x)?;
        let zero = (grads.0.iter().map(|g| vec![0.0f32; g.len()]).collect::<Vec<_>>(), vec![0.0f32; grads.1.len()]);
        let names: Vec<String> = self.layer.params().iter().map(|p| p.name().to_string()).collect();
        let total = grads.0.iter().map(Vec::len).sum::<usize>() + grads.1.len();
        if total <= self.opts.elementwise_max {
            for (pi, g) in grads.0.iter().enumerate() {
                for (i, &gi) in g.iter().enumerate() {
                    let mut v = zero.clone();
                    v.0[pi][i] = 1.0;
                    let what = || format!("parameter `{}`[{i}]", names[pi]);
                    self.compare(x, &v, gi as f64, self.opts.step, &what, report)?;
                }
            }
            for (i, &gi) in grads.1.iter().enumerate() {
                let mut v = zero.clone();
                v.1[i] = 1.0;
                self.compare(x, &v, gi as f64, self.opts.step, &|| format!("input[{i}]"), report)?;
            }
            return Ok(());
        }
        for k in 0..self.opts.directions {
            let mut v = zero.clone();
            let mut norm = 0.0f64;
            for d in v.0.iter_mut().flatten().chain(v.1.iter_mut()) {
                *d = rng.uniform_in(-1.0, 1.0);
                norm += (*d as f64).powi(2);
            }
            let scale = (1.0 / norm.sqrt()) as f32;
            v.0.iter_mut().flatten().chain(v.1.iter_mut()).for_each(|d| *d *= scale);
            let dot: f64 = grads
                .0
                .iter()
                .flatten()
                .chain(&grads.1)
                .zip(v.0.iter().flatten().chain(&v.1))
                .map(|(g, d)| *g as f64 * *d as f64)
                .sum();
            let h = self.opts.direction_step;
            self.compare(x, &v, dot, h, &|| format!("random direction {k}"), report)?;
        }
        Ok(())
    }
}

/// [`check_gradients`] for a merge layer ([`Merge`](crate::Merge)): builds it for inputs of
/// the given sample shapes, and compares the gradient [`merge_backward`](crate::Merge::merge_backward)
/// gives for every value of every input with central differences of `L = Σ r ⊙ output`
/// (a non-differentiable point — a near-tie in `Maximum` — is skipped and counted, as there).
///
/// ```
/// use kiln_layers::testing::{GradCheck, check_merge_gradients};
/// use kiln_layers::Multiply;
/// use kiln_tensor::Shape;
///
/// let shape = Shape::new([2, 3]).unwrap();
/// let report = check_merge_gradients(&mut Multiply::new(), &[shape.clone(), shape.clone(), shape], &GradCheck::default()).unwrap();
/// assert_eq!(report.checked, 3 * 3 * 6);
/// ```
pub fn check_merge_gradients(layer: &mut dyn Layer, inputs: &[Shape], opts: &GradCheck) -> Result<GradReport, String> {
    let name = layer.name().to_string();
    let not_merge = || format!("layer `{name}` is not a merge layer");
    let out_shape =
        layer.as_merge_mut().ok_or_else(not_merge)?.merge_build(inputs).map_err(|e| format!("build: {e}"))?;
    let mut rng = Rng::seed_from_u64(opts.seed);
    let n = opts.batch.max(1);
    let mut xs: Vec<Matrix> = inputs.iter().map(|s| away_from_zero(n, s.numel(), &mut rng)).collect();
    let r: Vec<f64> = (0..n * out_shape.numel()).map(|_| rng.uniform_in(-1.0, 1.0) as f64).collect();
    let r32 = Matrix::from_vec(n, out_shape.numel(), r.iter().map(|&v| v as f32).collect()).expect("sized");
    // L at `xs`: the forward, then Σ r ⊙ output in f64.
    let objective = |layer: &mut dyn Layer, xs: &[Matrix]| -> f64 {
        layer.as_merge_mut().expect("checked above").merge_forward(xs.len(), &|j| xs[j].view());
        layer.output().as_slice().iter().zip(&r).map(|(o, r)| *o as f64 * r).sum()
    };
    let mut report = GradReport { checked: 0, skipped: 0, worst: 0.0 };
    let tol = |fd: f64| opts.atol + opts.rtol * fd.abs();
    for k in 0..xs.len() {
        objective(layer, &xs);
        let mut grad = Matrix::default();
        layer.as_merge().ok_or_else(not_merge)?.merge_backward(k, xs.len(), &|j| xs[j].view(), &r32, &mut grad);
        for i in 0..xs[k].as_slice().len() {
            let base = xs[k].as_slice()[i];
            let mut fd = |h: f32| {
                xs[k].as_mut_slice()[i] = base + h;
                let up = objective(layer, &xs);
                xs[k].as_mut_slice()[i] = base - h;
                let down = objective(layer, &xs);
                xs[k].as_mut_slice()[i] = base;
                (up - down) / (2.0 * h as f64)
            };
            let (full, half) = (fd(opts.step), fd(opts.step / 2.0));
            if (full - half).abs() > tol(full) {
                report.skipped += 1;
                continue;
            }
            let analytic = grad.as_slice()[i] as f64;
            let err = (full - analytic).abs();
            report.worst = report.worst.max(err);
            report.checked += 1;
            if err > tol(full) {
                return Err(format!(
                    "layer `{name}`, input {k}[{i}]: finite difference {full} but backward gives {analytic}"
                ));
            }
        }
    }
    conclusive(report)
}
