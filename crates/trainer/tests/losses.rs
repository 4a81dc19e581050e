//! Finite-difference checks of every loss on both paths (from logits, from probabilities).

use kiln_layers::{Activation, GradOf};
use kiln_tensor::{Matrix, kernels};
use kiln_trainer::{Loss, Reduction};

fn m(rows: &[&[f32]]) -> Matrix {
    Matrix::from_rows(rows).unwrap()
}

/// The loss as a function of what the gradient is taken against (logits or outputs).
fn loss_of(loss: Loss, act: Activation, input: &Matrix, y: &Matrix, from_logits: bool, w: Option<&[f32]>) -> f32 {
    let mut out = input.clone();
    let logits = if from_logits {
        act.apply(out.as_mut_slice(), input.cols());
        Some(input)
    } else {
        None
    };
    let mut g = Matrix::default();
    loss.forward_backward(&out, logits, if from_logits { act } else { Activation::Linear }, y, w, &mut g).0
}

fn check(loss: Loss, act: Activation, input: Matrix, y: Matrix, from_logits: bool) {
    check_weighted(loss, act, input, y, from_logits, None);
}

/// `check` with per-row weights `w`.
fn check_weighted(loss: Loss, act: Activation, input: Matrix, y: Matrix, from_logits: bool, w: Option<&[f32]>) {
    let mut out = input.clone();
    let logits = from_logits.then(|| {
        act.apply(out.as_mut_slice(), input.cols());
        &input
    });
    let mut grad = Matrix::default();
    let used = if from_logits { act } else { Activation::Linear };
    let (_, of) = loss.forward_backward(&out, logits, used, &y, w, &mut grad);
    assert_eq!(of, if from_logits { GradOf::Logits } else { GradOf::Output }, "{loss:?}");
    let h = 1e-3f32;
    for i in 0..input.as_slice().len() {
        let at = |d: f32| {
            let mut z = input.clone();
            z.as_mut_slice()[i] += d;
            loss_of(loss, act, &z, &y, from_logits, w) as f64
        };
        let fd = (at(h) - at(-h)) / (2.0 * h as f64);
        let got = grad.as_slice()[i] as f64;
        assert!((fd - got).abs() < 2e-3 + 1e-2 * fd.abs(), "{loss:?} logits={from_logits} [{i}]: fd {fd} vs {got}");
    }
}

#[test]
fn sparse_categorical_both_paths() {
    let z = m(&[&[0.5, -1.0, 2.0], &[0.1, 0.2, -0.3]]);
    let y = m(&[&[2.0], &[0.0]]);
    check(Loss::sparse_categorical_crossentropy(), Activation::Softmax, z, y.clone(), true);
    let p = m(&[&[0.2, 0.3, 0.5], &[0.6, 0.1, 0.3]]);
    check(Loss::sparse_categorical_crossentropy(), Activation::Linear, p, y, false);
}

#[test]
fn categorical_both_paths() {
    let z = m(&[&[0.5, -1.0, 2.0], &[0.1, 0.2, -0.3]]);
    let y = m(&[&[0.0, 0.0, 1.0], &[0.2, 0.8, 0.0]]);
    check(Loss::categorical_crossentropy(), Activation::Softmax, z, y.clone(), true);
    let p = m(&[&[0.2, 0.3, 0.5], &[0.6, 0.1, 0.3]]);
    check(Loss::categorical_crossentropy(), Activation::Linear, p, y, false);
}

#[test]
fn binary_both_paths() {
    let z = m(&[&[0.5], &[-1.5], &[3.0], &[0.0]]);
    let y = m(&[&[1.0], &[0.0], &[0.0], &[1.0]]);
    check(Loss::binary_crossentropy(), Activation::Sigmoid, z, y.clone(), true);
    let p = m(&[&[0.7], &[0.2], &[0.9], &[0.4]]);
    check(Loss::binary_crossentropy(), Activation::Linear, p, y, false);
}

