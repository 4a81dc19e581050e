//! Merging layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` and
//! `Concatenate`, which combine the outputs of several layers in a Functional model.
//!
//! Keras: `keras/src/layers/merging/` (`base_merge.py`, `add.py`, `subtract.py`,
//! `multiply.py`, `average.py`, `maximum.py`, `minimum.py`, `concatenate.py`). The
//! elementwise ones fold their inputs left to right (`out = x₀; out = op(out, xᵢ)`), as
//! Keras' `_merge_function` does, so sums and products round in Keras' order; their
//! gradients are TensorFlow's for that chain (`Maximum`'s tie goes to the earlier input,
//! `greater_equal` in `_MaximumMinimumGrad`).
//!
//! A merge layer is a [`Layer`] (it has a name, no parameters and an output buffer, and it
//! saves like any layer) whose [`as_merge`](Layer::as_merge) hands the model its
//! [`Merge`] methods, which take several inputs. Inputs of different shapes are refused:
//! Keras would broadcast a size-1 axis, which kiln does not compute.

use kiln_tensor::{Matrix, Parallelism, Shape, View};
use serde::{Deserialize, Serialize};

use crate::reshape::{copy_backward, copy_forward};
use crate::{BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// What a layer that combines several inputs does besides [`Layer`]'s single-input
/// methods; the model calls these for a layer whose [`Layer::as_merge`] is `Some`.
///
/// `input(k)` is the `k`-th of `n` inputs for the current batch (one row per sample).
pub trait Merge {
    /// Checks the inputs' sample shapes (Keras' `build`) and returns the output's.
    fn merge_build(&mut self, inputs: &[Shape]) -> Result<Shape, LayerError>;

    /// Computes the output of the `n` inputs into the layer's output buffer.
    fn merge_forward<'a>(&mut self, n: usize, input: &dyn Fn(usize) -> View<'a>);

    /// Writes `∂loss/∂input(k)` into `grad_input` (resized), from `grad` (w.r.t. the
    /// output) and the same inputs as the last forward.
    fn merge_backward<'a>(
        &self,
        k: usize,
        n: usize,
        input: &dyn Fn(usize) -> View<'a>,
        grad: &Matrix,
        grad_input: &mut Matrix,
    );
}

/// The elementwise operation a merge layer folds its inputs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

/// The error a merge layer gives when it is used as a single-input layer.
fn single_input_error(core: &LayerCore, class: &str) -> LayerError {
    LayerError::Config {
        layer: core.name.clone(),
        message: format!(
            "{class} merges a list of tensors: apply it to several nodes of a Functional model \
             (Functional::merge), not in a Sequential stack"
        ),
    }
}

/// Refuses input shapes an elementwise merge does not compute exactly: fewer inputs than
/// the layer takes, or shapes that differ (Keras broadcasts size-1 axes; kiln does not).
fn elementwise_shape(core: &LayerCore, op: Op, inputs: &[Shape]) -> Result<Shape, LayerError> {
    let err = |message: String| LayerError::Config { layer: core.name.clone(), message };
    match (op, inputs.len()) {
        (_, 0) => return Err(err("a merge layer should be called on a list of at least 1 input".into())),
        (Op::Subtract, n) if n != 2 => {
            return Err(err(format!("a Subtract layer should be called on exactly 2 inputs, received {n}")));
        }
        _ => {}
    }
    if let Some(other) = inputs.iter().find(|s| *s != &inputs[0]) {
        return Err(err(format!(
            "inputs of shapes {} and {}: kiln merges inputs of one shape (Keras would broadcast size-1 axes, \
             which kiln does not compute)",
            inputs[0], other
        )));
    }
    Ok(inputs[0].clone())
}

/// `out = fold(op, inputs)` elementwise, left to right, into `out`.
fn elementwise_forward<'a>(op: Op, n: usize, input: &dyn Fn(usize) -> View<'a>, out: &mut Matrix) {
    let first = input(0);
    out.resize(first.rows, first.cols);
    let acc = out.as_mut_slice();
    acc.copy_from_slice(first.data);
    for i in 1..n {
        let x = input(i).data;
        match op {
            Op::Add | Op::Average => acc.iter_mut().zip(x).for_each(|(a, &b)| *a += b),
            Op::Subtract => acc.iter_mut().zip(x).for_each(|(a, &b)| *a -= b),
            Op::Multiply => acc.iter_mut().zip(x).for_each(|(a, &b)| *a *= b),
            // TensorFlow's maximum/minimum propagate a NaN operand.
            Op::Maximum => acc.iter_mut().zip(x).for_each(|(a, &b)| *a = if *a >= b || a.is_nan() { *a } else { b }),
            Op::Minimum => acc.iter_mut().zip(x).for_each(|(a, &b)| *a = if *a <= b || a.is_nan() { *a } else { b }),
        }
    }
    if op == Op::Average {
        let count = n as f32;
        acc.iter_mut().for_each(|a| *a /= count);
    }
}

