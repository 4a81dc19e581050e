//! Keras' `AUC.result()`: the area under the ROC or PR curve from per-threshold counts.

use crate::metrics::{AucCurve, AucSummation};

/// `a / b`, or 0 when `b` is 0 (Keras' `divide_no_nan`).
pub(crate) fn divide_no_nan(a: f32, b: f32) -> f32 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Keras' `AUC.result()` from the per-threshold counts.
pub(crate) fn auc(tp: &[f32], fp: &[f32], tn: &[f32], fn_: &[f32], curve: AucCurve, summation: AucSummation) -> f32 {
    let t = tp.len();
    if curve == AucCurve::Pr && summation == AucSummation::Interpolation {
        // Davis & Goadrich: interpolate precision between thresholds.
        let mut sum = 0.0f32;
        for i in 0..t - 1 {
            let dtp = tp[i] - tp[i + 1];
            let (p0, p1) = (tp[i] + fp[i], tp[i + 1] + fp[i + 1]);
            let dp = p0 - p1;
            let slope = divide_no_nan(dtp, dp.max(0.0));
            let intercept = tp[i + 1] - slope * p1;
            let ratio = if p0 > 0.0 && p1 > 0.0 { divide_no_nan(p0, p1.max(0.0)) } else { 1.0 };
            sum += divide_no_nan(slope * (dtp + intercept * ratio.ln()), (tp[i + 1] + fn_[i + 1]).max(0.0));
        }
        return sum;
    }
    let recall: Vec<f32> = (0..t).map(|i| divide_no_nan(tp[i], tp[i] + fn_[i])).collect();
    let (x, y): (Vec<f32>, Vec<f32>) = match curve {
        AucCurve::Roc => ((0..t).map(|i| divide_no_nan(fp[i], fp[i] + tn[i])).collect(), recall),
        AucCurve::Pr => (recall, (0..t).map(|i| divide_no_nan(tp[i], tp[i] + fp[i])).collect()),
    };
    (0..t - 1)
        .map(|i| {
            let height = match summation {
                AucSummation::Interpolation => (y[i] + y[i + 1]) / 2.0,
                AucSummation::Minoring => y[i].min(y[i + 1]),
                AucSummation::Majoring => y[i].max(y[i + 1]),
            };
            (x[i] - x[i + 1]) * height
        })
        .sum()
}
