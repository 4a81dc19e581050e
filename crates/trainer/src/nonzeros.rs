//! Dense inputs that are mostly zeros — MNIST digits are 81 % zero pixels — handed to the
//! first layer as their non-zero values alone, when the layer says that is faster
//! ([`Layer::prefers_nonzeros`](kiln_layers::Layer::prefers_nonzeros)). A zero input adds
//! nothing to a product of finite weights, so the sums are the same up to their order of
//! additions; the user does nothing. (With an infinite weight, the dense product's `0·∞`
//! is NaN and the skipped one is not: a diverged run can show a finite loss a step longer.)

use crate::evaluate::EvalBuffers;
use crate::{FeaturesRef, Sequential};

/// Rows read to estimate a data set's density, evenly spaced.
const SAMPLED_ROWS: usize = 1024;

/// The fraction of non-zero values in up to [`SAMPLED_ROWS`] evenly spaced rows of dense
/// or byte features; `None` for other kinds (already sparse, ids, windows, lists).
pub(crate) fn sampled_density(x: FeaturesRef<'_>) -> Option<f64> {
    let (n, width) = (x.len(), x.width());
    if n == 0 || width == 0 {
        return None;
    }
    let step = n.div_ceil(SAMPLED_ROWS);
    let rows = (0..n).step_by(step);
    let sampled = rows.len() * width;
    let nonzero: usize = match x {
        FeaturesRef::Dense(m) => rows.map(|i| m.row(i).iter().filter(|&&v| v != 0.0).count()).sum(),
        FeaturesRef::Bytes { values, .. } => rows.map(|i| values.row(i).iter().filter(|&&b| b != 0).count()).sum(),
        _ => return None,
    };
    Some(nonzero as f64 / sampled as f64)
}

impl Sequential {
    /// Whether batches of `x` reach this (built) model's first layer as their non-zero
    /// values: a Sequential model (one input), zero skipping on
    /// ([`Sequential::set_zero_skipping`]), whose first layer prefers them at `x`'s
    /// density. The choice is logged at debug level.
    pub(crate) fn nonzeros_only(&self, x: FeaturesRef<'_>) -> bool {
        if self.graph.is_some() || !self.zero_skipping {
            return false;
        }
        let (Some(first), Some(density)) = (self.layers.first(), sampled_density(x)) else { return false };
        let chosen = first.prefers_nonzeros(density);
        tracing::debug!(
            layer = first.name(),
            density,
            nonzeros_only = chosen,
            "first-layer input: {}",
            if chosen { "non-zero values only (CSR batches)" } else { "dense batches" }
        );
        chosen
    }

    /// Whether `fit`, `evaluate` and `predict` on `x` hand this built model's first layer
    /// the non-zero values of each row alone (the zero-skipping path,
    /// [`Sequential::set_zero_skipping`]), as they log at debug level.
    pub fn skips_zeros<'a>(&self, x: impl Into<FeaturesRef<'a>>) -> bool {
        self.nonzeros_only(x.into())
    }

    /// Evaluation buffers for batches of `batch_size` rows of `x`, on the path
    /// [`Sequential::nonzeros_only`] chooses.
    pub(crate) fn eval_buffers_for(&self, x: FeaturesRef<'_>, batch_size: usize) -> EvalBuffers {
        EvalBuffers::for_batches_of(x, batch_size, self.nonzeros_only(x))
    }
}
