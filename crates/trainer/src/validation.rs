//! What `fit` checks and fixes before the first epoch: data shapes, labels, the
//! validation rows.

use kiln_tensor::Matrix;

use crate::{FeaturesRef, Sequential, TrainError, Validation};

/// Held-out data and the rows of it to evaluate.
pub(crate) struct Held<'a> {
    pub x: FeaturesRef<'a>,
    pub y: &'a Matrix,
    pub rows: Vec<usize>,
}

/// A `fit` call's data, checked: the training rows are `0..train_rows` of `x`.
pub(crate) struct Plan<'a> {
    pub x: FeaturesRef<'a>,
    pub y: &'a Matrix,
    pub train_rows: usize,
    pub validation: Option<Held<'a>>,
}

/// Checks that inputs and labels agree, are not empty, and that every input is finite;
/// returns the sample count.
pub(crate) fn check_data(x: FeaturesRef<'_>, y: &Matrix, what: &'static str) -> Result<usize, TrainError> {
    if x.len() != y.rows() {
        return Err(TrainError::Input(format!("{what} data has {} samples but {} labels", x.len(), y.rows())));
    }
    check_inputs(x, what)?;
    Ok(x.len())
}

/// Refuses empty inputs and NaN or infinite values, naming the row and column.
pub(crate) fn check_inputs(x: FeaturesRef<'_>, what: &'static str) -> Result<(), TrainError> {
    if x.is_empty() {
        return Err(TrainError::Input(format!("{what} data is empty")));
    }
    match x.first_non_finite() {
        Some((row, col, value)) => Err(TrainError::NonFiniteFeature { data: what, row, col, value }),
        None => Ok(()),
    }
}

/// Refuses a batch size of 0 (everywhere alike: fit, evaluate, predict).
pub(crate) fn check_batch_size(batch_size: usize) -> Result<(), TrainError> {
    if batch_size == 0 {
        return Err(TrainError::Input("batch_size must be at least 1".into()));
    }
    Ok(())
}

impl Sequential {
    /// Everything `fit` needs before its first epoch: the model built and its optimizer
    /// ready, labels checked against the loss, the validation rows chosen (Keras: the
    /// last fraction, before any shuffling).
    pub(crate) fn prepare_fit<'a>(
        &mut self,
        x: FeaturesRef<'a>,
        y: &'a Matrix,
        batch_size: usize,
        validation: Validation<'a>,
    ) -> Result<Plan<'a>, TrainError> {
        let n = check_data(x, y, "training")?;
        check_batch_size(batch_size)?;
        self.ensure_built(x.width(), "training")?;
        self.ensure_optimizer()?;
        let out_w = self.output_width().expect("built");
        let loss = self.compiled.as_ref().expect("compiled").loss;
        loss.check_targets(y, out_w)?;
        let (train_rows, validation) = match validation {
            Validation::None => (n, None),
            Validation::Split(f) => {
                if !(f > 0.0 && f < 1.0) {
                    return Err(TrainError::Input(format!("validation_split must be in (0, 1), got {f}")));
                }
                let split_at = (n as f64 * (1.0 - f)).floor() as usize;
                if split_at == 0 || split_at == n {
                    return Err(TrainError::Input(format!(
                        "validation_split {f} of {n} samples leaves an empty training or validation set"
                    )));
                }
                (split_at, Some(Held { x, y, rows: (split_at..n).collect() }))
            }
            Validation::Data(xv, yv) => {
                let nv = check_data(xv, yv, "validation")?;
                if xv.width() != x.width() {
                    return Err(TrainError::WidthMismatch {
                        data: "validation",
                        expected: x.width(),
                        found: xv.width(),
                    });
                }
                loss.check_targets(yv, out_w)?;
                (n, Some(Held { x: xv, y: yv, rows: (0..nv).collect() }))
            }
        };
        Ok(Plan { x, y, train_rows, validation })
    }
}
