//! Diverging runs: losses that overflow are recorded, `TerminateOnNaN` stops at the
//! first bad batch and keeps the history so far, and histories round-trip through JSON.

mod common;

use kiln_layers::Dense;
use kiln_optimizers::{Optimizer, Sgd};
use kiln_tensor::Matrix;
use kiln_trainer::callbacks::TerminateOnNaN;
use kiln_trainer::{FitOptions, History, Loss, NO_METRICS, Sequential, Verbosity};

/// Linear regression with SGD at a learning rate that amplifies the error each step, so
/// the loss grows geometrically and overflows after some epochs.
fn diverging_model() -> Sequential {
    let mut m = Sequential::new().seed(2).add(Dense::new(1));
    m.compile(Optimizer::new(Sgd::default(), 4.0), Loss::mean_squared_error(), NO_METRICS).unwrap();
    m
}

fn data() -> (Matrix, Matrix) {
    let (x, _) = common::blobs(80, 3);
    let y = Matrix::from_vec(80, 1, (0..80).map(|i| x.row(i).iter().sum::<f32>()).collect()).unwrap();
    (x, y)
}

fn opts<'a>(epochs: usize) -> FitOptions<'a> {
    FitOptions::default().epochs(epochs).batch_size(8).validation_split(0.2).verbose(Verbosity::Silent)
}

#[test]
fn terminate_on_nan_keeps_the_history_up_to_the_bad_batch() {
    let (x, y) = data();
    let mut stop = TerminateOnNaN::default();
    let h = diverging_model().fit(&x, &y, opts(100).callback(&mut stop)).unwrap();
    let bad = h.first_non_finite("loss").expect("the run diverged");
    assert!(bad >= 2, "diverged too early to test anything: epoch {bad}");
    assert_eq!(h.epochs(), bad + 1, "stopped in the epoch whose loss went bad, and recorded it");
    assert!(stop.stopped_at_batch.is_some());
    assert!(h.get("loss").unwrap()[..bad].iter().all(|v| v.is_finite()), "earlier epochs are kept");
    assert_eq!(h.get("val_loss").unwrap().len(), bad + 1, "the last epoch's validation ran, as in Keras");

    // Written and read back: non-finite values are words that keep NaN and ±inf apart.
    let json = h.to_json();
    assert!(json.contains("\"NaN\"") || json.contains("Infinity\""), "{json}");
    let back = History::from_json(&json).unwrap();
    assert_eq!(back.first_non_finite("loss"), Some(bad));
    assert_eq!(back.get("loss").unwrap()[..bad], h.get("loss").unwrap()[..bad]);
}

#[test]
fn without_terminate_on_nan_the_run_goes_on() {
    let (x, y) = data();
    let h = diverging_model().fit(&x, &y, opts(40)).unwrap();
    assert_eq!(h.epochs(), 40);
    let bad = h.first_non_finite("loss").expect("the run diverged");
    assert!(h.get("loss").unwrap()[bad..].iter().all(|v| !v.is_finite()), "once bad, it stays bad");
}
