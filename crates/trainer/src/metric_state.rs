//! The running state of each metric over an epoch: a weighted mean, or Keras' confusion
//! counts (summed in float32 batch by batch, as Keras' variables are).

use kiln_layers::Layer;
use kiln_tensor::Matrix;

use crate::auc::{auc, divide_no_nan};
use crate::mean::Mean;
use crate::metrics::{F1Average, Metric};
use crate::per_sample::{per_sample, per_value};
use crate::thresholds::Grid;

/// Keras' `backend.epsilon()`.
const EPSILON: f32 = 1e-7;

/// Keras' `metrics_utils.NEG_INF`: what `top_k` writes over the predictions it drops.
const NEG_INF: f32 = -1e10;

/// What a metric accumulates.
#[derive(Debug, Clone)]
enum Accum {
    /// A weighted mean of per-sample values.
    Mean(Mean),
    /// Precision's and Recall's true/false positives and false negatives at each threshold.
    Counts { grid: Grid, tp: Vec<f32>, fp: Vec<f32>, fn_: Vec<f32> },
    /// AUC's counts at each of its thresholds.
    Thresholds { grid: Grid, tp: Vec<f32>, fp: Vec<f32>, tn: Vec<f32>, fn_: Vec<f32> },
    /// F1's per-class counts (one entry for `micro`).
    PerClass { tp: Vec<f32>, fp: Vec<f32>, fn_: Vec<f32>, support: Vec<f32> },
}

/// Sample weights for one batch: one per row (as `fit` gives them), or one per value of
/// `y_true` (row-major, as a Keras `sample_weight` of `y_true`'s shape).
#[derive(Debug, Clone, Copy)]
pub(crate) enum MetricWeight<'a> {
    /// One weight per row.
    Rows(&'a [f32]),
    /// One weight per value, row-major.
    Values(&'a [f32]),
}

impl MetricWeight<'_> {
    /// The weight of value `j` of row `i` in rows of `k` values.
    fn at(self, i: usize, j: usize, k: usize) -> f32 {
        match self {
            Self::Rows(w) => w[i],
            Self::Values(w) => w[i * k + j],
        }
    }
}

/// A running metric over an epoch.
#[derive(Debug, Clone)]
pub(crate) struct MetricState {
    pub name: String,
    pub metric: Metric,
    /// Whether the rows' weights count (Keras' `weighted_metrics`).
    weighted: bool,
    accum: Accum,
    /// Per-batch work space (a row, bucket or class counts), kept so that batches after
    /// the first allocate nothing.
    scratch: Vec<f32>,
    /// Column order for `top_k`.
    order: Vec<usize>,
}

impl MetricState {
    /// A fresh state for `metric` (already resolved) on outputs of `out_w` columns.
    pub fn new(name: String, metric: Metric, weighted: bool, out_w: usize) -> Self {
        let accum = match &metric {
            Metric::Precision { thresholds, top_k, .. } | Metric::Recall { thresholds, top_k, .. } => {
                let grid = Grid::confusion(thresholds.as_ref(), if top_k.is_some() { NEG_INF } else { 0.5 });
                let t = grid.len();
                Accum::Counts { grid, tp: vec![0.0; t], fp: vec![0.0; t], fn_: vec![0.0; t] }
            }
            Metric::Auc { num_thresholds, thresholds, .. } => {
                let grid = Grid::auc(*num_thresholds, thresholds.as_ref());
                let t = grid.len();
                Accum::Thresholds { grid, tp: vec![0.0; t], fp: vec![0.0; t], tn: vec![0.0; t], fn_: vec![0.0; t] }
            }
            Metric::F1Score { average, .. } | Metric::FBetaScore { average, .. } => {
                let k = if *average == F1Average::Micro { 1 } else { out_w };
                Accum::PerClass { tp: vec![0.0; k], fp: vec![0.0; k], fn_: vec![0.0; k], support: vec![0.0; k] }
            }
            _ => Accum::Mean(Mean::default()),
        };
        Self { name, metric, weighted, accum, scratch: Vec::new(), order: Vec::new() }
    }