#[test]
fn mean_squared_error() {
    let p = m(&[&[0.5, -1.0], &[2.0, 0.0]]);
    let y = m(&[&[1.0, 0.0], &[0.0, 0.5]]);
    check(Loss::mean_squared_error(), Activation::Linear, p.clone(), y.clone(), false);
    let mut g = Matrix::default();
    let (v, _) = Loss::mean_squared_error().forward_backward(&p, None, Activation::Linear, &y, None, &mut g);
    // ((0.25 + 1) / 2 + (4 + 0.25) / 2) / 2
    assert!((v - 1.375).abs() < 1e-6);
}

#[test]
fn losses_are_means_over_samples() {
    // Two identical rows give the same loss as one: sum_over_batch_size.
    let z1 = m(&[&[0.3, 0.1]]);
    let z2 = m(&[&[0.3, 0.1], &[0.3, 0.1]]);
    let (mut p1, mut p2) = (z1.clone(), z2.clone());
    kernels::softmax_rows(p1.as_mut_slice(), 2);
    kernels::softmax_rows(p2.as_mut_slice(), 2);
    let mut g = Matrix::default();
    let l = Loss::sparse_categorical_crossentropy();
    let (a, _) = l.forward_backward(&p1, Some(&z1), Activation::Softmax, &m(&[&[1.0]]), None, &mut g);
    let (b, _) = l.forward_backward(&p2, Some(&z2), Activation::Softmax, &m(&[&[1.0], &[1.0]]), None, &mut g);
    assert_eq!(a, b);
    // label 1: ln(e^0.3 + e^0.1) - 0.1 = ln(1 + e^0.2)
    assert!((a - (1.0 + 0.2f32.exp()).ln()).abs() < 1e-6);
}

/// Every reduction that `fit` can train with, weighted and not, on every loss and path.
#[test]
fn reductions_both_paths() {
    let z = m(&[&[0.5, -1.0, 2.0], &[0.1, 0.2, -0.3], &[1.0, 0.0, -1.0]]);
    let p = m(&[&[0.2, 0.3, 0.5], &[0.6, 0.1, 0.3], &[0.25, 0.25, 0.5]]);
    let sparse = m(&[&[2.0], &[0.0], &[1.0]]);
    let dense = m(&[&[0.0, 0.0, 1.0], &[0.2, 0.8, 0.0], &[0.0, 1.0, 0.0]]);
    let binary = m(&[&[1.0, 0.0, 1.0], &[0.0, 0.5, 0.0], &[1.0, 1.0, 0.0]]);
    let w = [0.5f32, 2.0, 0.0];
    for r in [Reduction::Sum, Reduction::MeanWithSampleWeight, Reduction::SumOverBatchSize] {
        for weights in [None, Some(&w[..])] {
            let scce = Loss::sparse_categorical_crossentropy().with_reduction(r);
            check_weighted(scce, Activation::Softmax, z.clone(), sparse.clone(), true, weights);
            check_weighted(scce, Activation::Linear, p.clone(), sparse.clone(), false, weights);
            let cce = Loss::categorical_crossentropy().with_reduction(r);
            check_weighted(cce, Activation::Softmax, z.clone(), dense.clone(), true, weights);
            check_weighted(cce, Activation::Linear, p.clone(), dense.clone(), false, weights);
            let bce = Loss::binary_crossentropy().with_reduction(r);
            check_weighted(bce, Activation::Sigmoid, z.clone(), binary.clone(), true, weights);
            check_weighted(bce, Activation::Linear, p.clone(), binary.clone(), false, weights);
            let mse = Loss::mean_squared_error().with_reduction(r);
            check_weighted(mse, Activation::Linear, z.clone(), dense.clone(), false, weights);
            let mae = Loss::mean_absolute_error().with_reduction(r);
            check_weighted(mae, Activation::Linear, z.clone(), dense.clone(), false, weights);
        }
    }
}

