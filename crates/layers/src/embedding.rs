//! `Embedding`: each token id becomes a learned vector.
//!
//! Keras: `keras/src/layers/core/embedding.py` (`ops.take(embeddings, inputs, axis=0)`,
//! `embeddings_initializer="uniform"`, i.e. `RandomUniform(-0.05, 0.05)`).

use kiln_regularizers::Regularizer;
use kiln_tensor::{Matrix, Parallelism, Shape};
use serde::{Deserialize, Serialize};

use crate::{BuildContext, GradOf, Initializer, Layer, LayerCore, LayerError, LayerInput};

/// `y[…, :] = embeddings[id, :]` (Keras `layers.Embedding`): a table of `input_dim` rows of
/// `output_dim` values, read at each token id. Ids come as integer inputs (`Features::Ids`)
/// or as integral floats; an id outside `0..input_dim` is refused before training, naming
/// row, column and value (TensorFlow's CPU gather refuses it too). The gradient adds each
/// position's output gradient into its id's row (repeated ids add up); ids have none.
///
/// Keras' TensorFlow backend hands optimizers this gradient as `IndexedSlices`, which
/// RMSprop and Adam square **per occurrence**: a row seen twice adds `g₁² + g₂²` to its
/// mean of squares, not `(g₁ + g₂)²` (rows absent from a batch decay as usual; Adam moves
/// them). kiln records those squares (`Param::tracks_squares`) and its optimizers use
/// them, so the traces replay. With an `embeddings_regularizer` the gradient is dense in
/// Keras too, and so it is here.
///
/// Defaults as Keras: embeddings `U(−0.05, 0.05)`, no regularizer. `mask_zero` is not
/// implemented (kiln has no masks yet).
///
/// # Shapes
/// - input: ids `[t]` (or any shape) per sample
/// - output: `[t, output_dim]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Embedding {
    #[serde(flatten)]
    core: LayerCore,
    /// Vocabulary size: ids run over `0..input_dim`.
    pub input_dim: usize,
    /// Length of each vector.
    pub output_dim: usize,
    /// Initializer of the table (default `RandomUniform(−0.05, 0.05)`).
    pub embeddings_initializer: Initializer,
    /// Penalty on the table.
    #[serde(default)]
    pub embeddings_regularizer: Option<Box<dyn Regularizer>>,
    /// Penalty on the output, divided by the batch size.
    #[serde(default)]
    pub activity_regularizer: Option<Box<dyn Regularizer>>,
    #[serde(skip)]
    positions: usize,
}

impl Embedding {
    /// A table of `input_dim` vectors of `output_dim` values, Keras' defaults otherwise.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Self {
            core: LayerCore::default(),
            input_dim,
            output_dim,
            embeddings_initializer: Initializer::RandomUniform { minval: -0.05, maxval: 0.05 },
            embeddings_regularizer: None,
            activity_regularizer: None,
            positions: 0,
        }
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }

    /// Adds a regularizer on the table.
    pub fn embeddings_regularizer(mut self, reg: impl Regularizer + 'static) -> Self {
        self.embeddings_regularizer = Some(Box::new(reg));
        self
    }

    /// The id at flat position `k` of the input.
    fn id(input: &LayerInput<'_>, k: usize) -> usize {
        match input {
            LayerInput::Ids(v) => v.data[k] as usize,
            // Keras casts to int32; ids were checked integral and in range before training.
            LayerInput::Dense(v) => v.data[k] as usize,
            LayerInput::Sparse(_) => panic!("Embedding takes ids, not sparse rows"),
        }
    }
}

#[typetag::serde]
impl Layer for Embedding {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let mut dims = input.dims().to_vec();
        dims.push(self.output_dim);
        Some((self.input_dim.checked_mul(self.output_dim)?, Shape::new(dims).ok()?))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let error = |message: String| LayerError::Config { layer: self.core.name.clone(), message };
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(error(format!(
                "arguments `input_dim` ({}) and `output_dim` ({}) must be at least 1",
                self.input_dim, self.output_dim
            )));
        }
        if u32::try_from(self.input_dim).is_err() {
            return Err(error(format!("argument `input_dim` = {} is more ids than kiln stores", self.input_dim)));
        }
        self.embeddings_initializer.validate().map_err(|e| error(format!("embeddings_initializer: {e}")))?;
        for (what, reg) in [
            ("embeddings_regularizer", &self.embeddings_regularizer),
            ("activity_regularizer", &self.activity_regularizer),
        ] {
            if let Some(reg) = reg {
                reg.validate().map_err(|e| error(format!("{what}: {e}")))?;
            }
        }
        let mut dims = input.dims().to_vec();
        dims.push(self.output_dim);
        let out = Shape::new(dims).map_err(error)?;
        let mut table = ctx
            .param("embeddings", vec![self.input_dim, self.output_dim])?
            .with_regularizer(self.embeddings_regularizer.clone());
        self.embeddings_initializer.fill(table.value_mut(), self.input_dim, self.output_dim, ctx.rng());
        // TensorFlow's gather gives Keras a sparse gradient, which its optimizers square
        // per occurrence — unless a regularizer's dense gradient joins it.
        if self.embeddings_regularizer.is_none() {
            table = table.tracks_squares();
        }
        self.core.params = vec![table];
        self.core.output = Matrix::zeros(0, out.numel());
        self.positions = input.numel();
        Ok(out)
    }

    fn input_ids_limit(&self) -> Option<usize> {
        Some(self.input_dim)
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, _par: Parallelism) {
        let (n, d) = (input.rows(), self.output_dim);
        assert_eq!(input.cols(), self.positions, "layer `{}` input width", self.core.name);
        let table = self.core.params[0].value();
        let out = &mut self.core.output;
        out.resize(n, self.positions * d);
        for (k, row) in out.as_mut_slice().chunks_exact_mut(d).enumerate() {
            let id = Self::id(&input, k);
            row.copy_from_slice(&table[id * d..(id + 1) * d]);
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
        let d = self.output_dim;
        let table = &mut self.core.params[0];
        table.grad_mut().fill(0.0);
        for (k, g) in grad.as_slice().chunks_exact(d).enumerate() {
            let id = Self::id(&input, k);
            table.grad_mut()[id * d..(id + 1) * d].iter_mut().zip(g).for_each(|(t, &g)| *t += g);
        }
        if table.squares().is_some() {
            let squares = table.squares_mut();
            squares.fill(0.0);
            for (k, g) in grad.as_slice().chunks_exact(d).enumerate() {
                let id = Self::id(&input, k);
                squares[id * d..(id + 1) * d].iter_mut().zip(g).for_each(|(s, &g)| *s += g * g);
            }
        }
        // Ids are integers: nothing upstream can learn from them.
        if let Some(gi) = grad_input {
            gi.resize(input.rows(), input.cols());
            gi.fill(0.0);
        }
    }

    fn activity_regularizer(&self) -> Option<&dyn Regularizer> {
        self.activity_regularizer.as_deref()
    }
}