    /// Adds one batch of the model's last layer: its output, or — for a crossentropy on a
    /// sigmoid or softmax output — the logits that activation attached, read as logits,
    /// as Keras' metric functions read them through the loss functions (`_get_logits` in
    /// backend/tensorflow/nn.py; see `Loss::of_layer`). `source` is the layer whose output
    /// `last` hands on unchanged (`last` itself when it computes).
    pub(crate) fn update_from_layer(
        &mut self,
        last: &dyn Layer,
        source: &dyn Layer,
        targets: &Matrix,
        weights: Option<&[f32]>,
    ) {
        let attached = source.logits().filter(|_| source.activation().attaches_logits());
        match (attached, self.metric.reading_logits()) {
            (Some(z), Some(on_logits)) => {
                let own = std::mem::replace(&mut self.metric, on_logits);
                self.update(z, targets, weights);
                self.metric = own;
            }
            _ => self.update(last.output(), targets, weights),
        }
    }

    /// Adds one batch of predictions, each row weighted by `weights` when given and the
    /// metric is a weighted one.
    pub fn update(&mut self, pred: &Matrix, targets: &Matrix, weights: Option<&[f32]>) {
        self.update_weighted(pred, targets, weights.map(MetricWeight::Rows));
    }

    /// [`update`](Self::update) with weights per row or per value; per-value weights go
    /// only to metrics that [take them](Metric::takes_value_weights) (checked by the caller).
    pub fn update_weighted(&mut self, pred: &Matrix, targets: &Matrix, weights: Option<MetricWeight<'_>>) {
        let weights = weights.filter(|_| self.weighted);
        let cols = pred.cols();
        // Value j of row i's weight (1 without weights: `x·1.0` is `x`, bit for bit).
        let w2 = |i: usize, j: usize| weights.map_or(1.0, |w| w.at(i, j, cols));
        let w = |i: usize| w2(i, 0);
        let (scratch, order) = (&mut self.scratch, &mut self.order);
        match (&mut self.accum, &self.metric) {
            (Accum::Mean(mean), metric) => {
                let (n, k) = pred.shape();
                // Unweighted, `v·1` is `v` and the count sums exact ones: the plain mean.
                let (mut sum, mut count) = (0.0f32, 0.0f32);
                if let Some(MetricWeight::Values(_)) = weights {
                    // Keras' `reduce_to_samplewise_values`: weigh each value, then take each
                    // row's mean of the weighted values and of the weights.
                    for i in 0..n {
                        let (p, t) = (pred.row(i), targets.row(i));
                        let (mut vs, mut ws) = (0.0f32, 0.0f32);
                        for j in 0..k {
                            vs += per_value(metric, p[j], t[j]) * w2(i, j);
                            ws += w2(i, j);
                        }
                        sum += vs / k as f32;
                        count += ws / k as f32;
                    }
                } else {
                    for i in 0..n {
                        let wi = w(i);
                        sum += per_sample(metric, pred.row(i), targets.row(i), k, scratch) * wi;
                        count += wi;
                    }
                }
                mean.add_sum(sum, count);
            }
            (Accum::Counts { grid, tp, fp, fn_ }, Metric::Precision { top_k, class_id, .. })
            | (Accum::Counts { grid, tp, fp, fn_ }, Metric::Recall { top_k, class_id, .. }) => {
                // Each threshold's counts summed over the batch, then added (one threshold:
                // the sums kiln always made). Row copy, then the batch's tp, fp, fn.
                let (n_t, width) = (tp.len(), pred.cols());
                scratch.clear();
                scratch.resize(width + 3 * n_t, 0.0);
                let (row, rest) = scratch.split_at_mut(width);
                let (btp, rest) = rest.split_at_mut(n_t);
                let (bfp, bfn) = rest.split_at_mut(n_t);
                for i in 0..pred.rows() {
                    row.copy_from_slice(pred.row(i));
                    if let Some(k) = *top_k {
                        keep_top_k(row, k, order);
                    }
                    let t = targets.row(i);
                    let cols: &mut dyn Iterator<Item = usize> = match *class_id {
                        Some(c) => &mut std::iter::once(c),
                        None => &mut (0..row.len()),
                    };
                    for j in cols {
                        let label = t.get(j).copied().unwrap_or(0.0) != 0.0;
                        for th in 0..n_t {
                            match (label, grid.positive(row[j], th)) {
                                (true, true) => btp[th] += w2(i, j),
                                (false, true) => bfp[th] += w2(i, j),
                                (true, false) => bfn[th] += w2(i, j),
                                (false, false) => {}
                            }
                        }
                    }
                }
                for th in 0..n_t {
                    tp[th] += btp[th];
                    fp[th] += bfp[th];
                    fn_[th] += bfn[th];
                }
            }
            (Accum::Thresholds { grid, tp, fp, tn, fn_ }, Metric::Auc { from_logits, .. }) => {
                // Each value's weight goes to the bucket of the highest threshold it is
                // positive at (Keras' evenly-spaced path: ceil(p·(T−1)) − 1, ≥ 0; explicit
                // thresholds: the last t < p); counts at threshold i = the labels in buckets
                // ≥ i, as Keras' per-threshold sums in exact arithmetic.
                let t = tp.len();
                scratch.clear();
                scratch.resize(2 * t, 0.0);
                let (tb, fb) = scratch.split_at_mut(t);
                let (mut total_true, mut total_false) = (0.0f32, 0.0f32);
                let k = pred.cols();
                for (j, (&p, &y)) in pred.as_slice().iter().zip(targets.as_slice()).enumerate() {
                    let p = if *from_logits { 1.0 / (1.0 + (-p).exp()) } else { p };
                    let wi = w2(j / k, j % k);
                    let (truth, falsehood) = if y != 0.0 { (wi, 0.0) } else { (0.0, wi) };
                    if let Some(bucket) = grid.top(p) {
                        tb[bucket] += truth;
                        fb[bucket] += falsehood;
                    }
                    total_true += truth;
                    total_false += falsehood;
                }
                let (mut ctp, mut cfp) = (0.0f32, 0.0f32);
                for i in (0..t).rev() {
                    ctp += tb[i];
                    cfp += fb[i];
                    tp[i] += ctp;
                    fp[i] += cfp;
                    tn[i] += total_false - cfp;
                    fn_[i] += total_true - ctp;
                }
            }
            (Accum::PerClass { tp, fp, fn_, support }, metric) if metric.fbeta().is_some() => {
                let (_, average, threshold) = metric.fbeta().unwrap_or((1.0, F1Average::Micro, None));
                let k = pred.cols();
                let micro = average == F1Average::Micro;
                let c_len = tp.len();
                scratch.clear();
                scratch.resize(4 * c_len, 0.0);
                let (btp, rest) = scratch.split_at_mut(c_len);
                let (bfp, rest) = rest.split_at_mut(c_len);
                let (bfn, bsup) = rest.split_at_mut(c_len);
                for i in 0..pred.rows() {
                    let (p, y) = (pred.row(i), targets.row(i));
                    let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    for j in 0..k {
                        let positive = match threshold {
                            Some(th) => p[j] > th,
                            None => p[j] >= max && p[j].abs() > 1e-9,
                        };
                        let (yp, yt, wi) = (f32::from(u8::from(positive)), y[j], w2(i, j));
                        let c = if micro { 0 } else { j };
                        btp[c] += yp * yt * wi;
                        bfp[c] += yp * (1.0 - yt) * wi;
                        bfn[c] += (1.0 - yp) * yt * wi;
                        bsup[c] += yt * wi;
                    }
                }
                for c in 0..tp.len() {
                    tp[c] += btp[c];
                    fp[c] += bfp[c];
                    fn_[c] += bfn[c];
                    support[c] += bsup[c];
                }
            }
            (accum, metric) => unreachable!("metric {metric:?} with state {accum:?}"),
        }
    }

