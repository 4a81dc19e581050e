//! `Normalization`: standardizes inputs with a mean and variance learned by `adapt` or
//! given, following Keras' `keras/src/layers/preprocessing/normalization.py`:
//! `y = (x − mean) / max(√variance, 1e-7)` in float32, or with `invert`
//! `y = mean + x · max(√variance, 1e-7)`.
//!
//! The file is `standardize.rs` because `normalization.rs` holds BatchNormalization and
//! LayerNormalization.

use kiln_tensor::{Matrix, Parallelism, Shape};
use serde::{Deserialize, Serialize};

use crate::{BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// Keras' `backend.epsilon()`: the smallest standard deviation divided by.
const EPSILON: f32 = 1e-7;

/// Standardizes each feature (`axis = -1`, Keras' default: one mean and variance per
/// position of the last axis, over the batch and every other axis) or everything at once
/// (`axis = None`).
///
/// The statistics come from [`adapt`](Normalization::adapt) (saved as the
/// non-trainable weights `mean`, `variance` and Keras' always-zero `count`) or from
/// [`with_stats`](Normalization::with_stats) (Keras' `mean=`, `variance=`: constants in the
/// config, no weights).
///
/// ```
/// use kiln_layers::Normalization;
/// use kiln_tensor::Matrix;
///
/// let x = Matrix::from_rows(&[[1.0, 100.0], [3.0, 300.0]])?;
/// let mut norm = Normalization::new();
/// norm.adapt(&x)?; // NumPy's float32 mean and variance, as Keras' adapt on a float32 array
/// assert_eq!(norm.adapted(), Some((&[2.0, 200.0][..], &[1.0, 10000.0][..])));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Shapes
/// - input: any sample shape `[…, d]`
/// - output: the same
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Normalization {
    #[serde(flatten)]
    core: LayerCore,
    // Private, set through the builders before `build` checks them: changed after, they
    // would no longer match the buffers `build` sized.
    /// Keras' `axis`: `Some(-1)` (default) standardizes each position of the last axis;
    /// `None` uses one mean and variance for every value. Other axes are refused.
    axis: Option<i64>,
    /// Keras' `mean` and `variance` given as constants (one value, or one per feature);
    /// `None` when the statistics are adapted weights.
    stats: Option<(Vec<f32>, Vec<f32>)>,
    /// Keras' `invert`: map standardized values back (`mean + x·σ`).
    invert: bool,
    /// Statistics from `adapt` before the layer was built, set as its weights at build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<(Vec<f32>, Vec<f32>)>,
    /// Per feature, the mean and `max(√variance, ε)` of the last forward.
    #[serde(skip)]
    shift: Vec<f32>,
    #[serde(skip)]
    scale: Vec<f32>,
}

impl Default for Normalization {
    fn default() -> Self {
        Self::new()
    }
}

impl Normalization {
    /// Keras' `Normalization()`: `axis = -1`, statistics from `adapt`.
    pub fn new() -> Self {
        Self {
            core: LayerCore::default(),
            axis: Some(-1),
            stats: None,
            invert: false,
            pending: None,
            shift: Vec::new(),
            scale: Vec::new(),
        }
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }

    /// Keras' `axis=None`: one mean and one variance over every value.
    pub fn over_all_values(mut self) -> Self {
        self.axis = None;
        self
    }

    /// Keras' `axis`: `Some(-1)` (the default, the last axis), `None` (every value), or the
    /// last axis's positive index; `build` refuses any other.
    pub fn axis(mut self, axis: Option<i64>) -> Self {
        self.axis = axis;
        self
    }

    /// Keras' `mean=…, variance=…`: constant statistics (one value, or one per feature of
    /// the last axis), kept in the config; the layer then has no weights.
    pub fn with_stats(mut self, mean: Vec<f32>, variance: Vec<f32>) -> Self {
        self.stats = Some((mean, variance));
        self
    }

    /// Keras' `invert=True`: `y = mean + x · max(√variance, 1e-7)`.
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// Learns the mean and (biased) variance of `data`, rows of samples whose last axis
    /// is the row itself (flat features). See [`adapt_shaped`](Normalization::adapt_shaped).
    pub fn adapt(&mut self, data: &Matrix) -> Result<(), LayerError> {
        let shape = Shape::new([data.cols()]).map_err(|e| self.error(e.to_string()))?;
        self.adapt_shaped(data, &shape)
    }

    /// Learns the statistics of `data`, each row a sample of `sample` shape, exactly as
    /// Keras' `adapt` does on a float32 NumPy array: `np.mean` and `np.var` (biased) in
    /// float32, per position of the last axis over every other axis (or over everything
    /// with `axis = None`), summed in NumPy's order — row after row for each feature, or
    /// NumPy's pairwise sum when one statistic covers contiguous values (`axis = None`, or
    /// a single feature). Refused for a layer with constant statistics, for no rows, and
    /// for non-finite values. [`adapt_shaped_f64`](Normalization::adapt_shaped_f64) is
    /// Keras' answer for the same values held as float64.
    pub fn adapt_shaped(&mut self, data: &Matrix, sample: &Shape) -> Result<(), LayerError> {
        let channels = self.check_adapt(data, sample)?;
        let count = data.as_slice().len() / channels;
        let divide = |sum: f32| numpy_divide(sum, count);
        let sums = numpy_sums(data.as_slice(), channels);
        let mean: Vec<f32> = sums.iter().map(|&s| divide(s)).collect();
        // `np.var`: the deviations squared in float32, then summed as the mean was.
        let squares: Vec<f32> = data
            .as_slice()
            .iter()
            .enumerate()
            .map(|(k, &v)| (v - mean[k % channels]) * (v - mean[k % channels]))
            .collect();
        let squares = numpy_sums(&squares, channels);
        let variance = squares.iter().map(|&q| divide(q)).collect();
        self.set_adapted(mean, variance, channels)
    }

    /// [`adapt_shaped`](Normalization::adapt_shaped) as Keras computes it when the same
    /// values come as a float64 array: sums in f64, each statistic rounded once to f32.
    pub fn adapt_shaped_f64(&mut self, data: &Matrix, sample: &Shape) -> Result<(), LayerError> {
        let channels = self.check_adapt(data, sample)?;
        let count = (data.as_slice().len() / channels) as f64;
        let mut sums = vec![0.0f64; channels];
        for row in data.as_slice().chunks_exact(channels) {
            sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
        }
        let mean: Vec<f64> = sums.iter().map(|s| s / count).collect();
        let mut squares = vec![0.0f64; channels];
        for row in data.as_slice().chunks_exact(channels) {
            for ((q, &v), m) in squares.iter_mut().zip(row).zip(&mean) {
                *q += (v as f64 - m) * (v as f64 - m);
            }
        }
        let variance = squares.iter().map(|q| (q / count) as f32).collect();
        self.set_adapted(mean.iter().map(|&m| m as f32).collect(), variance, channels)
    }

    /// The features per statistic of `data` once checked (see `adapt_shaped`).
    fn check_adapt(&self, data: &Matrix, sample: &Shape) -> Result<usize, LayerError> {
        if self.stats.is_some() {
            return Err(self.error("has constant `mean` and `variance`; `adapt` would not change them".into()));
        }
        if data.rows() == 0 || data.cols() != sample.numel() {
            return Err(self.error(format!(
                "`adapt` needs at least one row of {} values (sample shape {sample}), got {} rows of {}",
                sample.numel(),
                data.rows(),
                data.cols()
            )));
        }
        if let Some(k) = data.as_slice().iter().position(|v| !v.is_finite()) {
            let (row, col) = (k / data.cols(), k % data.cols());
            return Err(self.error(format!("`adapt` data holds {} at row {row}, column {col}", data.as_slice()[k])));
        }
        Ok(self.channels(sample))
    }

    /// Keeps adapted statistics: in the weights once built, else until `build`. A second
    /// `adapt` replaces them, as in Keras.
    fn set_adapted(&mut self, mean: Vec<f32>, variance: Vec<f32>, channels: usize) -> Result<(), LayerError> {
        if self.core.params.is_empty() {
            self.pending = Some((mean, variance));
            return Ok(());
        }
        if self.core.params[0].len() != channels {
            return Err(self.error(format!(
                "was built for {} features but `adapt` data has {channels}",
                self.core.params[0].len()
            )));
        }
        self.core.params[0].value_mut().copy_from_slice(&mean);
        self.core.params[1].value_mut().copy_from_slice(&variance);
        Ok(())
    }

    /// The adapted mean and variance (the weights once built), if any.
    pub fn adapted(&self) -> Option<(&[f32], &[f32])> {
        match (&self.pending, self.core.params.as_slice()) {
            (_, [mean, variance, ..]) => Some((mean.value(), variance.value())),
            (Some((mean, variance)), _) => Some((mean, variance)),
            _ => None,
        }
    }

    /// Values per statistic: the last axis, or 1 for `axis = None`.
    fn channels(&self, sample: &Shape) -> usize {
        if self.axis.is_some() { sample.last() } else { 1 }
    }

    fn error(&self, message: String) -> LayerError {
        LayerError::Config { layer: self.core.name.clone(), message }
    }
}

/// `np.mean`'s last step for a float32 sum of `count` values: NumPy divides by the count
/// (an `intp`) in float64 and rounds the quotient once to float32 — the float32 division
/// itself while the count is exact in float32 (up to 2²⁴), not above.
fn numpy_divide(sum: f32, count: usize) -> f32 {
    (f64::from(sum) / count as f64) as f32
}

/// Per feature, the float32 sum over rows in NumPy's order for a reduction that keeps
/// the last axis: row after row when there are several features; NumPy's pairwise sum
/// when there is one (the reduced values are then contiguous).
fn numpy_sums(data: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return vec![pairwise_sum(data)];
    }
    let mut sums = vec![0.0f32; channels];
    for row in data.chunks_exact(channels) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
    sums
}

