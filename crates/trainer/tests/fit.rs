//! `fit` / `evaluate` / `predict` semantics: Keras' bookkeeping, splits, seeds, errors.

mod common;

use common::{blobs, classifier};
use kiln_layers::{Activation, Dense, Dropout};
use kiln_optimizers::{Optimizer, RMSprop, Sgd};
use kiln_regularizers::L2;
use kiln_tensor::Matrix;
use kiln_trainer::callbacks::{BatchStats, Callback, Control};
use kiln_trainer::{FitOptions, Logs, Loss, Metric, NO_METRICS, Sequential, TrainError, Verbosity};

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(Verbosity::Silent)
}

#[derive(Debug, Default)]
struct Batches {
    stats: Vec<(usize, BatchStats, f64)>,
}
impl Callback for Batches {
    fn on_train_batch_end(&mut self, b: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.stats.push((b, ctl.batch_stats().unwrap(), logs.get("loss").unwrap()));
        Ok(())
    }
    fn wants_batches(&self) -> bool {
        true
    }
}

#[test]
fn learns_a_separable_problem() {
    let (x, y) = blobs(600, 1);
    let mut m = classifier(0);
    let h = m.fit(&x, &y, quiet().epochs(30).batch_size(32).validation_split(0.2)).unwrap();
    let acc = h.get("val_accuracy").unwrap();
    assert!(*acc.last().unwrap() > 0.9, "val accuracy {acc:?}");
    let loss = h.get("loss").unwrap();
    assert!(loss.last().unwrap() < &(loss[0] * 0.5));
    let keys: Vec<&str> = h.keys().collect();
    assert_eq!(keys, ["accuracy", "loss", "val_accuracy", "val_loss"]);
}

#[test]
fn epoch_loss_is_the_batch_size_weighted_mean_with_penalties() {
    let (x, y) = blobs(50, 2); // batches of 16, 16, 16, 2
    let mut m = Sequential::new()
        .add(Dense::new(8).activation(Activation::Relu).kernel_regularizer(L2::new(0.01)))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
    let mut rec = Batches::default();
    let h = m.fit(&x, &y, quiet().batch_size(16).callback(&mut rec)).unwrap();
    let sizes: Vec<usize> = rec.stats.iter().map(|s| s.1.size).collect();
    assert_eq!(sizes, [16, 16, 16, 2]);
    let weighted: f64 = rec.stats.iter().map(|s| s.1.loss as f64 * s.1.size as f64).sum::<f64>() / 50.0;
    let epoch = h.get("loss").unwrap()[0];
    assert!((weighted - epoch).abs() < 1e-6, "{weighted} vs {epoch}");
    assert!(rec.stats.iter().all(|s| s.1.loss > s.1.data_loss), "penalty must be included");
    // The running log after the last batch is the epoch's loss.
    assert_eq!(rec.stats.last().unwrap().2, epoch);
}

#[test]
fn validation_split_holds_out_the_last_rows_and_includes_penalties() {
    let (x, y) = blobs(100, 3);
    let mut m = Sequential::new()
        .add(Dense::new(8).activation(Activation::Relu).kernel_regularizer(L2::new(0.01)))
        .add(Dropout::new(0.5))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    let h = m.fit(&x, &y, quiet().epochs(2).batch_size(10).validation_split(0.3)).unwrap();
    // Validation = rows 70..100 with end-of-epoch weights and no dropout: evaluate agrees.
    let tail_x = x.slice_rows(70, 100);
    let tail_y = y.slice_rows(70, 100);
    let logs = m.evaluate(&tail_x, &tail_y, 10).unwrap();
    assert_eq!(logs.get("loss").unwrap(), h.get("val_loss").unwrap()[1]);
    assert_eq!(logs.get("accuracy").unwrap(), h.get("val_accuracy").unwrap()[1]);
}

