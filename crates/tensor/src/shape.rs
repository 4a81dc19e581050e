//! The shape of one sample: channels-last dimensions, the batch excluded.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most dimensions a sample may have (Keras' `Conv3D` input, `[d, h, w, c]`, is rank 4;
/// two more leave room without inviting unbounded configs).
pub const MAX_RANK: usize = 6;

/// The dimensions of one sample, batch excluded, channels last (Keras' default
/// `data_format`): `[784]` for a flat row, `[28, 28, 1]` for a grey image, `[120, 10]`
/// for a sequence of 120 steps of 10 features.
///
/// kiln keeps every activation as one row of `numel()` values per sample, in row-major
/// order over these dimensions, so a shape is how layers agree on what a row means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<usize>", into = "Vec<usize>")]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape of the given dimensions: 1 to [`MAX_RANK`] of them, each ≥ 1, whose product
    /// fits a `usize`.
    pub fn new(dims: impl Into<Vec<usize>>) -> Result<Self, String> {
        let dims = dims.into();
        if dims.is_empty() || dims.len() > MAX_RANK {
            return Err(format!("a sample shape has 1 to {MAX_RANK} dimensions, got {}: {dims:?}", dims.len()));
        }
        if dims.contains(&0) {
            return Err(format!("every dimension of a sample shape must be at least 1, got {dims:?}"));
        }
        if dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none() {
            return Err(format!("the sample shape {dims:?} has more values than a usize can count"));
        }
        Ok(Self(dims))
    }

    /// A flat row of `width` features (`[width]`). Panics when `width` is 0.
    pub fn flat(width: usize) -> Self {
        assert!(width > 0, "a flat sample has at least one feature");
        Self(vec![width])
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Values per sample: the product of the dimensions (checked at construction).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// The last (channel or feature) dimension.
    pub fn last(&self) -> usize {
        *self.0.last().expect("a shape has at least one dimension")
    }

    /// How many vectors of the last dimension one sample holds (`numel / last`): the rows
    /// a last-axis layer such as Dense sees per sample.
    pub fn leading(&self) -> usize {
        self.0[..self.0.len() - 1].iter().product()
    }

    /// The same shape with the last dimension replaced (what Dense returns); `None` when
    /// `last` is 0 or the product overflows.
    pub fn with_last(&self, last: usize) -> Option<Self> {
        let mut dims = self.0.clone();
        *dims.last_mut().expect("a shape has at least one dimension") = last;
        Self::new(dims).ok()
    }
}

impl TryFrom<Vec<usize>> for Shape {
    type Error = String;

    fn try_from(dims: Vec<usize>) -> Result<Self, String> {
        Self::new(dims)
    }
}

impl From<Shape> for Vec<usize> {
    fn from(shape: Shape) -> Self {
        shape.0
    }
}

impl fmt::Display for Shape {
    /// Keras' notation with the batch: `(None, 26, 26, 32)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(None")?;
        for d in &self.0 {
            write!(f, ", {d}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_count_and_print_like_keras() {
        let s = Shape::new([26, 26, 32]).unwrap();
        assert_eq!((s.rank(), s.numel(), s.last(), s.leading()), (3, 21632, 32, 676));
        assert_eq!(s.to_string(), "(None, 26, 26, 32)");
        assert_eq!(Shape::flat(10).to_string(), "(None, 10)");
        assert_eq!(s.with_last(4).unwrap().dims(), &[26, 26, 4]);
    }

    #[test]
    fn bad_shapes_are_refused_with_the_reason() {
        assert!(Shape::new(Vec::new()).unwrap_err().contains("1 to 6"));
        assert!(Shape::new([3, 0]).unwrap_err().contains("at least 1"));
        assert!(Shape::new([usize::MAX, 2]).unwrap_err().contains("usize"));
        assert!(Shape::new([1; 7]).is_err());
        // Deserializing goes through `TryFrom`, so a saved config cannot smuggle one in.
        assert!(Shape::try_from(vec![0, 2]).is_err());
    }
}
