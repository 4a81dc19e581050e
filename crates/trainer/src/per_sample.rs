//! The per-sample (and, for element-wise metrics, per-value) values that Keras' mean
//! metrics (`MeanMetricWrapper`) average: accuracies, errors and crossentropies.

use kiln_tensor::kernels::argmax_skipping_nan as tf_argmax;

use crate::loss_kernels::{OneHot, prob_sparse_xent_row, prob_xent_row, sigmoid_xent, softmax_xent_row};
use crate::metrics::Metric;

/// Keras' `backend.epsilon()`, the clip of probabilities in the crossentropies.
const EPSILON: f32 = 1e-7;

/// One sample's value of a mean metric.
pub(crate) fn per_sample(metric: &Metric, p: &[f32], t: &[f32], k: usize, scratch: &mut Vec<f32>) -> f32 {
    // Keras' `greater(y_pred, threshold)`: a NaN prediction is 0, right for a label of 0
    // (a diverged model scores about the share of 0 labels, as in Keras).
    let binary = |threshold: f32| {
        p.iter().zip(t).filter(|(p, t)| f32::from(u8::from(**p > threshold)) == **t).count() as f32 / k as f32
    };
    let in_top = |target: usize, k: usize| {
        // TensorFlow's in_top_k: in when fewer than k predictions are strictly greater,
        // and never when the row holds a non-finite value.
        let pt = p[target];
        p.iter().all(|q| q.is_finite()) && p.iter().filter(|&&q| q > pt).count() < k
    };
    match *metric {
        Metric::BinaryAccuracy => binary(0.5),
        Metric::ThresholdedBinaryAccuracy { threshold } => binary(threshold),
        // TensorFlow's argmax skips NaN predictions (see `argmax_skipping_nan`).
        Metric::SparseCategoricalAccuracy | Metric::Accuracy => f32::from(u8::from(tf_argmax(p) as f32 == t[0])),
        Metric::CategoricalAccuracy => f32::from(u8::from(tf_argmax(p) == tf_argmax(t))),
        Metric::TopKCategoricalAccuracy { k } => f32::from(u8::from(in_top(tf_argmax(t), k))),
        Metric::SparseTopKCategoricalAccuracy { k } => {
            let c = t[0];
            f32::from(u8::from(c >= 0.0 && (c as usize) < p.len() && in_top(c as usize, k)))
        }
        Metric::ExactAccuracy => p.iter().zip(t).filter(|(p, t)| p == t).count() as f32 / k as f32,
        Metric::MeanAbsoluteError => p.iter().zip(t).map(|(a, b)| (a - b).abs()).sum::<f32>() / k as f32,
        Metric::MeanSquaredError => p.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / k as f32,
        Metric::BinaryCrossentropy { .. }
        | Metric::CategoricalCrossentropy { .. }
        | Metric::SparseCategoricalCrossentropy { .. } => crossentropy(metric, p, t, scratch),
        _ => unreachable!("{metric:?} is not a mean metric"),
    }
}

/// One value's contribution to an element-wise metric (`1` when it counts as right), for
/// weights given per value: Keras weighs each before taking a row's mean.
pub(crate) fn per_value(metric: &Metric, p: f32, t: f32) -> f32 {
    let binary = |threshold: f32| f32::from(u8::from(f32::from(u8::from(p > threshold)) == t));
    match *metric {
        Metric::ExactAccuracy => f32::from(u8::from(p == t)),
        Metric::BinaryAccuracy => binary(0.5),
        Metric::ThresholdedBinaryAccuracy { threshold } => binary(threshold),
        // Row-reducing metrics never get per-value weights (`takes_value_weights`).
        _ => f32::NAN,
    }
}