#[test]
fn same_seed_same_history_and_another_seed_differs() {
    let (x, y) = blobs(200, 4);
    let run = |seed| {
        let mut m = classifier(seed);
        m.fit(&x, &y, quiet().epochs(3).batch_size(20).validation_split(0.25)).unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn predict_is_deterministic_and_shaped() {
    let (x, y) = blobs(45, 5);
    let mut m = classifier(1);
    m.fit(&x, &y, quiet().epochs(2)).unwrap();
    let p = m.predict(&x, 16).unwrap();
    assert_eq!(p.shape(), (45, 3));
    assert!(p.as_slice().chunks(3).all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
    assert_eq!(p, m.predict(&x, 7).unwrap());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (x, y) = blobs(20, 6);
    let mut m = classifier(0);
    let short = y.slice_rows(0, 19);
    assert!(m.fit(&x, &short, quiet()).unwrap_err().to_string().contains("20 samples but 19"));
    let bad = Matrix::from_vec(20, 1, vec![5.0; 20]).unwrap();
    assert!(m.fit(&x, &bad, quiet()).unwrap_err().to_string().contains("class id"));
    assert!(m.fit(&x, &y, quiet().batch_size(0)).is_err());
    assert!(m.fit(&x, &y, quiet().validation_split(1.5)).is_err());
    let wide = Matrix::zeros(20, 5);
    m.fit(&x, &y, quiet()).unwrap();
    let err = m.predict(&wide, 4).unwrap_err();
    assert!(matches!(err, TrainError::WidthMismatch { data: "prediction", expected: 4, found: 5 }), "{err}");
    assert!(err.to_string().contains("prediction data has 5 features, but the model takes 4"), "{err}");
    let mut uncompiled = Sequential::new().add(Dense::new(2));
    let err = uncompiled.fit(&Matrix::zeros(2, 2), &Matrix::zeros(2, 2), quiet()).unwrap_err();
    assert!(matches!(err, TrainError::NotCompiled("fit")), "{err}");
    for batch_size in [0, 0] {
        assert!(m.evaluate(&x, &y, batch_size).unwrap_err().to_string().contains("batch_size"));
        assert!(m.predict(&x, batch_size).unwrap_err().to_string().contains("batch_size"));
    }
}

#[test]
fn binary_and_mse_train_with_their_metrics() {
    let (x, y3) = blobs(300, 7);
    let yb = Matrix::from_vec(300, 1, y3.as_slice().iter().map(|&c| (c == 0.0) as u8 as f32).collect()).unwrap();
    let mut m = Sequential::new()
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(
        Optimizer::new(RMSprop::default(), 0.01),
        Loss::binary_crossentropy(),
        [Metric::Accuracy, Metric::MeanAbsoluteError],
    )
    .unwrap();
    let h = m.fit(&x, &yb, quiet().epochs(20)).unwrap();
    assert!(*h.get("accuracy").unwrap().last().unwrap() > 0.85);
    let mae = h.get("mean_absolute_error").unwrap();
    assert!(mae.last().unwrap() < &mae[0]);

    let mut r = Sequential::new().add(Dense::new(1));
    r.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::mean_squared_error(), [Metric::MeanAbsoluteError])
        .unwrap();
    let h = r.fit(&x, &yb, quiet().epochs(5)).unwrap();
    assert!(h.get("loss").unwrap().iter().all(|v| v.is_finite()));
}

#[derive(Debug, Default)]
struct FirstBatchLoss {
    per_epoch: Vec<f32>,
}
impl Callback for FirstBatchLoss {
    fn on_train_batch_end(&mut self, b: usize, _: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if b == 0 {
            self.per_epoch.push(ctl.batch_stats().unwrap().data_loss);
        }
        Ok(())
    }
    fn wants_batches(&self) -> bool {
        true
    }
}

#[test]
fn shuffle_once_keeps_the_first_epochs_order() {
    // With a learning rate far below float32 resolution the weights never change, so a
    // batch's loss depends only on which samples it holds: equal first-batch losses mean
    // the same order.
    let (x, y) = blobs(64, 8);
    let run = |reshuffle: bool| {
        let mut m = Sequential::new().add(Dense::new(3).activation(Activation::Softmax));
        m.compile(Optimizer::new(Sgd::default(), 1e-30), Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
        let mut rec = FirstBatchLoss::default();
        let opts = quiet().epochs(4).batch_size(8).reshuffle_each_epoch(reshuffle);
        m.fit(&x, &y, opts.callback(&mut rec)).unwrap();
        rec.per_epoch
    };
    let once = run(false);
    assert!(once.iter().all(|&l| l == once[0]), "{once:?}");
    let each = run(true);
    assert_eq!(each[0], once[0], "the first epoch's order is the same either way");
    assert!(each.iter().any(|&l| l != each[0]), "{each:?}");
}