/// `∂loss/∂input(k)` of the fold, as TensorFlow differentiates the chain of binary ops.
fn elementwise_backward<'a>(
    op: Op,
    (k, n): (usize, usize),
    input: &dyn Fn(usize) -> View<'a>,
    y: &[f32],
    grad: &Matrix,
    out: &mut Matrix,
) {
    out.resize(grad.rows(), grad.cols());
    let (g, o) = (grad.as_slice(), out.as_mut_slice());
    match op {
        Op::Add => o.copy_from_slice(g),
        Op::Subtract if k == 0 => o.copy_from_slice(g),
        Op::Subtract => o.iter_mut().zip(g).for_each(|(o, &g)| *o = -g),
        // `(Σ xᵢ) / n`: RealDiv's gradient `g / n`, then through the sum unchanged.
        Op::Average => {
            let count = n as f32;
            o.iter_mut().zip(g).for_each(|(o, &g)| *o = g / count);
        }
        // pₖ = pₖ₋₁·xₖ: ∂pₖ = g·xₙ₋₁·…·xₖ₊₁ (right to left), ∂xₖ = ∂pₖ·pₖ₋₁ (p₀ = x₀).
        Op::Multiply => {
            o.copy_from_slice(g);
            for j in (k + 1..n).rev() {
                o.iter_mut().zip(input(j).data).for_each(|(o, &x)| *o *= x);
            }
            match k {
                0 => {}
                // p₀ = x₀: one pass, as for two inputs.
                1 => o.iter_mut().zip(input(0).data).for_each(|(o, &x)| *o *= x),
                // pₖ₋₁ = x₀·…·xₖ₋₁ left to right, element by element (three or more inputs).
                _ => {
                    let xs: [View<'a>; 2] = [input(0), input(1)];
                    for (e, o) in o.iter_mut().enumerate() {
                        let p = (2..k).fold(xs[0].data[e] * xs[1].data[e], |p, j| p * input(j).data[e]);
                        *o *= p;
                    }
                }
            }
        }
        // The gradient goes where the running maximum came from: TensorFlow gives a tie
        // (`acc >= x`) to the accumulated operand, so to the earliest input equal to the
        // output `y`. Whole passes over the inputs; a NaN output replays the fold.
        Op::Maximum | Op::Minimum => {
            let x = input(k).data;
            o.iter_mut().zip(g).zip(x.iter().zip(y)).for_each(|((o, &g), (&x, &y))| *o = if x == y { g } else { 0.0 });
            for j in 0..k {
                o.iter_mut().zip(input(j).data.iter().zip(y)).for_each(|(o, (&x, &y))| {
                    if x == y {
                        *o = 0.0;
                    }
                });
            }
            for e in (0..y.len()).filter(|&e| y[e].is_nan()) {
                let (mut acc, mut from) = (input(0).data[e], 0);
                for j in 1..n {
                    let x = input(j).data[e];
                    let keep = if op == Op::Maximum { acc >= x } else { acc <= x };
                    if !keep {
                        (acc, from) = (x, j);
                    }
                }
                o[e] = if from == k { g[e] } else { 0.0 };
            }
        }
    }
}

/// The `Layer` side of a merge layer: its core, a single-input `build` that refuses (so a
/// stack never runs it), and `as_merge` handing the model its [`Merge`] methods.
macro_rules! merge_layer {
    ($name:ident) => {
        #[typetag::serde]
        impl Layer for $name {
            fn core(&self) -> &LayerCore {
                &self.core
            }

            fn core_mut(&mut self) -> &mut LayerCore {
                &mut self.core
            }

            fn build(&mut self, _input: &Shape, _ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
                Err(single_input_error(&self.core, stringify!($name)))
            }

            // A stack never runs these (`build` refuses): a merge of one tensor is that tensor.
            fn forward(&mut self, input: LayerInput<'_>, _training: bool, _par: Parallelism) {
                copy_forward(&mut self.core, input);
            }

            fn backward(
                &mut self,
                _input: LayerInput<'_>,
                grad: &mut Matrix,
                _grad_of: GradOf,
                grad_input: Option<&mut Matrix>,
                _par: Parallelism,
            ) {
                copy_backward(grad, grad_input);
            }

            fn as_merge(&self) -> Option<&dyn Merge> {
                Some(self)
            }

            fn as_merge_mut(&mut self) -> Option<&mut dyn Merge> {
                Some(self)
            }
        }
    };
}

macro_rules! elementwise_merge {
    ($(#[$doc:meta])* $name:ident, $op:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        pub struct $name {
            #[serde(flatten)]
            core: LayerCore,
        }

        impl $name {
            /// A merge layer (name assigned by the model when empty).
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the layer name.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.core.name = name.into();
                self
            }
        }

        impl Merge for $name {
            fn merge_build(&mut self, inputs: &[Shape]) -> Result<Shape, LayerError> {
                let out = elementwise_shape(&self.core, $op, inputs)?;
                self.core.output = Matrix::zeros(0, out.numel());
                Ok(out)
            }

            fn merge_forward<'a>(&mut self, n: usize, input: &dyn Fn(usize) -> View<'a>) {
                elementwise_forward($op, n, input, &mut self.core.output);
            }

            fn merge_backward<'a>(
                &self,
                k: usize,
                n: usize,
                input: &dyn Fn(usize) -> View<'a>,
                grad: &Matrix,
                grad_input: &mut Matrix,
            ) {
                elementwise_backward($op, (k, n), input, self.core.output.as_slice(), grad, grad_input);
            }
        }

        merge_layer!($name);
    };
}

