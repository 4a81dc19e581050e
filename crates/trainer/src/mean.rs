//! Keras' `metrics.Mean`: a float32 running weighted mean.

/// `total += value·weight; count += weight; result = total/count`, all in float32, as
/// Keras' `Mean` metric does (so epoch losses round like Keras').
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mean {
    total: f32,
    count: f32,
}

impl Mean {
    /// Adds `value` with `weight`.
    pub fn add(&mut self, value: f32, weight: f32) {
        self.total += value * weight;
        self.count += weight;
    }

    /// Adds a sum of `count` unweighted values.
    pub fn add_sum(&mut self, sum: f32, count: f32) {
        self.total += sum;
        self.count += count;
    }

    /// The mean so far (0 when empty).
    pub fn result(&self) -> f32 {
        if self.count == 0.0 { 0.0 } else { self.total / self.count }
    }
}
