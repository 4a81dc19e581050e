//! What `fit` checks and fixes before the first epoch: data shapes, labels, the
//! validation rows.

use kiln_tensor::Matrix;

use crate::{FeaturesRef, Sequential, TrainError, Validation};

/// Held-out data and the rows of it to evaluate, with a weight per row of `x` if any.
pub(crate) struct Held<'a> {
    pub x: FeaturesRef<'a>,
    pub y: &'a Matrix,
    pub rows: Vec<usize>,
    pub weights: Option<&'a [f32]>,
}

/// A `fit` call's data, checked: the training rows are `0..train_rows` of `x`, each with
/// its weight when `weights` is set.
pub(crate) struct Plan<'a> {
    pub x: FeaturesRef<'a>,
    pub y: &'a Matrix,
    pub train_rows: usize,
    /// Borrowed `sample_weight`, or weights made from `class_weight`.
    pub weights: Option<std::borrow::Cow<'a, [f32]>>,
    pub validation: Option<Held<'a>>,
}

/// Refuses weights that are not one finite, non-negative number per row.
pub(crate) fn check_weights(w: &[f32], rows: usize, what: &'static str) -> Result<(), TrainError> {
    if w.len() != rows {
        return Err(TrainError::Input(format!("{what} sample_weight has {} values for {rows} samples", w.len())));
    }
    match w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        Some(i) => {
            Err(TrainError::Input(format!("{what} sample_weight {} at row {i} is not a finite number ≥ 0", w[i])))
        }
        None => Ok(()),
    }
}

/// Keras' `class_weight_to_sample_weights`: each row weighs its class (`np.round(y)` for
/// one column, which rounds halves to even, `argmax(y)` otherwise), 1 for classes the map
/// does not name.
pub(crate) fn class_weights(y: &Matrix, rows: usize, map: &std::collections::BTreeMap<usize, f32>) -> Vec<f32> {
    (0..rows)
        .map(|i| {
            let row = y.row(i);
            let class =
                if row.len() == 1 { row[0].round_ties_even() as i64 } else { kiln_tensor::kernels::argmax(row) as i64 };
            usize::try_from(class).ok().and_then(|c| map.get(&c).copied()).unwrap_or(1.0)
        })
        .collect()
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
    if let FeaturesRef::Multi(parts) = x {
        let Some(first) = parts.first() else {
            return Err(TrainError::Input(format!("{what} data is an empty list of inputs")));
        };
        for (k, part) in parts.iter().enumerate() {
            if matches!(part, FeaturesRef::Multi(_)) {
                return Err(TrainError::Input(format!("{what} data: input {k} is itself a list")));
            }
            if part.len() != first.len() {
                return Err(TrainError::Input(format!(
                    "{what} data: input {k} has {} samples, input 0 has {}",
                    part.len(),
                    first.len()
                )));
            }
            check_inputs(*part, what).map_err(|e| TrainError::Input(format!("input {k}: {e}")))?;
        }
        return Ok(());
    }
    if x.is_empty() {
        return Err(TrainError::Input(format!("{what} data is empty")));
    }
    // A bad divisor is the caller's argument, not a value in the data: say so.
    if let FeaturesRef::Bytes { divisor, .. } = x
        && !(divisor.is_finite() && divisor != 0.0 && (255.0 / divisor).is_finite())
    {
        return Err(TrainError::Input(format!(
            "{what} data: the byte features' divisor is {divisor}; it must be a finite, non-zero number \
             (each byte is divided by it, e.g. 255 for pixels)"
        )));
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
        sample_weight: Option<&'a [f32]>,
        class_weight: Option<&std::collections::BTreeMap<usize, f32>>,
    ) -> Result<Plan<'a>, TrainError> {
        let n = check_data(x, y, "training")?;
        check_batch_size(batch_size)?;
        self.ready_for(x, batch_size, "training")?;
        self.ensure_optimizer()?;
        // Gradient buffers exist before the first step (the optimizer reads them all);
        // a model that only predicts never allocates them.
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut().iter_mut())
            .filter(|p| p.is_trainable())
            .for_each(kiln_layers::Param::ensure_grad);
        self.check_output_rank()?;
        self.check_sparse_clipping()?;
        let out_w = self.output_width().expect("built");
        let loss = self.compiled.as_ref().expect("compiled").loss;
        loss.check_targets(y, out_w)?;
        self.check_metric_labels(y, out_w)?;
        // The metrics' label widths are checked here too, so a misfit stops `fit` first.
        self.metric_states(out_w, y.cols())?;
        if let Some(w) = sample_weight {
            check_weights(w, n, "training")?;
            if class_weight.is_some() {
                return Err(TrainError::Input(
                    "you cannot pass class_weight and sample_weight at the same time".into(),
                ));
            }
        }
        if let Some(map) = class_weight
            && let Some((c, w)) = map.iter().find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(TrainError::Input(format!("class_weight of class {c} is {w}, not a finite number ≥ 0")));
        }
        let (train_rows, validation) = match validation {
            // Keras' `if validation_split and validation_data is None`: 0, its default, is none.
            Validation::None | Validation::Split(0.0) => (n, None),
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
                let weights = sample_weight;
                (split_at, Some(Held { x, y, rows: (split_at..n).collect(), weights }))
            }
            Validation::Data(xv, yv) | Validation::WeightedData(xv, yv, _) => {
                let nv = check_data(xv, yv, "validation")?;
                let weights = match validation {
                    Validation::WeightedData(_, _, w) => {
                        check_weights(w, nv, "validation")?;
                        Some(w)
                    }
                    _ => None,
                };
                self.check_input_count(xv, "validation")?;
                if xv.width() != x.width() {
                    return Err(TrainError::WidthMismatch {
                        data: "validation",
                        expected: x.width(),
                        found: xv.width(),
                    });
                }
                self.check_features(xv, "validation")?;
                loss.check_targets(yv, out_w)?;
                self.check_metric_labels(yv, out_w)?;
                (n, Some(Held { x: xv, y: yv, rows: (0..nv).collect(), weights }))
            }
        };
        // Class weights apply to the training rows only, as Keras' adapter sees them.
        let weights = match (sample_weight, class_weight) {
            (Some(w), _) => Some(std::borrow::Cow::Borrowed(&w[..train_rows])),
            (None, Some(map)) => Some(std::borrow::Cow::Owned(class_weights(y, train_rows, map))),
            (None, None) => None,
        };
        Ok(Plan { x, y, train_rows, weights, validation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_column_labels_round_halves_to_even_as_numpy() {
        // Keras 3.15.1: class_weight_to_sample_weights([[.5], [1.5], [2.5], [3.5]], …) gives
        // [1, 100, 100, 10000] (np.round: 0.5 → 0, 1.5 → 2, 2.5 → 2, 3.5 → 4).
        let y = Matrix::from_rows(&[&[0.5], &[1.5], &[2.5], &[3.5]]).unwrap();
        let map = [(0, 1.0), (1, 10.0), (2, 100.0), (3, 1000.0), (4, 10000.0)].into_iter().collect();
        assert_eq!(class_weights(&y, 4, &map), [1.0, 100.0, 100.0, 10000.0]);
    }
}