elementwise_merge!(
    /// `x₀ + x₁ + …`, left to right (Keras `layers.Add`). Inputs of one shape; output the same.
    Add,
    Op::Add
);
elementwise_merge!(
    /// `x₀ − x₁`, exactly two inputs (Keras `layers.Subtract`).
    Subtract,
    Op::Subtract
);
elementwise_merge!(
    /// `x₀ · x₁ · …`, elementwise, left to right (Keras `layers.Multiply`).
    Multiply,
    Op::Multiply
);
elementwise_merge!(
    /// `(x₀ + x₁ + …) / n`, the sum left to right then one division (Keras `layers.Average`).
    Average,
    Op::Average
);
elementwise_merge!(
    /// The elementwise maximum (Keras `layers.Maximum`); a tie's gradient goes to the
    /// earliest input, as TensorFlow's.
    Maximum,
    Op::Maximum
);
elementwise_merge!(
    /// The elementwise minimum (Keras `layers.Minimum`); a tie's gradient goes to the
    /// earliest input, as TensorFlow's.
    Minimum,
    Op::Minimum
);

/// Joins its inputs along `axis` (Keras `layers.Concatenate(axis=-1)`). `axis` counts the
/// batch axis as Keras does: `-1` (default) is a sample's last axis, `1` its first; the
/// batch axis (`0`) is refused. Every other axis must match.
///
/// # Shapes
/// - inputs: `[d₁, …, a₁ₖ, …, dᵣ]`, equal but on the axis
/// - output: `[d₁, …, Σₖ a₁ₖ, …, dᵣ]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Concatenate {
    #[serde(flatten)]
    core: LayerCore,
    /// The axis to join along, counting the batch axis (Keras' convention; default -1).
    pub axis: i64,
    /// Per input, how many values it adds to each outer slice (set by `build`).
    #[serde(skip)]
    blocks: Vec<usize>,
}

impl Default for Concatenate {
    fn default() -> Self {
        Self { core: LayerCore::default(), axis: -1, blocks: Vec::new() }
    }
}

impl Concatenate {
    /// Concatenation along the last axis (Keras' default `axis=-1`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the axis (counting the batch axis, negative from the end).
    pub fn axis(mut self, axis: i64) -> Self {
        self.axis = axis;
        self
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }

    /// The sample axis `axis` names for samples of `rank` axes (`None`: the batch axis or
    /// out of range).
    fn sample_axis(&self, rank: usize) -> Option<usize> {
        let full = rank as i64 + 1;
        let a = if self.axis < 0 { self.axis + full } else { self.axis };
        (1..full).contains(&a).then(|| (a - 1) as usize)
    }

    /// Values per outer slice in the output.
    fn out_block(&self) -> usize {
        self.blocks.iter().sum()
    }
}

impl Merge for Concatenate {
    fn merge_build(&mut self, inputs: &[Shape]) -> Result<Shape, LayerError> {
        let err = |message: String| LayerError::Config { layer: self.core.name.clone(), message };
        let first = inputs
            .first()
            .ok_or_else(|| err("a Concatenate layer should be called on a list of at least 1 input".into()))?;
        let rank = first.rank();
        let ax = self.sample_axis(rank).ok_or_else(|| {
            err(format!(
                "argument `axis` {} does not name an axis of samples of shape {first} (the batch axis 0 cannot be \
                 concatenated)",
                self.axis
            ))
        })?;
        let mismatch = inputs.iter().find(|s| {
            s.rank() != rank || s.dims().iter().zip(first.dims()).enumerate().any(|(i, (a, b))| i != ax && a != b)
        });
        if let Some(other) = mismatch {
            return Err(err(format!(
                "a Concatenate layer requires inputs with matching shapes except for the concatenation axis; \
                 received {first} and {other} (axis {})",
                self.axis
            )));
        }
        let mut dims = first.dims().to_vec();
        dims[ax] = inputs.iter().map(|s| s.dims()[ax]).sum();
        self.blocks = inputs.iter().map(|s| s.dims()[ax..].iter().product()).collect();
        let out = Shape::new(dims).map_err(err)?;
        self.core.output = Matrix::zeros(0, out.numel());
        Ok(out)
    }

