//! How a loss turns per-sample values into one number: Keras' `reduction`
//! (`keras/src/losses/loss.py`, `reduce_weighted_values`, `apply_mask`, `reduce_values`).

use kiln_tensor::Matrix;

/// Keras' loss `reduction`: how the weighted per-sample losses `wᵢ·lossᵢ` become the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// `"sum_over_batch_size"` (also `"mean"`), the default: `Σ wᵢ·lossᵢ / n`.
    #[default]
    SumOverBatchSize,
    /// `"sum"`: `Σ wᵢ·lossᵢ`.
    Sum,
    /// `None` / `"none"`: no reduction, one `wᵢ·lossᵢ` per sample (standalone only).
    None,
    /// `"mean_with_sample_weight"`: `Σ wᵢ·lossᵢ / Σ wᵢ` (0 when `Σ wᵢ = 0`); without
    /// weights, the same as `sum_over_batch_size`.
    MeanWithSampleWeight,
}

impl Reduction {
    /// Keras' name: `"sum_over_batch_size"`, `"sum"`, `"none"` or `"mean_with_sample_weight"`.
    pub fn keras_name(self) -> &'static str {
        match self {
            Self::SumOverBatchSize => "sum_over_batch_size",
            Self::Sum => "sum",
            Self::None => "none",
            Self::MeanWithSampleWeight => "mean_with_sample_weight",
        }
    }

    /// Parses a Keras reduction (`None` for JSON `null` / Python `None`), as Keras'
    /// `standardize_reduction` allows; anything else is refused by name.
    pub fn from_keras(name: Option<&str>) -> Result<Self, String> {
        Ok(match name {
            None | Some("none") => Self::None,
            // `mean` is the same reduction as `sum_over_batch_size` in `reduce_values` and
            // `apply_mask` alike.
            Some("sum_over_batch_size" | "mean") => Self::SumOverBatchSize,
            Some("sum") => Self::Sum,
            Some("mean_with_sample_weight") => Self::MeanWithSampleWeight,
            Some(other) => {
                return Err(format!(
                    "reduction `{other}` is not one of sum_over_batch_size, mean, sum, none, mean_with_sample_weight"
                ));
            }
        })
    }
}

/// The weighting a reduction applies to one batch: each row's weight and the final scale,
/// with Keras' mask rule for `ignore_class` folded in.
pub(crate) struct Plan<'a> {
    weights: Option<&'a [f32]>,
    /// Sparse labels and the ignored class: those rows weigh 0.
    ignored: Option<(&'a Matrix, f32)>,
    /// The weight factor of kept rows under a mask: `total / valid` for
    /// `sum_over_batch_size` (so the mean runs over kept rows), else 1.
    mask_weight: f32,
    /// The upstream factor of each row's gradient, before its weight.
    pub u: f32,
    /// `mean_with_sample_weight`'s divisor `Σ wᵢ` (Keras divides; the others multiply by `u`).
    divisor: Option<f32>,
}

/// How a batch is weighted before reduction.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Weighting<'a> {
    /// One weight per row.
    pub rows: Option<&'a [f32]>,
    /// The rows repeat one scalar weight: Keras' `mean_with_sample_weight` then divides by
    /// that scalar, not by its sum over rows (`ops.sum` of a 0-d weight).
    pub scalar: bool,
}