    /// The metric's value over everything added so far.
    pub fn result(&self) -> f32 {
        match (&self.accum, &self.metric) {
            (Accum::Mean(m), _) => m.result(),
            (Accum::Counts { tp, fp, fn_, .. }, metric) => match (&tp[..], &fp[..], &fn_[..], metric) {
                ([tp], [fp], _, Metric::Precision { .. }) => divide_no_nan(*tp, tp + fp),
                ([tp], _, [fn_], _) => divide_no_nan(*tp, tp + fn_),
                // One number cannot hold several thresholds' values (`compile` refuses it).
                _ => f32::NAN,
            },
            (Accum::Thresholds { tp, fp, tn, fn_, .. }, Metric::Auc { curve, summation_method, .. }) => {
                auc(tp, fp, tn, fn_, *curve, *summation_method)
            }
            (Accum::PerClass { support, .. }, metric) => {
                let average = metric.fbeta().map_or(F1Average::PerClass, |(_, average, _)| average);
                let f = self.fbeta_per_class();
                match average {
                    F1Average::Weighted => {
                        let total: f32 = support.iter().sum::<f32>() + EPSILON;
                        f.iter().zip(support).map(|(f, s)| f * (s / total)).sum()
                    }
                    F1Average::Micro | F1Average::Macro => f.iter().sum::<f32>() / f.len() as f32,
                    // One number cannot hold them (`compile` refuses it).
                    F1Average::PerClass => f32::NAN,
                }
            }
            (accum, metric) => unreachable!("metric {metric:?} with state {accum:?}"),
        }
    }

