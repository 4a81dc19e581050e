//! Finite-difference checks of every loss on both paths (from logits, from probabilities).

use kiln_layers::{Activation, GradOf};
use kiln_tensor::{Matrix, kernels};
use kiln_trainer::Loss;

fn m(rows: &[&[f32]]) -> Matrix {
    Matrix::from_rows(rows).unwrap()
}

/// The loss as a function of what the gradient is taken against (logits or outputs).
fn loss_of(loss: Loss, act: Activation, input: &Matrix, y: &Matrix, from_logits: bool) -> f32 {
    let mut out = input.clone();
    let logits = if from_logits {
        act.apply(out.as_mut_slice(), input.cols());
        Some(input)
    } else {
        None
    };
    let mut g = Matrix::default();
    loss.forward_backward(&out, logits, if from_logits { act } else { Activation::Linear }, y, None, &mut g).0
}

fn check(loss: Loss, act: Activation, input: Matrix, y: Matrix, from_logits: bool) {
    let mut out = input.clone();
    let logits = from_logits.then(|| {
        act.apply(out.as_mut_slice(), input.cols());
        &input
    });
    let mut grad = Matrix::default();
    let used = if from_logits { act } else { Activation::Linear };
    let (_, of) = loss.forward_backward(&out, logits, used, &y, None, &mut grad);
    assert_eq!(of, if from_logits { GradOf::Logits } else { GradOf::Output }, "{loss:?}");
    let h = 1e-3f32;
    for i in 0..input.as_slice().len() {
        let at = |d: f32| {
            let mut z = input.clone();
            z.as_mut_slice()[i] += d;
            loss_of(loss, act, &z, &y, from_logits) as f64
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
