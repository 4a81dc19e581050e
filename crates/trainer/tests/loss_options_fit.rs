//! Loss options in `fit`: the reported loss is the standalone loss of the same batch, and
//! the reduction scales the gradient as Keras' train step (which calls the loss with its
//! reduction) does.

mod common;

use common::blobs;
use kiln_layers::{Activation, Dense};
use kiln_optimizers::{Optimizer, Sgd};
use kiln_tensor::Matrix;
use kiln_trainer::callbacks::{Callback, Control};
use kiln_trainer::{FitOptions, Logs, Loss, NO_METRICS, Reduction, SampleWeight, Sequential, TrainError, Verbosity};

/// The data loss of the first batch (computed before the first update).
#[derive(Debug, Default)]
struct FirstBatch(Option<f32>);
impl Callback for FirstBatch {
    fn on_train_batch_end(&mut self, b: usize, _: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if b == 0 {
            self.0 = Some(ctl.batch_stats().unwrap().data_loss);
        }
        Ok(())
    }
    fn wants_batches(&self) -> bool {
        true
    }
}

/// A linear 4→3 model (logits), compiled with `loss` and plain SGD at `lr`.
fn model(loss: Loss, lr: f64) -> Sequential {
    let mut m = Sequential::new().seed(3).add(Dense::new(3).activation(Activation::Linear));
    m.compile(Optimizer::new(Sgd::default(), lr), loss, NO_METRICS).unwrap();
    m.build(4).unwrap();
    m
}

fn one_hot(y: &Matrix) -> Matrix {
    let v = y.as_slice().iter().flat_map(|&c| (0..3).map(move |j| (j as f32 == c) as u8 as f32)).collect();
    Matrix::from_vec(y.rows(), 3, v).unwrap()
}

/// One full-batch step: (first-batch loss reported by fit, the standalone loss of the
/// same predictions, the weights after the step).
fn step(loss: Loss, lr: f64, x: &Matrix, y: &Matrix, w: Option<&[f32]>) -> (f32, f32, Vec<f32>) {
    let mut m = model(loss, lr);
    let logits = m.predict(x, 64).unwrap();
    let standalone = loss.call_weighted(y, &logits, w.map(SampleWeight::PerSample)).unwrap();
    let mut rec = FirstBatch::default();
    let mut opts = FitOptions::default().verbose(Verbosity::Silent).epochs(1).batch_size(x.rows()).shuffle(false);
    if let Some(w) = w {
        opts = opts.sample_weight(w);
    }
    m.fit(x, y, opts.callback(&mut rec)).unwrap();
    let weights = m.get_weights().0.into_iter().flat_map(|t| t.values).collect();
    (rec.0.unwrap(), standalone, weights)
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn fit_reports_the_standalone_loss_with_every_option() {
    let (x, y) = blobs(24, 5);
    let y_cat = one_hot(&y);
    let w: Vec<f32> = (0..24).map(|i| (i % 4) as f32 * 0.5).collect();
    let scce = Loss::sparse_categorical_crossentropy().with_from_logits(true);
    let cce = Loss::categorical_crossentropy().with_from_logits(true);
    let cases = [
        (scce.with_reduction(Reduction::Sum), &y),
        (scce.with_reduction(Reduction::MeanWithSampleWeight), &y),
        (cce.with_label_smoothing(0.2).unwrap(), &y_cat),
        (cce.with_label_smoothing(0.1).unwrap().with_reduction(Reduction::Sum), &y_cat),
        (Loss::mean_absolute_error().with_reduction(Reduction::Sum), &y_cat),
    ];
    for (loss, labels) in cases {
        for weights in [None, Some(&w[..])] {
            let (reported, standalone, _) = step(loss, 0.01, &x, labels, weights);
            assert!(
                close(reported, standalone),
                "{loss:?} weights={}: fit {reported} vs call {standalone}",
                weights.is_some()
            );
        }
    }
    // ignore_class: relabel a few rows as the ignored class.
    let mut y_ign = y.clone();
    for i in [0, 5, 9] {
        y_ign.as_mut_slice()[i] = 7.0;
    }
    let ign = scce.with_ignore_class(Some(7)).unwrap();
    let (reported, standalone, _) = step(ign, 0.01, &x, &y_ign, None);
    assert!(close(reported, standalone), "ignore_class: fit {reported} vs call {standalone}");
}

#[test]
fn sum_reduction_scales_the_gradient_by_the_batch_size() {
    // d(Σ lossᵢ) = n · d(Σ lossᵢ / n): SGD on `sum` at lr/n takes the step of the default
    // reduction at lr.
    let (x, y) = blobs(24, 6);
    let scce = Loss::sparse_categorical_crossentropy().with_from_logits(true);
    let (mean_loss, _, mean_w) = step(scce, 0.1, &x, &y, None);
    let (sum_loss, _, sum_w) = step(scce.with_reduction(Reduction::Sum), 0.1 / 24.0, &x, &y, None);
    assert!(close(sum_loss, mean_loss * 24.0), "{sum_loss} vs 24 × {mean_loss}");
    for (a, b) in mean_w.iter().zip(&sum_w) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // And smoothing changes the step (it is in the gradient, not only the value).
    let cce = Loss::categorical_crossentropy().with_from_logits(true);
    let (_, _, plain) = step(cce, 0.1, &x, &one_hot(&y), None);
    let (_, _, smoothed) = step(cce.with_label_smoothing(0.5).unwrap(), 0.1, &x, &one_hot(&y), None);
    assert!(plain.iter().zip(&smoothed).any(|(a, b)| (a - b).abs() > 1e-4));
}

#[test]
fn compile_refuses_what_fit_cannot_reduce_or_check() {
    let mut m = Sequential::new().add(Dense::new(2));
    let none = Loss::mean_squared_error().with_reduction(Reduction::None);
    let err = m.compile(Sgd::default(), none, NO_METRICS).unwrap_err().to_string();
    assert!(err.contains("reduction `none`"), "{err}");
    let bad = Loss::BinaryCrossentropy { from_logits: false, label_smoothing: 1.5, reduction: Reduction::Sum };
    let err = m.compile(Sgd::default(), bad, NO_METRICS).unwrap_err().to_string();
    assert!(err.contains("label_smoothing"), "{err}");
}

#[test]
fn options_survive_save_and_load() {
    let (x, y) = blobs(8, 1);
    let loss = Loss::sparse_categorical_crossentropy()
        .with_from_logits(true)
        .with_ignore_class(Some(-1))
        .unwrap()
        .with_reduction(Reduction::MeanWithSampleWeight);
    let mut m = model(loss, 0.01);
    m.fit(&x, &y, FitOptions::default().verbose(Verbosity::Silent).epochs(1)).unwrap();
    let back = Sequential::from_config_json(&m.to_config_json()).unwrap();
    assert_eq!(back.loss(), Some(loss));
    let cce = Loss::categorical_crossentropy().with_label_smoothing(0.25).unwrap();
    let back = Sequential::from_config_json(&model(cce, 0.01).to_config_json()).unwrap();
    assert_eq!(back.loss(), Some(cce));
    // The default options write nothing new: configs saved before these options read the same.
    assert!(!model(Loss::mean_squared_error(), 0.01).to_config_json().contains("reduction"));
}
