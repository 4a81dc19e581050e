//! The densely connected layer.

use kiln_regularizers::Regularizer;
use kiln_tensor::{Accum, ColumnIndex, Matrix, Par, Rng, View, kernels, matmul};
use serde::{Deserialize, Serialize};

use crate::{Activation, GradOf, Initializer, Layer, LayerError, LayerInput};

/// `y = activation(x · kernel + bias)` (Keras `layers.Dense`).
///
/// Kernel shape `(input_dim, units)`, row-major: the weights of one input feature are
/// contiguous, which is what a sparse input row reads. Defaults follow Keras:
/// `glorot_uniform` kernel, zero bias, no regularizers, linear activation.
/// An activity regularizer acts on the output after the activation and its penalty is
/// divided by the batch size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dense {
    /// Layer name (assigned by the model when empty).
    #[serde(default)]
    pub name: String,
    /// Output width.
    pub units: usize,
    /// Activation applied to `x·K + b`.
    #[serde(default)]
    pub activation: Activation,
    /// Whether the layer has a bias.
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Initializer of the kernel.
    #[serde(default)]
    pub kernel_initializer: Initializer,
    /// Initializer of the bias.
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
    #[serde(skip)]
    state: DenseState,
}

fn yes() -> bool {
    true
}

fn zeros() -> Initializer {
    Initializer::Zeros
}

/// Most weights one kernel may hold: 2²⁸ (1 GiB of `f32`, 3–4 GiB once its gradient and
/// optimizer state exist; 50 times the chapter's largest layer). A configuration asking
/// for more is refused before anything is allocated.
pub const MAX_KERNEL_ELEMENTS: usize = 1 << 28;

/// Sparse input is multiplied column by column when the kernel is larger than this…
const COLUMN_WISE_KERNEL_BYTES: usize = 1 << 20;
/// …and has at least this many units.
///
/// Row by row, every stored entry reads a kernel row: cheap while the kernel stays in
/// a core's cache (about 1 MiB of L2 on the machines we measure), a trip to memory each
/// once it does not. Column by column, each kernel row is read once per batch and the
/// gradient touches only the batch's rows, at the price of building a [`ColumnIndex`]
/// (a few ns per entry). Measured (`docs/performance.md`): 10,000×512 column-wise is
/// 1.35× faster per epoch; at 64 units the two tie; at 16 units row-wise stays 2×
/// faster even for a 50,000-word kernel.
const COLUMN_WISE_MIN_UNITS: usize = 128;

/// Parameters, gradients and per-batch buffers (not part of the configuration).
#[derive(Debug, Clone, Default)]
struct DenseState {
    input_width: usize,
    kernel: Vec<f32>,
    bias: Vec<f32>,
    grad_kernel: Vec<f32>,
    grad_bias: Vec<f32>,
    logits: Matrix,
    output: Matrix,
    scratch: Matrix,
    activity_penalty: f32,
    built: bool,
    /// The current sparse batch grouped by column (sparse input only).
    columns: ColumnIndex,
    /// When `grad_kernel_sparse`, the only rows of `grad_kernel` that may be non-zero.
    grad_rows: Vec<u32>,
    /// Whether `grad_kernel` is zero outside `grad_rows` (so the next sparse batch
    /// clears just those rows instead of the whole kernel-sized buffer).
    grad_kernel_sparse: bool,
}

/// The values of increasing `a` that are not in increasing `b`.
fn sorted_difference<'a>(a: &'a [u32], b: &'a [u32]) -> impl Iterator<Item = u32> + 'a {
    let mut rest = b.iter().peekable();
    a.iter().copied().filter(move |&x| {
        while rest.next_if(|&&y| y < x).is_some() {}
        rest.peek() != Some(&&x)
    })
}

impl DenseState {
    /// Whether sparse input goes column by column (see [`COLUMN_WISE_MIN_UNITS`]).
    fn column_wise(&self) -> bool {
        let units = self.kernel.len() / self.input_width.max(1);
        self.kernel.len() * size_of::<f32>() > COLUMN_WISE_KERNEL_BYTES && units >= COLUMN_WISE_MIN_UNITS
    }
}

impl Dense {
    /// A layer with `units` outputs and Keras' defaults.
    pub fn new(units: usize) -> Self {
        Self {
            name: String::new(),
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            state: DenseState::default(),
        }
    }