impl<'a> Plan<'a> {
    /// The plan for `n` rows. `ignored`: the labels and the class `ignore_class` masks.
    pub fn new(reduction: Reduction, n: usize, weighting: Weighting<'a>, ignored: Option<(&'a Matrix, f32)>) -> Self {
        let mut plan = Plan { weights: weighting.rows, ignored, mask_weight: 1.0, u: 1.0, divisor: None };
        if let (Some((labels, class)), Reduction::SumOverBatchSize) = (ignored, reduction) {
            // apply_mask: valid entries weigh divide_no_nan(total, valid), so the batch
            // mean runs over the kept rows (and is 0 when none is kept).
            let valid = (0..n).filter(|&i| labels.get(i, 0) != class).count();
            plan.mask_weight = if valid == 0 { 0.0 } else { n as f32 / valid as f32 };
        }
        match reduction {
            Reduction::SumOverBatchSize => plan.u = 1.0 / n as f32,
            Reduction::Sum | Reduction::None => {}
            Reduction::MeanWithSampleWeight => {
                // reduce_values: divide by Σ sample_weight when there is one (the mask
                // becomes one), else by the number of values.
                let d = match (weighting.rows, ignored.is_some(), weighting.scalar) {
                    (None, false, _) => n as f32,
                    (Some(w), false, true) => w.first().copied().unwrap_or(0.0),
                    _ => (0..n).map(|i| plan.weight(i)).sum(),
                };
                plan.u = if d == 0.0 { 0.0 } else { 1.0 / d };
                plan.divisor = Some(d);
            }
        }
        plan
    }

    /// Whether row `i` is masked out by `ignore_class`.
    pub fn ignores(&self, i: usize) -> bool {
        self.ignored.is_some_and(|(labels, class)| labels.get(i, 0) == class)
    }

    /// Row `i`'s weight `wᵢ` as the reduction sees it (1 without weights: `x·1.0` is `x`,
    /// so unweighted numbers are unchanged bit for bit).
    pub fn weight(&self, i: usize) -> f32 {
        let w = self.weights.map_or(1.0, |w| w[i]);
        match self.ignored {
            None => w,
            Some(_) if self.ignores(i) => 0.0,
            Some(_) => w * self.mask_weight,
        }
    }

    /// The reduced loss from `Σ wᵢ·lossᵢ`.
    pub fn value(&self, weighted_sum: f32) -> f32 {
        match self.divisor {
            // divide_no_nan
            Some(0.0) => 0.0,
            Some(d) => weighted_sum / d,
            None => weighted_sum * self.u,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for r in [Reduction::SumOverBatchSize, Reduction::Sum, Reduction::None, Reduction::MeanWithSampleWeight] {
            assert_eq!(Reduction::from_keras(Some(r.keras_name())), Ok(r));
        }
        assert_eq!(Reduction::from_keras(None), Ok(Reduction::None));
        assert_eq!(Reduction::from_keras(Some("mean")), Ok(Reduction::SumOverBatchSize));
        assert!(Reduction::from_keras(Some("auto")).unwrap_err().contains("`auto`"));
    }

    #[test]
    fn mean_with_sample_weight_divides_by_the_weights() {
        let w = [1.0, 3.0];
        let p = Plan::new(Reduction::MeanWithSampleWeight, 2, Weighting { rows: Some(&w), scalar: false }, None);
        assert_eq!(p.value(8.0), 2.0);
        // A scalar weight: Keras' divisor is the scalar itself.
        let s = [2.0, 2.0];
        let p = Plan::new(Reduction::MeanWithSampleWeight, 2, Weighting { rows: Some(&s), scalar: true }, None);
        assert_eq!(p.value(8.0), 4.0);
        let z = [0.0, 0.0];
        let p = Plan::new(Reduction::MeanWithSampleWeight, 2, Weighting { rows: Some(&z), scalar: false }, None);
        assert_eq!((p.value(0.0), p.u), (0.0, 0.0));
    }

    #[test]
    fn ignored_rows_leave_the_mean() {
        let labels = Matrix::from_rows(&[&[-1.0], &[2.0], &[1.0], &[-1.0]]).unwrap();
        let p = Plan::new(Reduction::SumOverBatchSize, 4, Weighting::default(), Some((&labels, -1.0)));
        assert_eq!((p.weight(0), p.weight(1)), (0.0, 2.0));
        assert_eq!(p.value(p.weight(1) * 3.0 + p.weight(2) * 5.0), 4.0);
        let all = Matrix::from_rows(&[&[-1.0]]).unwrap();
        let p = Plan::new(Reduction::SumOverBatchSize, 1, Weighting::default(), Some((&all, -1.0)));
        assert_eq!(p.weight(0), 0.0);
    }
}