#[test]
fn label_smoothing_both_paths() {
    let z = m(&[&[0.5, -1.0, 2.0], &[0.1, 0.2, -0.3]]);
    let p = m(&[&[0.2, 0.3, 0.5], &[0.6, 0.1, 0.3]]);
    let dense = m(&[&[0.0, 0.0, 1.0], &[0.2, 0.8, 0.0]]);
    let binary = m(&[&[1.0, 0.0, 1.0], &[0.0, 1.0, 0.0]]);
    for ls in [0.1, 1.0] {
        let cce = Loss::categorical_crossentropy().with_label_smoothing(ls).unwrap();
        check(cce, Activation::Softmax, z.clone(), dense.clone(), true);
        check(cce, Activation::Linear, p.clone(), dense.clone(), false);
        let bce = Loss::binary_crossentropy().with_label_smoothing(ls).unwrap();
        check(bce, Activation::Sigmoid, z.clone(), binary.clone(), true);
        check(bce, Activation::Linear, p.clone(), binary.clone(), false);
    }
    // Smoothing moves the loss: y = 1 smoothed by 0.2 is 0.9, so the loss of p = 0.9 is
    // the entropy of 0.9 rather than −ln 0.9.
    let mut g = Matrix::default();
    let bce = Loss::binary_crossentropy().with_label_smoothing(0.2).unwrap();
    let (v, _) = bce.forward_backward(&m(&[&[0.9]]), None, Activation::Linear, &m(&[&[1.0]]), None, &mut g);
    let entropy = -(0.9f32 * 0.9f32.ln() + 0.1 * 0.1f32.ln());
    assert!((v - entropy).abs() < 1e-5, "{v} vs {entropy}");
    assert!(g.as_slice()[0].abs() < 1e-4, "the smoothed optimum has zero gradient: {:?}", g.as_slice());
}

#[test]
fn ignore_class_both_paths() {
    let z = m(&[&[0.5, -1.0, 2.0], &[0.1, 0.2, -0.3], &[1.0, 0.0, -1.0]]);
    let p = m(&[&[0.2, 0.3, 0.5], &[0.6, 0.1, 0.3], &[0.25, 0.25, 0.5]]);
    let y = m(&[&[2.0], &[-1.0], &[1.0]]);
    let w = [0.5f32, 2.0, 3.0];
    for r in [Reduction::SumOverBatchSize, Reduction::Sum, Reduction::MeanWithSampleWeight] {
        for weights in [None, Some(&w[..])] {
            let l = Loss::sparse_categorical_crossentropy().with_ignore_class(Some(-1)).unwrap().with_reduction(r);
            check_weighted(l, Activation::Softmax, z.clone(), y.clone(), true, weights);
            check_weighted(l, Activation::Linear, p.clone(), y.clone(), false, weights);
        }
    }
    // The ignored row has no gradient, and the mean runs over the two kept rows.
    let l = Loss::sparse_categorical_crossentropy().with_ignore_class(Some(-1)).unwrap();
    let mut g = Matrix::default();
    let (v, _) = l.forward_backward(&p, None, Activation::Linear, &y, None, &mut g);
    assert_eq!(g.row(1), &[0.0, 0.0, 0.0]);
    let kept = m(&[&[0.2, 0.3, 0.5], &[0.25, 0.25, 0.5]]);
    let (mean_kept, _) = Loss::sparse_categorical_crossentropy().forward_backward(
        &kept,
        None,
        Activation::Linear,
        &m(&[&[2.0], &[1.0]]),
        None,
        &mut g,
    );
    assert!((v - mean_kept).abs() < 1e-6, "{v} vs {mean_kept}");
}

#[test]
fn mean_absolute_error_subgradient() {
    let p = m(&[&[0.5, -1.0], &[2.0, 0.0]]);
    let y = m(&[&[1.0, 0.0], &[0.0, 0.5]]);
    check(Loss::mean_absolute_error(), Activation::Linear, p.clone(), y.clone(), false);
    // At a tie TensorFlow's `abs` gradient is sign(0) = 0.
    let mut g = Matrix::default();
    let (v, _) = Loss::mean_absolute_error().forward_backward(&y, None, Activation::Linear, &y, None, &mut g);
    assert_eq!((v, g.as_slice()), (0.0, &[0.0; 4][..]));
    let (v, _) = Loss::mean_absolute_error().forward_backward(&p, None, Activation::Linear, &y, None, &mut g);
    // ((0.5 + 1) / 2 + (2 + 0.5) / 2) / 2
    assert!((v - 1.0).abs() < 1e-6);
    assert_eq!(g.as_slice(), &[-0.25, -0.25, 0.25, -0.25]);
}