    /// Sets the activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Turns the bias on or off.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets the kernel initializer.
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Sets the bias initializer.
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Adds a kernel regularizer.
    pub fn kernel_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
        self.kernel_regularizer = Some(Box::new(reg));
        self
    }

    /// Adds a bias regularizer.
    pub fn bias_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
        self.bias_regularizer = Some(Box::new(reg));
        self
    }

    /// Adds an activity regularizer.
    pub fn activity_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
        self.activity_regularizer = Some(Box::new(reg));
        self
    }

    fn kernel_view(&self) -> View<'_> {
        View { rows: self.state.input_width, cols: self.units, data: &self.state.kernel }
    }

    /// Adds the activity regularizer's gradient (pushed through the activation when
    /// `through_activation`) to `grad`, which is w.r.t. the output or the logits.
    fn add_activity_grad(&mut self, grad: &mut Matrix, through_activation: bool) {
        let Some(reg) = &self.activity_regularizer else { return };
        let n = grad.rows();
        let s = &mut self.state;
        let scale = 1.0 / n as f32;
        if !through_activation {
            reg.add_grad(s.output.as_slice(), grad.as_mut_slice(), scale);
            return;
        }
        s.scratch.resize(n, self.units);
        s.scratch.fill(0.0);
        reg.add_grad(s.output.as_slice(), s.scratch.as_mut_slice(), scale);
        self.activation.backward(s.output.as_slice(), s.scratch.as_mut_slice(), self.units);
        kernels::axpy(1.0, s.scratch.as_slice(), grad.as_mut_slice());
    }
}

#[typetag::serde]
impl Layer for Dense {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn build(&mut self, input_width: usize, rng: &mut Rng) -> Result<usize, LayerError> {
        if self.units == 0 || input_width == 0 {
            return Err(LayerError::Config {
                layer: self.name.clone(),
                message: format!("units ({}) and input width ({input_width}) must be positive", self.units),
            });
        }
        // A configuration is only a claim: refuse sizes no machine could train before
        // allocating (a kernel, its gradient and the optimizer state are several copies).
        let elements = input_width.checked_mul(self.units).filter(|&n| n <= MAX_KERNEL_ELEMENTS);
        let Some(elements) = elements else {
            return Err(LayerError::Config {
                layer: self.name.clone(),
                message: format!(
                    "a {input_width}×{} kernel is larger than the {MAX_KERNEL_ELEMENTS} weights a Dense layer may hold",
                    self.units
                ),
            });
        };
        let s = &mut self.state;
        s.input_width = input_width;
        s.kernel = vec![0.0; elements];
        self.kernel_initializer.fill(&mut s.kernel, input_width, self.units, rng);
        s.grad_kernel = vec![0.0; s.kernel.len()];
        let bias_len = if self.use_bias { self.units } else { 0 };
        s.bias = vec![0.0; bias_len];
        self.bias_initializer.fill(&mut s.bias, input_width, self.units, rng);
        s.grad_bias = vec![0.0; bias_len];
        // Room for every row, so no batch of sparse input ever grows it.
        s.grad_rows = Vec::with_capacity(input_width);
        s.grad_kernel_sparse = false;
        s.logits = Matrix::zeros(0, self.units);
        s.output = Matrix::zeros(0, self.units);
        s.built = true;
        Ok(self.units)
    }

    fn output_width(&self) -> usize {
        self.units
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Par) {
        assert!(self.state.built, "layer `{}` used before build", self.name);
        assert_eq!(input.cols(), self.state.input_width, "layer `{}` input width", self.name);
        let n = input.rows();
        let mut logits = std::mem::take(&mut self.state.logits);
        logits.resize(n, self.units);
        let s = &mut self.state;
        let kernel = View { rows: s.input_width, cols: self.units, data: &s.kernel };
        match input {
            LayerInput::Dense(x) => matmul::ab(logits.view_mut(), x, kernel, Accum::Replace, par),
            LayerInput::Sparse(x) if s.column_wise() => {
                s.columns.build(x);
                s.columns.matmul(logits.view_mut(), kernel, Accum::Replace);
            }
            LayerInput::Sparse(x) => x.matmul(logits.view_mut(), kernel, Accum::Replace),
        }
        s.output.resize(n, self.units);
        let bias = self.use_bias.then_some(s.bias.as_slice());
        self.activation.forward(logits.as_mut_slice(), bias, s.output.as_mut_slice(), self.units);
        s.logits = logits;
        s.activity_penalty = match &self.activity_regularizer {
            Some(reg) if n > 0 => reg.penalty(s.output.as_slice()) / n as f32,
            _ => 0.0,
        };
    }