    /// Precision's (`tp / (tp + fp)`) or Recall's (`tp / (tp + fn)`) value at each of its
    /// thresholds, in the order given (Keras' `result()` vector); empty for other metrics.
    pub fn per_threshold(&self) -> Vec<f32> {
        match (&self.accum, &self.metric) {
            (Accum::Counts { tp, fp, .. }, Metric::Precision { .. }) => {
                tp.iter().zip(fp).map(|(&tp, &fp)| divide_no_nan(tp, tp + fp)).collect()
            }
            (Accum::Counts { tp, fn_, .. }, _) => {
                tp.iter().zip(fn_).map(|(&tp, &fn_)| divide_no_nan(tp, tp + fn_)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Keras' `FBetaScore.result()` before averaging: per class (one entry for `micro`)
    /// `(1+β²)·p·r / (β²·p + r + ε)`, `p = tp/(tp+fp+ε)`, `r = tp/(tp+fn+ε)`; empty for a
    /// metric that is not an F-score.
    pub fn fbeta_per_class(&self) -> Vec<f32> {
        let (Accum::PerClass { tp, fp, fn_, .. }, Some((beta, _, _))) = (&self.accum, self.metric.fbeta()) else {
            return Vec::new();
        };
        // β² in float32 as Keras multiplies it into float32 tensors; for β = 1 this is
        // `(p·r)/((p + r) + ε)·2` exactly (1·p is p), F1's historical expression.
        let b2 = beta * beta;
        (0..tp.len())
            .map(|c| {
                let precision = tp[c] / (tp[c] + fp[c] + EPSILON);
                let recall = tp[c] / (tp[c] + fn_[c] + EPSILON);
                let mean = (precision * recall) / ((b2 * precision + recall) + EPSILON);
                mean * (1.0 + b2)
            })
            .collect()
    }
}

/// Keras' `_filter_top_k`: the row's `k` highest values stay, the others become NEG_INF.
fn keep_top_k(row: &mut [f32], k: usize, idx: &mut Vec<usize>) {
    if k >= row.len() {
        return;
    }
    idx.clear();
    idx.extend(0..row.len());
    // Highest first; ties keep the lower index, as `top_k` does.
    idx.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    for &j in &idx[k..] {
        row[j] = NEG_INF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: &[&[f32]]) -> Matrix {
        Matrix::from_rows(rows).unwrap()
    }

    #[test]
    fn precision_and_recall_count_over_batches() {
        let mut p = MetricState::new("precision".into(), Metric::precision(), false, 1);
        let mut r = MetricState::new("recall".into(), Metric::recall(), false, 1);
        for s in [&mut p, &mut r] {
            s.update(&m(&[&[0.9], &[0.8], &[0.2]]), &m(&[&[1.0], &[0.0], &[1.0]]), None);
            s.update(&m(&[&[0.7]]), &m(&[&[1.0]]), None);
        }
        // tp 2, fp 1, fn 1.
        assert_eq!((p.result(), r.result()), (2.0 / 3.0, 2.0 / 3.0));
        let mut weighted = MetricState::new("precision".into(), Metric::precision(), true, 1);
        weighted.update(&m(&[&[0.9], &[0.8]]), &m(&[&[1.0], &[0.0]]), Some(&[3.0, 1.0]));
        assert_eq!(weighted.result(), 0.75);
    }

    #[test]
    fn auc_of_a_perfect_and_a_random_ranking() {
        let mut a = MetricState::new("auc".into(), Metric::auc(), false, 1);
        a.update(&m(&[&[0.9], &[0.8], &[0.3], &[0.1]]), &m(&[&[1.0], &[1.0], &[0.0], &[0.0]]), None);
        assert!((a.result() - 1.0).abs() < 1e-6, "{}", a.result());
        let mut b = MetricState::new("auc".into(), Metric::auc(), false, 1);
        b.update(&m(&[&[0.5], &[0.5]]), &m(&[&[1.0], &[0.0]]), None);
        assert!((b.result() - 0.5).abs() < 1e-6, "{}", b.result());
        // Keras 3.15.1: AUC() of labels [1, 0, 1] at [NaN, 0, 0.8] is 0.5 (the NaN is
        // positive at no threshold), not the 0.75 of a NaN read as 0; Recall 0.5.
        let (y, p) = (m(&[&[1.0], &[0.0], &[1.0]]), m(&[&[f32::NAN], &[0.0], &[0.8]]));
        let mut c = MetricState::new("auc".into(), Metric::auc(), false, 1);
        c.update(&p, &y, None);
        assert!((c.result() - 0.5).abs() < 1e-6, "{}", c.result());
        let mut r = MetricState::new("recall".into(), Metric::recall(), false, 1);
        r.update(&p, &y, None);
        assert_eq!(r.result(), 0.5);
    }

    #[test]
    fn auc_with_explicit_thresholds_follows_keras_two_paths() {
        use crate::metrics::{AucCurve, AucSummation};
        let auc = |thresholds: Option<Vec<f32>>, num_thresholds, curve, summation_method| Metric::Auc {
            num_thresholds,
            curve,
            summation_method,
            from_logits: false,
            thresholds: thresholds.map(Into::into),
        };
        let (y, p) = (m(&[&[0.0], &[0.0], &[1.0], &[1.0]]), m(&[&[0.0], &[0.5], &[0.3], &[0.9]]));
        let run = |metric: Metric| {
            let mut s = MetricState::new("auc".into(), metric, false, 1);
            s.update(&p, &y, None);
            s.result()
        };
        let (roc, pr, interp, major) =
            (AucCurve::Roc, AucCurve::Pr, AucSummation::Interpolation, AucSummation::Majoring);
        // [0.5] is evenly distributed with its ends: Keras buckets it as num_thresholds = 3.
        assert_eq!(run(auc(Some(vec![0.5]), 2, roc, interp)), run(auc(None, 3, roc, interp)));
        // [0.3, 0.5] is compared one by one at [−ε, 0.3, 0.5, 1+ε] (p > t):
        // tp [2, 1, 1, 0], fp [2, 1, 0, 0], fn [0, 1, 1, 2], tn [0, 1, 2, 2];
        // ROC: recall [1, .5, .5, 0], fpr [1, .5, 0, 0] → .5·.75 + .5·.5 = 0.625.
        assert_eq!(run(auc(Some(vec![0.5, 0.3]), 200, roc, interp)), 0.625);
        // PR majoring: precision [.5, .5, 1, 0] over recall [1, .5, .5, 0] → .5·.5 + .5·1 = 0.75.
        assert_eq!(run(auc(Some(vec![0.3, 0.5]), 4, pr, major)), 0.75);
    }

    #[test]
    fn evenly_spaced_precision_thresholds_take_keras_bucketed_path() {
        // Keras' `is_evenly_distributed_thresholds([0, 0.5, 1])`: predictions are clipped to
        // [0, 1] and bucketed, so 1.5 is not positive at threshold 1 (1.5 > 1 would be).
        let metric = Metric::Recall { thresholds: Some(vec![0.0, 0.5, 1.0].into()), top_k: None, class_id: None };
        let mut s = MetricState::new("recall".into(), metric, false, 1);
        s.update(&m(&[&[0.0], &[0.5], &[1.5], &[0.7]]), &m(&[&[1.0], &[1.0], &[1.0], &[1.0]]), None);
        assert_eq!(s.per_threshold(), vec![0.75, 0.5, 0.0]);
        assert!(s.result().is_nan());
        let metric = Metric::Recall { thresholds: Some(vec![0.0, 1.0].into()), top_k: None, class_id: None };
        let mut s = MetricState::new("recall".into(), metric, false, 1);
        s.update(&m(&[&[0.0], &[1.5]]), &m(&[&[1.0], &[1.0]]), None);
        assert_eq!(s.per_threshold(), vec![0.5, 0.5]);
    }

    #[test]
    fn top_k_counts_ties_in_and_f1_averages() {
        let t = MetricState::new("t".into(), Metric::SparseTopKCategoricalAccuracy { k: 1 }, false, 3);
        let mut t = t;
        t.update(&m(&[&[0.2, 0.4, 0.4], &[0.5, 0.3, 0.2]]), &m(&[&[2.0], &[1.0]]), None);
        assert_eq!(t.result(), 0.5);
        let mut f =
            MetricState::new("f1".into(), Metric::F1Score { average: F1Average::Macro, threshold: None }, false, 2);
        f.update(&m(&[&[0.9, 0.1], &[0.2, 0.8]]), &m(&[&[1.0, 0.0], &[0.0, 1.0]]), None);
        assert!((f.result() - 1.0).abs() < 1e-5, "{}", f.result());
    }
}
