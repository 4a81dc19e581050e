//! The one error this crate returns: a shape that does not fit.

/// A buffer length or dimension that does not match the requested shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shape error: {0}")]
pub struct ShapeError(pub String);
