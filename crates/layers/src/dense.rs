//! The densely connected layer.

use kiln_regularizers::Regularizer;
use kiln_tensor::{Accumulate, ColumnIndex, Matrix, PackedColumns, Parallelism, Shape, View, ViewMut, kernels, matmul};
use serde::{Deserialize, Serialize};

use crate::{Activation, BuildContext, GradOf, Initializer, Layer, LayerCore, LayerError, LayerInput, Param};

/// `y = activation(x · kernel + bias)` (Keras `layers.Dense`, `keras/src/layers/core/dense.py`).
///
/// Kernel shape `(input_dim, units)`, row-major: the weights of one input feature are
/// contiguous, which is what a sparse input row reads. Defaults follow Keras:
/// `glorot_uniform` kernel, zero bias, no regularizers, linear activation.
/// An activity regularizer acts on the output after the activation and its penalty is
/// divided by the batch size.
///
/// Like Keras' Dense it acts on the **last axis**: a sample `[…, input_dim]` becomes
/// `[…, units]`, every leading position with the same kernel (a `[b, t, f]` batch is the
/// product of `[b·t, f]` rows and the kernel, with no copy).
///
/// # Shapes
/// - input: `[batch, …, input_dim]`, dense; or `[batch, input_dim]` as CSR rows
/// - output: `[batch, …, units]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dense {
    #[serde(flatten)]
    core: LayerCore,
    /// Output width (≥ 1).
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

/// Sparse input's forward product goes column by column when the kernel is larger than
/// this…
const COLUMN_WISE_KERNEL_BYTES: usize = 1 << 20;
/// …and a strip of it 64 columns wide (the register block of the row-wise product) is
/// larger than this, so that it would not stay in L2 while every row of the batch reads
/// it. Column by column, each kernel row is read once per batch, at the price of building
/// a [`ColumnIndex`] (a few ns per entry). Measured (`docs/performance.md`): a
/// 10,000×512 kernel fed multi-hot reviews is 1.35× faster per epoch column-wise; a
/// 784×512 one fed MNIST digits is faster row by row.
const ROW_WISE_STRIP_BYTES: usize = 512 << 10;
/// Sparse input's kernel gradient goes column by column from this many units: each
/// kernel-gradient row is then summed in registers and written once, where row by row
/// every stored entry loads and stores a whole row. Narrower layers stay row-wise: at 16
/// units, building the index costs more than it saves (2× slower on a 50,000-word
/// kernel).
const COLUMN_WISE_MIN_UNITS: usize = 64;

/// A dense input with at most this fraction of non-zero values is multiplied through
/// its non-zero values alone (see [`Layer::prefers_nonzeros`]). Measured with `cargo xtask
/// bench --crossover` (`docs/performance.md`): on a 784→512 layer and batches of 128, the
/// sparse forward and kernel gradient tie with the dense products near 0.3 of values
/// non-zero, and take a third of their time on MNIST digits (0.19).
pub const NONZERO_INPUT_MAX_DENSITY: f64 = 0.25;
/// Narrower layers keep the dense products: measured the same way, at 16 units the
/// dense forward and gradient of a batch of digits take half the time of the sparse ones
/// (the products are too small for the per-entry work to pay).
pub const NONZERO_INPUT_MIN_UNITS: usize = 64;

/// Per-batch buffers (not part of the configuration; parameters live in the core).
#[derive(Debug, Clone, Default)]
struct DenseState {
    /// The input's last dimension (`input_dim`).
    input_width: usize,
    /// Vectors of `input_dim` per sample (1 for a flat input).
    leading: usize,
    logits: Matrix,
    /// The current sparse batch grouped by column (sparse input only).
    columns: ColumnIndex,
    /// When `grad_kernel_sparse`, the only rows of the kernel gradient that may be non-zero.
    grad_rows: Vec<u32>,
    /// Whether the kernel gradient is zero outside `grad_rows` (so the next sparse batch
    /// clears just those rows instead of the whole kernel-sized buffer).
    grad_kernel_sparse: bool,
    /// The rows of the last batch this batch does not touch (cleared by the product).
    stale_rows: Vec<u32>,
    /// The kernel, packed for the row-wise sparse product.
    packed: PackedColumns,
    /// Whether `columns` indexes the batch of the last forward pass (a column-wise one).
    indexed_this_batch: bool,
}

