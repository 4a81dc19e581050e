//! `Flatten` and `Reshape`: new shapes over the same row-major values.
//!
//! Keras: `keras/src/layers/reshaping/flatten.py` and `reshape.py`. In channels-last order
//! a sample's values are already in the order Keras flattens or reshapes them, so both
//! layers copy their input row for row and only announce a new shape.

use kiln_tensor::{Matrix, Parallelism, Shape};
use serde::{Deserialize, Serialize};

use crate::{BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// `[…] → [numel]`: one flat vector per sample (Keras `layers.Flatten`, channels-last).
///
/// # Shapes
/// - input: any sample shape `[d1, …, dk]`
/// - output: `[d1·…·dk]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flatten {
    #[serde(flatten)]
    core: LayerCore,
}

impl Flatten {
    /// A flattening layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }
}

/// `[…] → target_shape`, with at most one `-1` standing for what the others leave (Keras
/// `layers.Reshape`; the batch is excluded). The values keep their row-major order.
///
/// # Shapes
/// - input: any sample shape with as many values as `target_shape`
/// - output: `target_shape`, its `-1` resolved
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reshape {
    #[serde(flatten)]
    core: LayerCore,
    /// The sample shape to produce; one entry may be `-1` (inferred).
    pub target_shape: Vec<i64>,
}

impl Reshape {
    /// A layer reshaping each sample to `target_shape` (one `-1` allowed).
    pub fn new(target_shape: impl Into<Vec<i64>>) -> Self {
        Self { core: LayerCore::default(), target_shape: target_shape.into() }
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }

    /// Checks `target_shape` alone, as Keras' `validate_reshape_shape` does when the layer
    /// is made: 1 to [`MAX_RANK`](kiln_tensor::MAX_RANK) sizes ≥ 1, one of which may be
    /// `-1`. Returns the product of the known sizes.
    pub fn validate_target(&self) -> Result<usize, String> {
        let target = &self.target_shape;
        if target.is_empty() || target.len() > kiln_tensor::MAX_RANK {
            return Err(format!("argument `target_shape` {target:?} must have 1 to {} sizes", kiln_tensor::MAX_RANK));
        }
        if target.iter().filter(|&&d| d == -1).count() > 1 {
            return Err(format!("argument `target_shape` {target:?} has more than one -1"));
        }
        if let Some(&bad) = target.iter().find(|&&d| d == 0 || d < -1) {
            return Err(format!("argument `target_shape` {target:?}: {bad} is not a size (≥ 1, or -1)"));
        }
        let known = target.iter().filter(|&&d| d > 0).try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
        known.ok_or_else(|| format!("argument `target_shape` {target:?} overflows"))
    }

    /// The output shape for `input`, as Keras' `compute_output_shape` resolves it: the
    /// `-1` takes `numel / product(others)`, which must divide exactly.
    pub fn resolve(&self, input: &Shape) -> Result<Shape, String> {
        let known = self.validate_target()?;
        let target = &self.target_shape;
        let unknown: Vec<usize> = (0..target.len()).filter(|&i| target[i] == -1).collect();
        let mut dims: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(&i) = unknown.first() {
            if !input.numel().is_multiple_of(known) {
                return Err(format!(
                    "cannot reshape an input of shape {:?} ({} values) to {target:?}: {} is not a multiple of {known}",
                    input.dims(),
                    input.numel(),
                    input.numel()
                ));
            }
            dims[i] = input.numel() / known;
        }
        let out = Shape::new(dims)?;
        if out.numel() != input.numel() {
            return Err(format!(
                "total size of the input shape {:?} ({} values) differs from target_shape {target:?} ({} values)",
                input.dims(),
                input.numel(),
                out.numel()
            ));
        }
        Ok(out)
    }
}

/// The identity on values: the output row is the input row, the input gradient the
/// output gradient.
pub(crate) fn copy_forward(core: &mut LayerCore, input: LayerInput<'_>) {
    core.output.resize(input.rows(), input.cols());
    match input {
        LayerInput::Dense(x) => core.output.as_mut_slice().copy_from_slice(x.data),
        // CSR rows reach only a first layer on a flat input: scatter them.
        LayerInput::Sparse(x) => {
            core.output.fill(0.0);
            for i in 0..x.rows() {
                let (ind, val) = x.row(i);
                let row = core.output.row_mut(i);
                ind.iter().zip(val).for_each(|(&j, &v)| row[j as usize] = v);
            }
        }
        LayerInput::Ids(_) => panic!("layer `{}` takes values, not token ids", core.name),
    }
}

/// The input gradient of the identity: `grad`, copied into `grad_input` when asked for.
pub(crate) fn copy_backward(grad: &Matrix, grad_input: Option<&mut Matrix>) {
    if let Some(gi) = grad_input {
        gi.resize(grad.rows(), grad.cols());
        gi.as_mut_slice().copy_from_slice(grad.as_slice());
    }
}

#[typetag::serde]
impl Layer for Flatten {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn reads_sparse(&self) -> bool {
        true
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        Some((0, Shape::flat(input.numel())))
    }

    fn build(&mut self, input: &Shape, _ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        self.core.output = Matrix::zeros(0, input.numel());
        Ok(Shape::flat(input.numel()))
    }

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
}

#[typetag::serde]
impl Layer for Reshape {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn reads_sparse(&self) -> bool {
        true
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        Some((0, self.resolve(input).ok()?))
    }

    fn build(&mut self, input: &Shape, _ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let out =
            self.resolve(input).map_err(|message| LayerError::Config { layer: self.core.name.clone(), message })?;
        self.core.output = Matrix::zeros(0, input.numel());
        Ok(out)
    }

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
}
