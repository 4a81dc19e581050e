//! Keras' loss options on a [`Loss`]: setting them (checked as they are set) and checking
//! values built directly.

use crate::loss::Kind;
use crate::{Loss, Reduction, TrainError};

impl Loss {
    /// The same loss with `from_logits` set (MSE and MAE have no such switch and are
    /// returned as they are).
    pub fn with_from_logits(self, from_logits: bool) -> Self {
        match self {
            Self::SparseCategoricalCrossentropy { ignore_class, reduction, .. } => {
                Self::SparseCategoricalCrossentropy { from_logits, ignore_class, reduction }
            }
            Self::CategoricalCrossentropy { label_smoothing, reduction, .. } => {
                Self::CategoricalCrossentropy { from_logits, label_smoothing, reduction }
            }
            Self::BinaryCrossentropy { label_smoothing, reduction, .. } => {
                Self::BinaryCrossentropy { from_logits, label_smoothing, reduction }
            }
            other => other,
        }
    }

    /// Whether the loss has Keras' `from_logits` option (the crossentropies).
    pub fn has_from_logits(self) -> bool {
        !matches!(self.kind(), Kind::Mse | Kind::Mae)
    }

    /// The same loss with `reduction` set (every loss has one).
    pub fn with_reduction(self, reduction: Reduction) -> Self {
        match self {
            Self::SparseCategoricalCrossentropy { from_logits, ignore_class, .. } => {
                Self::SparseCategoricalCrossentropy { from_logits, ignore_class, reduction }
            }
            Self::CategoricalCrossentropy { from_logits, label_smoothing, .. } => {
                Self::CategoricalCrossentropy { from_logits, label_smoothing, reduction }
            }
            Self::BinaryCrossentropy { from_logits, label_smoothing, .. } => {
                Self::BinaryCrossentropy { from_logits, label_smoothing, reduction }
            }
            Self::MeanSquaredError { .. } => Self::MeanSquaredError { reduction },
            Self::MeanAbsoluteError { .. } => Self::MeanAbsoluteError { reduction },
        }
    }

    /// The same loss with Keras' `label_smoothing` (binary and categorical crossentropy
    /// only; `0 ≤ ls ≤ 1`).
    pub fn with_label_smoothing(self, ls: f32) -> Result<Self, TrainError> {
        let set = match self {
            Self::CategoricalCrossentropy { from_logits, reduction, .. } => {
                Self::CategoricalCrossentropy { from_logits, label_smoothing: ls, reduction }
            }
            Self::BinaryCrossentropy { from_logits, reduction, .. } => {
                Self::BinaryCrossentropy { from_logits, label_smoothing: ls, reduction }
            }
            other => {
                return Err(TrainError::Config(format!(
                    "{}: label_smoothing is an option of binary and categorical crossentropy only",
                    other.name()
                )));
            }
        };
        set.validate()?;
        Ok(set)
    }

    /// The same loss with Keras' `ignore_class` (sparse categorical crossentropy only):
    /// rows labelled `class` get loss 0 and leave the reduction.
    pub fn with_ignore_class(self, class: Option<i32>) -> Result<Self, TrainError> {
        match self {
            Self::SparseCategoricalCrossentropy { from_logits, reduction, .. } => {
                Ok(Self::SparseCategoricalCrossentropy { from_logits, ignore_class: class, reduction })
            }
            other if class.is_none() => Ok(other),
            other => Err(TrainError::Config(format!(
                "{}: ignore_class is an option of sparse categorical crossentropy only",
                other.name()
            ))),
        }
    }

    /// Checks Keras' `axis` for this loss on kiln's 2-D (samples × features) tensors: the
    /// crossentropies take the feature axis, `-1` or `1` (the same axis; the loss is
    /// unchanged). `0` runs the crossentropy across samples — one value per feature, so
    /// per-sample weights, `ignore_class` and `fit` no longer apply (Keras' TensorFlow
    /// backend refuses it for sparse crossentropy) — and is refused, as are MSE and MAE,
    /// which have no `axis` in Keras.
    pub fn check_axis(self, axis: i64) -> Result<(), TrainError> {
        let name = self.name();
        match (self.kind(), axis) {
            (Kind::Mse | Kind::Mae, _) => Err(TrainError::Config(format!("{name} has no axis option"))),
            (_, -1 | 1) => Ok(()),
            (_, 0 | -2) => Err(TrainError::Config(format!(
                "{name}: axis={axis} computes the loss across samples (one value per feature); kiln computes it \
                 along the feature axis only (axis=-1 or 1)"
            ))),
            (_, _) => Err(TrainError::Config(format!("{name}: axis={axis} is out of range for 2-D inputs"))),
        }
    }

    /// Checks the options of a loss built directly: `label_smoothing` finite and in
    /// `[0, 1]`. `compile` and the standalone calls run it.
    pub fn validate(self) -> Result<(), TrainError> {
        let ls = self.label_smoothing();
        if !(0.0..=1.0).contains(&ls) {
            return Err(TrainError::Config(format!("{}: label_smoothing={ls} is not in [0, 1]", self.name())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_set_where_keras_has_them_and_refused_elsewhere() {
        let bce = Loss::binary_crossentropy().with_label_smoothing(0.2).unwrap().with_from_logits(true);
        assert_eq!((bce.label_smoothing(), bce.from_logits()), (0.2, true));
        for bad in [-0.1, 1.5, f32::NAN] {
            let err = Loss::categorical_crossentropy().with_label_smoothing(bad).unwrap_err().to_string();
            assert!(err.contains("label_smoothing"), "{err}");
        }
        assert!(Loss::sparse_categorical_crossentropy().with_label_smoothing(0.1).is_err());
        assert!(Loss::mean_squared_error().with_ignore_class(Some(1)).is_err());
        let s = Loss::sparse_categorical_crossentropy().with_ignore_class(Some(-1)).unwrap();
        assert_eq!(s.with_reduction(Reduction::Sum).ignore_class(), Some(-1));
        assert_eq!(Loss::mean_absolute_error().with_reduction(Reduction::Sum).reduction(), Reduction::Sum);
        Loss::categorical_crossentropy().check_axis(1).unwrap();
        assert!(Loss::categorical_crossentropy().check_axis(0).unwrap_err().to_string().contains("axis=0"));
        assert!(Loss::binary_crossentropy().check_axis(2).is_err());
        assert!(Loss::mean_absolute_error().check_axis(-1).is_err());
    }
}