/// A row's crossentropy as Keras' metric functions compute it (`losses.binary_crossentropy`
/// and co.), through the loss's own row kernels: labels smoothed first, then the binary
/// one averaged over the row's outputs. A class id outside the row gives NaN (labels are
/// checked before, as the loss's are).
fn crossentropy(metric: &Metric, p: &[f32], t: &[f32], scratch: &mut Vec<f32>) -> f32 {
    let k = p.len();
    // `g`: the row kernels' gradient output, unused here; `y`: the smoothed labels.
    scratch.clear();
    scratch.resize(2 * k, 0.0);
    let (g, y) = scratch.split_at_mut(k);
    match *metric {
        Metric::BinaryCrossentropy { from_logits, label_smoothing: s } => {
            for (yj, &tj) in y.iter_mut().zip(t) {
                *yj = if s == 0.0 { tj } else { tj * (1.0 - s) + 0.5 * s };
            }
            let sum: f32 = if from_logits {
                p.iter().zip(y.iter()).map(|(&x, &yj)| sigmoid_xent(x, yj, &mut g[0], 0.0)).sum()
            } else {
                // The loss's expression (loss.rs, `Kind::Binary` on probabilities).
                p.iter()
                    .zip(y.iter())
                    .map(|(&pj, &yj)| {
                        let pc = pj.clamp(EPSILON, 1.0 - EPSILON);
                        -(yj * pc.ln() + (1.0 - yj) * (1.0 - pc).ln())
                    })
                    .sum()
            };
            sum / k as f32
        }
        Metric::CategoricalCrossentropy { from_logits, label_smoothing: s } => {
            for (yj, &tj) in y.iter_mut().zip(t) {
                *yj = if s == 0.0 { tj } else { tj * (1.0 - s) + s / k as f32 };
            }
            if from_logits {
                softmax_xent_row(p, OneHot::Dense(y), g, 0.0)
            } else {
                prob_xent_row(p, OneHot::Dense(y), g, 0.0)
            }
        }
        Metric::SparseCategoricalCrossentropy { from_logits } => {
            let c = t[0];
            if !(c.fract() == 0.0 && c >= 0.0 && (c as usize) < k) {
                return f32::NAN;
            }
            let label = c as usize;
            if from_logits {
                softmax_xent_row(p, OneHot::Index(label), g, 0.0)
            } else {
                prob_sparse_xent_row(p, label, g, 0.0)
            }
        }
        _ => f32::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keras 3.15.1 (TensorFlow 2.21) on non-finite predictions: each metric's
    /// `update_state` of one sample, then `result()`.
    #[test]
    fn non_finite_predictions_score_as_tensorflow() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        let mut scratch = Vec::new();
        let mut one = |metric: Metric, p: &[f32], t: &[f32]| per_sample(&metric, p, t, p.len(), &mut scratch);
        assert_eq!(one(Metric::SparseCategoricalAccuracy, &[nan, 0.5, 0.2], &[1.0]), 1.0);
        assert_eq!(one(Metric::CategoricalAccuracy, &[nan, 0.5, 0.2], &[0.0, 1.0, 0.0]), 1.0);
        assert_eq!(one(Metric::CategoricalAccuracy, &[nan, nan, nan], &[1.0, 0.0, 0.0]), 1.0);
        // BinaryAccuracy on labels [0, 1], both predictions NaN: 0.5.
        assert_eq!(one(Metric::BinaryAccuracy, &[nan], &[0.0]) + one(Metric::BinaryAccuracy, &[nan], &[1.0]), 1.0);
        for (k, target, p) in [
            (1, 1.0, [nan, 0.5, 0.2]),
            (1, 0.0, [inf, 0.5, 0.2]),
            (2, 1.0, [0.1, 0.5, nan]),
            (1, 1.0, [-inf, 0.5, 0.2]),
        ] {
            assert_eq!(one(Metric::SparseTopKCategoricalAccuracy { k }, &p, &[target]), 0.0, "{k} {target} {p:?}");
        }
        assert_eq!(one(Metric::TopKCategoricalAccuracy { k: 1 }, &[nan, 0.5, 0.2], &[0.0, 1.0, 0.0]), 0.0);
        assert_eq!(one(Metric::SparseTopKCategoricalAccuracy { k: 1 }, &[0.1, 0.5, 0.2], &[1.0]), 1.0);
    }
}