    fn merge_forward<'a>(&mut self, n: usize, input: &dyn Fn(usize) -> View<'a>) {
        let rows = input(0).rows;
        let (width, block) = (self.core.output.cols(), self.out_block());
        self.core.output.resize(rows, width);
        let out = self.core.output.as_mut_slice();
        let mut offset = 0;
        for k in 0..n {
            let (x, b) = (input(k), self.blocks[k]);
            for (o, src) in out.chunks_exact_mut(block).zip(x.data.chunks_exact(b)) {
                o[offset..offset + b].copy_from_slice(src);
            }
            offset += b;
        }
    }

    fn merge_backward<'a>(
        &self,
        k: usize,
        _n: usize,
        input: &dyn Fn(usize) -> View<'a>,
        grad: &Matrix,
        grad_input: &mut Matrix,
    ) {
        let x = input(k);
        let (b, block) = (self.blocks[k], self.out_block());
        let offset: usize = self.blocks[..k].iter().sum();
        grad_input.resize(x.rows, x.cols);
        for (gi, g) in grad_input.as_mut_slice().chunks_exact_mut(b).zip(grad.as_slice().chunks_exact(block)) {
            gi.copy_from_slice(&g[offset..offset + b]);
        }
    }
}

merge_layer!(Concatenate);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GradCheck, check_merge_gradients};

    fn shapes(n: usize, dims: &[usize]) -> Vec<Shape> {
        vec![Shape::new(dims.to_vec()).unwrap(); n]
    }

    #[test]
    fn every_merge_layer_passes_the_gradient_check() {
        let opts = GradCheck::default();
        let cases: Vec<(Box<dyn Layer>, Vec<Shape>)> = vec![
            (Box::new(Add::new()), shapes(3, &[2, 3])),
            (Box::new(Subtract::new()), shapes(2, &[4])),
            (Box::new(Multiply::new()), shapes(4, &[3])),
            (Box::new(Average::new()), shapes(3, &[2, 2])),
            (Box::new(Maximum::new()), shapes(3, &[5])),
            (Box::new(Minimum::new()), shapes(2, &[5])),
            (Box::new(Concatenate::new()), vec![Shape::new([2, 3]).unwrap(), Shape::new([2, 1]).unwrap()]),
            (Box::new(Concatenate::new().axis(1)), vec![Shape::new([2, 3]).unwrap(), Shape::new([1, 3]).unwrap()]),
        ];
        for (mut layer, inputs) in cases {
            let class = layer.class_name();
            let report =
                check_merge_gradients(layer.as_mut(), &inputs, &opts).unwrap_or_else(|e| panic!("{class}: {e}"));
            let values: usize = inputs.iter().map(|s| s.numel() * opts.batch).sum();
            assert_eq!(report.checked + report.skipped, values, "{class}");
        }
    }

    #[test]
    fn folds_run_left_to_right_and_ties_go_to_the_earliest_input() {
        let x = [Matrix::from_rows(&[[1.0f32, 2.0]]).unwrap(), Matrix::from_rows(&[[1.0, 5.0]]).unwrap()];
        let mut max = Maximum::new();
        max.merge_build(&shapes(2, &[2])).unwrap();
        max.merge_forward(2, &|k| x[k].view());
        assert_eq!(max.core.output.as_slice(), &[1.0, 5.0]);
        let g = Matrix::from_rows(&[[1.0f32, 1.0]]).unwrap();
        let mut gi = Matrix::default();
        max.merge_backward(0, 2, &|k| x[k].view(), &g, &mut gi);
        assert_eq!(gi.as_slice(), &[1.0, 0.0], "the tie at column 0 goes to input 0");
        max.merge_backward(1, 2, &|k| x[k].view(), &g, &mut gi);
        assert_eq!(gi.as_slice(), &[0.0, 1.0]);

        let mut avg = Average::new();
        avg.merge_build(&shapes(2, &[2])).unwrap();
        avg.merge_forward(2, &|k| x[k].view());
        assert_eq!(avg.core.output.as_slice(), &[1.0, 3.5]);
        assert!(Subtract::new().merge_build(&shapes(3, &[2])).unwrap_err().to_string().contains("exactly 2"));
    }
}