/// NumPy's pairwise summation of contiguous float32 values (`pairwise_sum` in
/// `numpy/_core/src/umath/loops_utils.h.src`): below 8 values a plain sum, up to 128 eight
/// running sums combined as `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))` then the rest, above
/// that the two halves (the first a multiple of 8) summed alike.
fn pairwise_sum(a: &[f32]) -> f32 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0f32, |s, &v| s + v);
    }
    if n <= BLOCK {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            r.iter_mut().zip(chunk).for_each(|(r, &v)| *r += v);
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[whole..].iter().for_each(|&v| res += v);
        return res;
    }
    let half = n / 2 - (n / 2) % 8;
    pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
}

#[typetag::serde]
impl Layer for Normalization {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        let weights = if self.stats.is_some() { 0 } else { 2 * self.channels(input) + 1 };
        Some((weights, input.clone()))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let rank = input.dims().len() as i64 + 1;
        if let Some(axis) = self.axis
            && axis != -1
            && axis != rank - 1
        {
            return Err(self.error(format!(
                "axis={axis} is not supported: kiln standardizes the last axis (axis=-1) or every value (axis=None)"
            )));
        }
        let channels = self.channels(input);
        let stat_shape = if self.axis.is_some() { vec![channels] } else { Vec::new() };
        self.core.params = match &self.stats {
            Some((mean, variance)) => {
                for (what, values) in [("mean", mean), ("variance", variance)] {
                    if values.len() != 1 && values.len() != channels {
                        return Err(self.error(format!(
                            "`{what}` holds {} values; it must hold 1 or one per feature ({channels})",
                            values.len()
                        )));
                    }
                }
                if let Some(bad) = mean.iter().chain(variance).find(|v| !v.is_finite()) {
                    return Err(self.error(format!("`mean` and `variance` must be finite, got {bad}")));
                }
                if let Some(bad) = variance.iter().find(|v| **v < 0.0) {
                    return Err(self.error(format!("`variance` must not be negative, got {bad}")));
                }
                if mean.len() != variance.len() {
                    return Err(self.error(format!(
                        "`mean` and `variance` must have the same shape, got {} and {} values",
                        mean.len(),
                        variance.len()
                    )));
                }
                Vec::new()
            }
            None => {
                let mean = ctx.param("mean", stat_shape.clone())?.non_trainable();
                let mut variance = ctx.param("variance", stat_shape)?.non_trainable();
                variance.value_mut().fill(1.0);
                let count = ctx.param("count", Vec::new())?.non_trainable().int64();
                let mut params = vec![mean, variance, count];
                if let Some((m, v)) = self.pending.take() {
                    if m.len() != channels {
                        return Err(self.error(format!("was adapted on {} features, built for {channels}", m.len())));
                    }
                    params[0].value_mut().copy_from_slice(&m);
                    params[1].value_mut().copy_from_slice(&v);
                }
                params
            }
        };
        self.shift = vec![0.0; channels];
        self.scale = vec![0.0; channels];
        self.core.output = Matrix::zeros(0, input.numel());
        Ok(input.clone())
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, _par: Parallelism) {
        let LayerInput::Dense(x) = input else {
            panic!("layer `{}` takes dense values (a Dense or Embedding reads sparse rows and ids)", self.core.name)
        };
        let (mean, variance): (&[f32], &[f32]) = match (&self.stats, self.core.params.as_slice()) {
            (Some((m, v)), _) => (m, v),
            (None, [m, v, ..]) => (m.value(), v.value()),
            (None, _) => panic!("layer `{}` is not built", self.core.name),
        };
        // One statistic broadcasts over every feature, as Keras broadcasts a scalar.
        let channels = self.shift.len();
        for k in 0..channels {
            let at = if mean.len() == 1 { 0 } else { k };
            self.shift[k] = mean[at];
            self.scale[k] = variance[at].sqrt().max(EPSILON);
        }
        let out = &mut self.core.output;
        out.resize(x.rows, x.cols);
        for (o, xs) in out.as_mut_slice().chunks_exact_mut(channels).zip(x.data.chunks_exact(channels)) {
            for k in 0..channels {
                o[k] = if self.invert {
                    self.shift[k] + xs[k] * self.scale[k]
                } else {
                    (xs[k] - self.shift[k]) / self.scale[k]
                };
            }
        }
    }

    fn backward(
        &mut self,
        _input: LayerInput<'_>,
        grad: &mut Matrix,
        _grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        _par: Parallelism,
    ) {
        // The statistics are constants: dx = dy / σ (TF's RealDiv gradient), or dy·σ.
        let Some(gi) = grad_input else { return };
        gi.resize(grad.rows(), grad.cols());
        let channels = self.scale.len();
        for (o, g) in gi.as_mut_slice().chunks_exact_mut(channels).zip(grad.as_slice().chunks_exact(channels)) {
            for k in 0..channels {
                o[k] = if self.invert { g[k] * self.scale[k] } else { g[k] / self.scale[k] };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GradCheck, check_gradients};

    fn shape(dims: &[usize]) -> Shape {
        Shape::new(dims.to_vec()).unwrap()
    }

    #[test]
    fn counts_past_two_to_the_24_divide_as_numpy_does() {
        // np.mean of 16,777,219 float32 values summing to 4 (NumPy 2.4.6): 2.3841854e-07,
        // where a float32 division by the (rounded) count gives 2.3841852e-07.
        let count = (1 << 24) + 3;
        assert_eq!(numpy_divide(4.0, count), 2.384_185_4e-7);
        assert_ne!(numpy_divide(4.0, count), 4.0 / count as f32);
        // Below 2²⁴ the count is exact in float32: the same as its division.
        assert_eq!(numpy_divide(1.0, 3), 1.0 / 3.0);
    }

    #[test]
    fn adapt_learns_keras_mean_and_biased_variance_per_feature_or_over_all() {
        let x = Matrix::from_rows(&[[1.0, 10.0], [2.0, 10.0], [6.0, 10.0]]).unwrap();
        let mut norm = Normalization::new();
        norm.adapt(&x).unwrap();
        assert_eq!(norm.adapted(), Some((&[3.0, 10.0][..], &[(4.0 + 1.0 + 9.0) / 3.0, 0.0][..])));
        let mut all = Normalization::new().over_all_values();
        all.adapt(&x).unwrap();
        let (m, v) = all.adapted().unwrap();
        assert_eq!(m, [6.5]);
        let want = [1.0f64, 10.0, 2.0, 10.0, 6.0, 10.0].iter().map(|x| (x - 6.5).powi(2)).sum::<f64>() / 6.0;
        assert_eq!(v, [want as f32]);
    }

    #[test]
    fn forward_divides_by_the_guarded_deviation() {
        let x = Matrix::from_rows(&[[1.0, 10.0], [3.0, 10.0]]).unwrap();
        let mut norm = Normalization::new().name("n");
        norm.adapt(&x).unwrap();
        norm.build(&shape(&[2]), &mut BuildContext::new(&mut kiln_tensor::Rng::seed_from_u64(0), 1 << 20)).unwrap();
        norm.forward(LayerInput::Dense(x.view()), true, Parallelism::Sequential);
        // Column 1 has variance 0: Keras divides by ε = 1e-7, so x − mean = 0 stays 0.
        assert_eq!(norm.output().as_slice(), &[-1.0, 0.0, 1.0, 0.0]);
        let names: Vec<(&str, Vec<usize>, bool)> =
            norm.params().iter().map(|p| (p.name(), p.shape().to_vec(), p.is_trainable())).collect();
        assert_eq!(names, [("mean", vec![2], false), ("variance", vec![2], false), ("count", vec![], false)]);
    }

    #[test]
    fn gradient_check_plain_and_inverted_with_constant_stats() {
        let opts = GradCheck { batch: 3, ..GradCheck::default() };
        let mut adapted = Normalization::new();
        adapted.adapt(&Matrix::from_rows(&[[1.0, 2.0, 3.0], [2.0, 5.0, -1.0]]).unwrap()).unwrap();
        check_gradients(&mut adapted, &shape(&[2, 3]), &opts).unwrap();
        let mut inverted = Normalization::new().with_stats(vec![2.0], vec![4.0]).invert(true);
        check_gradients(&mut inverted, &shape(&[4]), &opts).unwrap();
    }

    #[test]
    fn refuses_other_axes_mismatched_stats_and_bad_adapt_data() {
        let mut ctx_rng = kiln_tensor::Rng::seed_from_u64(0);
        let mut ctx = BuildContext::new(&mut ctx_rng, 1 << 20);
        let mut axis0 = Normalization::new().axis(Some(0));
        let err = axis0.build(&shape(&[3, 2]), &mut ctx).unwrap_err().to_string();
        assert!(err.contains("axis=0 is not supported"), "{err}");
        let mut bad = Normalization::new().with_stats(vec![1.0, 2.0], vec![1.0, 1.0]);
        let err = bad.build(&shape(&[3]), &mut ctx).unwrap_err().to_string();
        assert!(err.contains("`mean` holds 2 values; it must hold 1 or one per feature (3)"), "{err}");
        let nan = Matrix::from_rows(&[[1.0, f32::NAN]]).unwrap();
        let err = Normalization::new().adapt(&nan).unwrap_err().to_string();
        assert!(err.contains("holds NaN at row 0, column 1"), "{err}");
        let err = Normalization::new().with_stats(vec![0.0], vec![1.0]).adapt(&nan).unwrap_err().to_string();
        assert!(err.contains("constant `mean` and `variance`"), "{err}");
        let mut negative = Normalization::new().with_stats(vec![0.0], vec![-1.0]);
        let err = negative.build(&shape(&[3]), &mut ctx).unwrap_err().to_string();
        assert!(err.contains("`variance` must not be negative, got -1"), "{err}");
    }
}
