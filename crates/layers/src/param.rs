//! A parameter: a named, shaped tensor with its gradient and its optional regularizer.

use std::borrow::Cow;

use kiln_regularizers::Regularizer;

use crate::LayerError;

/// One tensor of a layer (Keras' `add_weight`): name, shape, values, the gradient buffer
/// `backward` writes, the regularizer that penalizes it (Keras puts the regularizer on the
/// weight too), and whether it is trainable. The trainer walks a model's parameters — one
/// list — for the optimizer, the penalties and their gradients, names, counts and saving.
///
/// A non-trainable parameter (BatchNormalization's moving statistics) is state the layer
/// updates itself: the optimizer, clipping and weight decay never see it, it has no
/// gradient, and saving, loading and checkpoints keep it like any other.
#[derive(Debug, Clone)]
pub struct Param {
    name: Cow<'static, str>,
    shape: Vec<usize>,
    value: Vec<f32>,
    grad: Vec<f32>,
    regularizer: Option<Box<dyn Regularizer>>,
    trainable: bool,
    /// Its layer is frozen (Keras `layer.trainable = False`): not trained whatever
    /// `trainable` says.
    frozen: bool,
    /// Keras keeps it as an int64 (Normalization's `count`): 8 bytes in `summary()`.
    int64: bool,
    /// Per value, Σ over a batch's occurrences of the squared gradient, for a gradient that
    /// is a sum of slices (an Embedding's: see `tracks_squares`). Empty when unused.
    squares: Vec<f32>,
    tracks_squares: bool,
}

impl Param {
    /// A parameter of `shape` (row-major) with zero values. Its zero gradient buffer is
    /// allocated on first use ([`ensure_grad`](Param::ensure_grad), `grad_mut`), so a
    /// model that only predicts — loaded, imported, exported — holds its weights once.
    pub fn zeros(name: impl Into<Cow<'static, str>>, shape: Vec<usize>) -> Self {
        let len = shape.iter().product();
        Self {
            name: name.into(),
            shape,
            value: kiln_tensor::huge_pages::zeroed(len),
            grad: Vec::new(),
            regularizer: None,
            trainable: true,
            frozen: false,
            int64: false,
            squares: Vec::new(),
            tracks_squares: false,
        }
    }

    /// Allocates the (zero) gradient buffer if it is not there yet; training calls it
    /// before its first step.
    pub fn ensure_grad(&mut self) {
        if self.grad.len() != self.value.len() {
            self.grad = kiln_tensor::huge_pages::zeroed(self.value.len());
        }
    }

    /// Marks the parameter non-trainable: state the layer updates itself (see the type's
    /// docs).
    pub fn non_trainable(mut self) -> Self {
        self.trainable = false;
        self
    }

    /// Whether the optimizer trains it: made trainable (not
    /// [`non_trainable`](Param::non_trainable)) and its layer not frozen. Keras'
    /// `variable.trainable`: the optimizer, clipping, weight decay and weight penalties see
    /// only these.
    pub fn is_trainable(&self) -> bool {
        self.trainable && !self.frozen
    }

    /// Marks a value Keras stores as int64 (Normalization's `count`); kiln holds it as
    /// f32, and `summary()` counts 8 bytes for it as Keras does.
    pub fn int64(mut self) -> Self {
        self.int64 = true;
        self
    }

    /// Bytes Keras' `summary()` counts per value: 8 for an int64, else 4 (float32).
    pub fn keras_bytes_per_value(&self) -> usize {
        if self.int64 { 8 } else { 4 }
    }

    /// Freezes or unfreezes it with its layer ([`Layer::set_trainable`](crate::Layer::set_trainable)
    /// calls it); a non-trainable parameter stays non-trainable.
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// Marks the gradient as a sum of per-occurrence slices whose squares the layer also
    /// records ([`squares_mut`](Param::squares_mut)): Keras' TensorFlow optimizers put
    /// `Σ g_k²` rather than `(Σ g_k)²` into their mean of squares for such a gradient (an
    /// Embedding's `IndexedSlices`), and kiln's follow.
    pub fn tracks_squares(mut self) -> Self {
        self.tracks_squares = true;
        self
    }

    /// The per-occurrence squares, when the parameter tracks them.
    pub fn squares(&self) -> Option<&[f32]> {
        self.tracks_squares.then_some(self.squares.as_slice())
    }

    /// The per-occurrence squares, mutably (allocated, zero, on first use).
    pub fn squares_mut(&mut self) -> &mut [f32] {
        if self.squares.len() != self.value.len() {
            self.squares = vec![0.0; self.value.len()];
        }
        &mut self.squares
    }

    /// The values, the gradient and (when tracked) the per-occurrence squares, for an
    /// optimizer step.
    pub fn step_parts(&mut self) -> (&mut [f32], &mut [f32], Option<&[f32]>) {
        self.ensure_grad();
        if self.tracks_squares && self.squares.len() != self.value.len() {
            self.squares = vec![0.0; self.value.len()];
        }
        let squares = self.tracks_squares.then_some(self.squares.as_slice());
        (&mut self.value, &mut self.grad, squares)
    }

    /// Attaches a regularizer (or none).
    pub fn with_regularizer(mut self, regularizer: Option<Box<dyn Regularizer>>) -> Self {
        self.regularizer = regularizer;
        self
    }

    /// The parameter's name within its layer (`kernel`, `bias`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its shape (`[input_dim, units]` for a kernel, `[units]` for a bias).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True for a parameter without values.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The values, row-major.
    pub fn value(&self) -> &[f32] {
        &self.value
    }

    /// The values, mutably (initializers, optimizers).
    pub fn value_mut(&mut self) -> &mut [f32] {
        &mut self.value
    }

    /// The gradient of the last `backward` (empty before the buffer exists).
    pub fn grad(&self) -> &[f32] {
        &self.grad
    }

    /// The gradient, mutably (`backward` writes it).
    pub fn grad_mut(&mut self) -> &mut [f32] {
        self.ensure_grad();
        &mut self.grad
    }

    /// The values and the gradient at once, both mutably, for an optimizer step (which
    /// clips the gradient in place).
    pub fn value_and_grad(&mut self) -> (&mut [f32], &mut [f32]) {
        self.ensure_grad();
        (&mut self.value, &mut self.grad)
    }

    /// The regularizer with the values and the gradient (mutably), for adding the
    /// penalty's gradient; `None` without a regularizer.
    pub fn regularized_parts(&mut self) -> Option<(&dyn Regularizer, &[f32], &mut [f32])> {
        self.regularizer.as_ref()?;
        self.ensure_grad();
        let reg = self.regularizer.as_deref()?;
        Some((reg, &self.value, &mut self.grad))
    }

    /// The regularizer, if any.
    pub fn regularizer(&self) -> Option<&dyn Regularizer> {
        self.regularizer.as_deref()
    }

    /// Overwrites the values; `layer` names the owner in the error when the length differs.
    pub fn set_value(&mut self, layer: &str, values: &[f32]) -> Result<(), LayerError> {
        if values.len() != self.value.len() {
            return Err(LayerError::ParamShape {
                layer: layer.to_string(),
                param: self.name.to_string(),
                expected: self.shape.clone(),
                got: values.len(),
            });
        }
        self.value.copy_from_slice(values);
        Ok(())
    }
}