/// The values of increasing `a` that are not in increasing `b`.
fn sorted_difference<'a>(a: &'a [u32], b: &'a [u32]) -> impl Iterator<Item = u32> + 'a {
    let mut rest = b.iter().peekable();
    a.iter().copied().filter(move |&x| {
        while rest.next_if(|&&y| y < x).is_some() {}
        rest.peek() != Some(&&x)
    })
}

impl Dense {
    /// A layer with `units` outputs and Keras' defaults.
    pub fn new(units: usize) -> Self {
        Self {
            core: LayerCore::default(),
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
        self.core.name = name.into();
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

    /// Whether sparse input's kernel gradient goes column by column (see
    /// [`COLUMN_WISE_MIN_UNITS`]).
    fn column_wise(&self) -> bool {
        self.units >= COLUMN_WISE_MIN_UNITS
    }

    /// Whether sparse input's forward product goes column by column (see
    /// [`ROW_WISE_STRIP_BYTES`]).
    fn column_wise_forward(&self) -> bool {
        let (rows, strip_width) = (self.state.input_width, 64.min(self.units));
        rows * self.units * size_of::<f32>() > COLUMN_WISE_KERNEL_BYTES
            && rows * strip_width * size_of::<f32>() > ROW_WISE_STRIP_BYTES
            && self.column_wise()
    }

    fn config_error(&self, message: String) -> LayerError {
        LayerError::Config { layer: self.core.name.clone(), message }
    }

    /// Checks units, input width, initializers and regularizers.
    fn validate(&self, input_width: usize) -> Result<(), LayerError> {
        if self.units == 0 || input_width == 0 {
            return Err(
                self.config_error(format!("units ({}) and input width ({input_width}) must be positive", self.units))
            );
        }
        for (what, init) in
            [("kernel_initializer", &self.kernel_initializer), ("bias_initializer", &self.bias_initializer)]
        {
            init.validate().map_err(|e| self.config_error(format!("{what}: {e}")))?;
        }
        if self.use_bias {
            self.bias_initializer.check_vector("bias_initializer").map_err(|e| self.config_error(e))?;
        }
        let regs = [
            ("kernel_regularizer", &self.kernel_regularizer),
            ("bias_regularizer", &self.bias_regularizer),
            ("activity_regularizer", &self.activity_regularizer),
        ];
        for (what, reg) in regs {
            if let Some(reg) = reg {
                reg.validate().map_err(|e| self.config_error(format!("{what}: {e}")))?;
            }
        }
        Ok(())
    }
}

#[typetag::serde]
impl Layer for Dense {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn reads_sparse(&self) -> bool {
        true
    }

    /// Below [`NONZERO_INPUT_MAX_DENSITY`], on flat input, from
    /// [`NONZERO_INPUT_MIN_UNITS`] units.
    fn prefers_nonzeros(&self, density: f64) -> bool {
        self.state.leading == 1 && self.units >= NONZERO_INPUT_MIN_UNITS && density <= NONZERO_INPUT_MAX_DENSITY
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let kernel = input.last().checked_mul(self.units)?;
        Some((kernel.checked_add(if self.use_bias { self.units } else { 0 })?, input.with_last(self.units)?))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let input_width = input.last();
        self.validate(input_width)?;
        let output = input.with_last(self.units).ok_or_else(|| {
            self.config_error(format!("{} units on an input of shape {input} overflow the output size", self.units))
        })?;
        let units = self.units;
        let mut kernel =
            ctx.param("kernel", vec![input_width, units])?.with_regularizer(self.kernel_regularizer.clone());
        self.kernel_initializer.fill(kernel.value_mut(), input_width, units, ctx.rng());
        let mut params = vec![kernel];
        if self.use_bias {
            let mut bias = ctx.param("bias", vec![units])?.with_regularizer(self.bias_regularizer.clone());
            self.bias_initializer.fill_vector(bias.value_mut(), ctx.rng());
            params.push(bias);
        }
        self.core.params = params;
        self.core.output = Matrix::zeros(0, output.numel());
        self.state = DenseState {
            input_width,
            leading: input.leading(),
            logits: Matrix::zeros(0, units),
            // Room for every row, so no batch of sparse input ever grows them.
            grad_rows: Vec::with_capacity(input_width),
            stale_rows: Vec::with_capacity(input_width),
            ..DenseState::default()
        };
        Ok(output)
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Parallelism) {
        assert!(!self.core.params.is_empty(), "layer `{}` used before build", self.core.name);
        let (t, units) = (self.state.leading, self.units);
        assert_eq!(input.cols(), t * self.state.input_width, "layer `{}` input width", self.core.name);
        let n = input.rows();
        let column_wise = self.column_wise_forward();
        let (params, output, s) = (&self.core.params, &mut self.core.output, &mut self.state);
        let kernel = View { rows: s.input_width, cols: units, data: params[0].value() };
        // A sample of `t` vectors is `t` rows of the product (t = 1 for flat input).
        s.logits.resize(n * t, units);
        s.indexed_this_batch = false;
        match input {
            LayerInput::Dense(x) => {
                matmul::ab(s.logits.view_mut(), x.regroup(s.input_width), kernel, Accumulate::Replace, par)
            }
            LayerInput::Sparse(x) if column_wise => {
                s.columns.build_par(x, par);
                s.indexed_this_batch = true;
                s.columns.matmul(s.logits.view_mut(), kernel, Accumulate::Replace, par);
            }
            LayerInput::Sparse(x) => {
                x.matmul_blocked(s.logits.view_mut(), kernel, Accumulate::Replace, &mut s.packed, par)
            }
            LayerInput::Ids(_) => panic!("Dense takes values, not token ids (an Embedding reads ids)"),
        }
        output.resize(n, t * units);
        let bias = params.get(1).map(Param::value);
        self.activation.forward(s.logits.as_mut_slice(), bias, output.as_mut_slice(), units, par);
    }

    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Parallelism,
    ) {
        if grad_of == GradOf::Output {
            let logits = Some(self.state.logits.as_slice());
            self.activation.backward(logits, self.core.output.as_slice(), grad.as_mut_slice(), self.units, par);
        }
        let (in_w, t, units) = (self.state.input_width, self.state.leading, self.units);
        let column_wise = self.column_wise();
        let (kernel, rest) = self.core.params.split_first_mut().expect("built");
        let s = &mut self.state;
        let regularized = kernel.regularizer().is_some();
        let grad_kernel = kernel.grad_mut();
        match input {
            LayerInput::Dense(x) => {
                let dk = ViewMut { rows: in_w, cols: units, data: grad_kernel };
                matmul::atb(dk, x.regroup(in_w), grad.view().regroup(units), Accumulate::Replace, par);
                s.grad_kernel_sparse = false;
            }
            LayerInput::Sparse(x) if !column_wise => {
                x.t_matmul(ViewMut { rows: in_w, cols: units, data: grad_kernel }, grad.view(), Accumulate::Replace);
                s.grad_kernel_sparse = false;
            }
            LayerInput::Sparse(x) => {
                // Only the rows of the words in this batch get a gradient; the rest of the
                // buffer is already zero except where the previous batch wrote. (The
                // optimizer still updates every row, as Keras' dense update does.)
                // A column-wise forward pass indexed this batch already (backward always
                // follows the forward of the same input); a row-wise one did not, and the
                // index may then hold an earlier batch of the very same shape and entry
                // count, so it is rebuilt.
                if !s.indexed_this_batch || !s.columns.matches(x) {
                    s.columns.build_par(x, par);
                }
                s.indexed_this_batch = false;
                // Rows this batch writes are overwritten; the other ones of the last batch are
                // cleared by the product itself (in parallel, by the threads owning them).
                s.stale_rows.clear();
                if s.grad_kernel_sparse {
                    s.stale_rows.extend(sorted_difference(&s.grad_rows, s.columns.touched()));
                } else {
                    grad_kernel.fill(0.0);
                }
                let dk = ViewMut { rows: in_w, cols: units, data: grad_kernel };
                s.columns.t_matmul_touched(dk, grad.view(), par, &s.stale_rows);
                s.grad_rows.clear();
                s.grad_rows.extend_from_slice(s.columns.touched());
                // A kernel regularizer's gradient (added by the model) touches every row.
                s.grad_kernel_sparse = !regularized;
            }
            LayerInput::Ids(_) => panic!("Dense takes values, not token ids (an Embedding reads ids)"),
        }
        if let Some(bias) = rest.first_mut() {
            kernels::column_sums_par(grad.as_slice(), bias.grad_mut(), par);
        }
        if let Some(gi) = grad_input {
            gi.resize(grad.rows(), t * in_w);
            let kernel = View { rows: in_w, cols: units, data: kernel.value() };
            matmul::abt(gi.view_mut().regroup(in_w), grad.view().regroup(units), kernel, Accumulate::Replace, par);
        }
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn logits(&self) -> Option<&Matrix> {
        Some(&self.state.logits)
    }

    fn activity_regularizer(&self) -> Option<&dyn Regularizer> {
        self.activity_regularizer.as_deref()
    }
}