    fn output(&self) -> &Matrix {
        &self.state.output
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn logits(&self) -> Option<&Matrix> {
        Some(&self.state.logits)
    }

    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Par,
    ) {
        match grad_of {
            GradOf::Output => {
                self.add_activity_grad(grad, false);
                self.activation.backward(self.state.output.as_slice(), grad.as_mut_slice(), self.units);
            }
            GradOf::Logits => self.add_activity_grad(grad, true),
        }
        let (in_w, units) = (self.state.input_width, self.units);
        let s = &mut self.state;
        let mut grad_kernel = std::mem::take(&mut s.grad_kernel);
        match input {
            LayerInput::Dense(x) => {
                let dk = kiln_tensor::ViewMut { rows: in_w, cols: units, data: &mut grad_kernel };
                matmul::atb(dk, x, grad.view(), Accum::Replace, par);
                s.grad_kernel_sparse = false;
            }
            LayerInput::Sparse(x) if !s.column_wise() => {
                let dk = kiln_tensor::ViewMut { rows: in_w, cols: units, data: &mut grad_kernel };
                x.t_matmul(dk, grad.view(), Accum::Replace);
                s.grad_kernel_sparse = false;
            }
            LayerInput::Sparse(x) => {
                // Only the rows of the words in this batch get a gradient; the rest of the
                // buffer is already zero except where the previous batch wrote. (The
                // optimizer still updates every row, as Keras' dense update does.)
                // The forward pass indexed this batch already (backward always follows the
                // forward of the same input); rebuild only if that was not the case.
                if !s.columns.matches(x) {
                    s.columns.build(x);
                }
                if s.grad_kernel_sparse {
                    // Rows this batch writes are overwritten; clear the other ones of the last.
                    for r in sorted_difference(&s.grad_rows, s.columns.touched()) {
                        grad_kernel[r as usize * units..(r as usize + 1) * units].fill(0.0);
                    }
                } else {
                    grad_kernel.fill(0.0);
                }
                let dk = kiln_tensor::ViewMut { rows: in_w, cols: units, data: &mut grad_kernel };
                s.columns.t_matmul_touched(dk, grad.view());
                s.grad_rows.clear();
                s.grad_rows.extend_from_slice(s.columns.touched());
                s.grad_kernel_sparse = true;
            }
        }
        if let Some(reg) = &self.kernel_regularizer {
            reg.add_grad(&s.kernel, &mut grad_kernel, 1.0);
            s.grad_kernel_sparse = false;
        }
        s.grad_kernel = grad_kernel;
        if self.use_bias {
            kernels::column_sums(grad.as_slice(), &mut s.grad_bias);
            if let Some(reg) = &self.bias_regularizer {
                reg.add_grad(&s.bias, &mut s.grad_bias, 1.0);
            }
        }
        if let Some(gi) = grad_input {
            gi.resize(grad.rows(), in_w);
            matmul::abt(gi.view_mut(), grad.view(), self.kernel_view(), Accum::Replace, par);
        }
    }

    fn param_names(&self) -> Vec<&'static str> {
        if self.use_bias { vec!["kernel", "bias"] } else { vec!["kernel"] }
    }

    fn param_shape(&self, name: &str) -> Option<Vec<usize>> {
        match name {
            "kernel" => Some(vec![self.state.input_width, self.units]),
            "bias" if self.use_bias => Some(vec![self.units]),
            _ => None,
        }
    }

    fn param(&self, name: &str) -> Option<&[f32]> {
        match name {
            "kernel" if self.state.built => Some(&self.state.kernel),
            "bias" if self.state.built && self.use_bias => Some(&self.state.bias),
            _ => None,
        }
    }

    fn set_param(&mut self, name: &str, values: &[f32]) -> Result<(), LayerError> {
        if !self.state.built {
            return Err(LayerError::NotBuilt(self.name.clone()));
        }
        let target = match name {
            "kernel" => &mut self.state.kernel,
            "bias" if self.use_bias => &mut self.state.bias,
            _ => {
                return Err(LayerError::UnknownParam {
                    layer: self.name.clone(),
                    param: name.to_string(),
                    available: self.param_names().join(", "),
                });
            }
        };
        if target.len() != values.len() {
            return Err(LayerError::ParamShape {
                layer: self.name.clone(),
                param: name.to_string(),
                expected: self.param_shape(name).unwrap_or_default(),
                got: values.len(),
            });
        }
        target.copy_from_slice(values);
        Ok(())
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut [f32], &[f32])) {
        let s = &mut self.state;
        f("kernel", &mut s.kernel, &s.grad_kernel);
        if self.use_bias {
            f("bias", &mut s.bias, &s.grad_bias);
        }
    }

    fn visit_regularizers(&self, f: &mut dyn FnMut(&dyn Regularizer)) {
        for reg in [&self.kernel_regularizer, &self.bias_regularizer, &self.activity_regularizer].into_iter().flatten()
        {
            f(reg.as_ref());
        }
    }

    fn activity_penalty(&self) -> f32 {
        self.state.activity_penalty
    }

    fn visit_weight_penalties(&self, f: &mut dyn FnMut(f32)) {
        if let Some(reg) = &self.kernel_regularizer {
            f(reg.penalty(&self.state.kernel));
        }
        if let (Some(reg), true) = (&self.bias_regularizer, self.use_bias) {
            f(reg.penalty(&self.state.bias));
        }
    }

    fn clone_box(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}
