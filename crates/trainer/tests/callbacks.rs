//! EarlyStopping, TerminateOnNaN and ModelCheckpoint.

mod common;

use common::{blobs, classifier};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_trainer::callbacks::{EarlyStopping, ModelCheckpoint, TerminateOnNaN};
use kiln_trainer::{FitOptions, Loss, NO_METRICS, Sequential, Verbosity};

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(Verbosity::Silent)
}

#[test]
fn early_stopping_stops_after_patience_and_restores_best() {
    let (x, y) = blobs(120, 11);
    let mut m = classifier(3);
    // Monitoring training loss with an impossible min_delta: no epoch after the first
    // counts as an improvement, so training stops after `patience` more epochs.
    let mut es = EarlyStopping::new("loss").patience(2).min_delta(10.0).restore_best_weights(true);
    let mut best = None;
    #[derive(Debug, Default)]
    struct Snap {
        first: Option<kiln_trainer::Weights>,
    }
    impl kiln_trainer::callbacks::Callback for Snap {
        fn on_epoch_end(
            &mut self,
            _e: usize,
            _l: &kiln_trainer::Logs,
            c: &mut kiln_trainer::callbacks::Control<'_>,
        ) -> Result<(), kiln_trainer::TrainError> {
            self.first.get_or_insert_with(|| c.model().get_weights());
            Ok(())
        }
    }
    let mut snap = Snap::default();
    let h = m.fit(&x, &y, quiet().epochs(20).callback(&mut snap).callback(&mut es)).unwrap();
    assert_eq!(h.epochs(), 3, "epoch 0 is best, epochs 1 and 2 exhaust patience 2");
    assert_eq!(es.stopped_epoch(), Some(2));
    assert_eq!(es.best_epoch(), Some(0));
    best.get_or_insert(snap.first.unwrap());
    assert_eq!(m.get_weights(), best.unwrap(), "weights restored to epoch 0's");
}

#[test]
fn early_stopping_on_accuracy_maximizes() {
    let (x, y) = blobs(200, 12);
    let mut m = classifier(4);
    let mut es = EarlyStopping::new("val_accuracy").patience(100);
    let h = m.fit(&x, &y, quiet().epochs(5).validation_split(0.2).callback(&mut es)).unwrap();
    let acc = h.get("val_accuracy").unwrap();
    let best = acc.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(acc[es.best_epoch().unwrap()], best);
}

#[test]
fn terminate_on_nan_stops_a_diverging_run() {
    let (x, y) = blobs(64, 13);
    let mut m = Sequential::new().add(kiln_layers::Dense::new(3));
    m.compile(Optimizer::new(RMSprop::default(), 1e30), Loss::mean_squared_error(), NO_METRICS).unwrap();
    let y3 = kiln_tensor::Matrix::from_vec(64, 3, y.as_slice().iter().flat_map(|&c| [c, c, c]).collect()).unwrap();
    let mut t = TerminateOnNaN::default();
    let h = m.fit(&x, &y3, quiet().epochs(50).batch_size(8).callback(&mut t)).unwrap();
    assert!(t.stopped_at_batch.is_some());
    assert!(h.epochs() < 50);
}

#[test]
fn model_checkpoint_saves_only_improvements() {
    let dir = std::env::temp_dir().join(format!("kiln-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (x, y) = blobs(100, 14);
    let mut m = classifier(5);
    let path = dir.join("best-{epoch:02}.safetensors").to_string_lossy().into_owned();
    let mut cb = ModelCheckpoint::new(path).save_best_only("loss").save_weights_only(true);
    let h = m.fit(&x, &y, quiet().epochs(4).callback(&mut cb)).unwrap();
    let loss = h.get("loss").unwrap();
    let mut best = f64::INFINITY;
    for (e, l) in loss.iter().enumerate() {
        let file = dir.join(format!("best-{:02}.safetensors", e + 1));
        assert_eq!(file.exists(), *l < best, "epoch {e}");
        best = best.min(*l);
    }
    let mut fresh = classifier(99);
    fresh.build(4).unwrap();
    let last = (1..=4).rev().map(|e| dir.join(format!("best-{e:02}.safetensors"))).find(|p| p.exists()).unwrap();
    fresh.load_weights(&last).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A model compiled with metrics whose Keras classes declare both directions, two AUCs (the
/// second logs as `auc_1`) and a weighted accuracy that clashes (`weighted_accuracy`).
fn compiled_with_directions() -> Sequential {
    use kiln_trainer::{F1Average, Metric};
    let mut m = Sequential::new().add(kiln_layers::Dense::new(3));
    let metrics = [
        Metric::Accuracy.named("acc"),
        Metric::Accuracy.into(),
        Metric::F1Score { average: F1Average::Macro, threshold: None }.into(),
        Metric::precision().into(),
        Metric::MeanAbsoluteError.into(),
        Metric::auc().into(),
        Metric::auc().into(),
        Metric::Accuracy.named("accuracy").sample_weighted(),
    ];
    m.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), metrics).unwrap();
    m
}

/// Keras' `early_stopping_test.py::test_early_stopping` cases for `mode="auto"` that kiln
/// has metrics for, and its `monitor="unknown"` error (Keras 3.15.1, MonitorCallback).
#[test]
fn auto_mode_follows_each_compiled_metrics_direction() {
    use kiln_trainer::callbacks::Mode;
    let m = compiled_with_directions();
    for (monitor, maximize) in [
        ("loss", false),
        ("val_loss", false),
        ("acc", true),
        ("val_accuracy", true),
        ("f1_score", true),
        ("val_f1_score", true),
        ("precision", true),
        ("mean_absolute_error", false),
        ("val_mean_absolute_error", false),
        ("val_auc", true),
    ] {
        assert_eq!(Mode::Auto.maximizes(monitor, &m, "EarlyStopping").unwrap(), maximize, "{monitor}");
        assert!(Mode::Max.maximizes(monitor, &m, "EarlyStopping").unwrap());
        assert!(!Mode::Min.maximizes(monitor, &m, "EarlyStopping").unwrap());
    }
    // Keras matches the metric objects' names, not the deduplicated log keys, and strips
    // only one `val_`.
    for monitor in ["unknown", "auc_1", "val_auc_1", "weighted_accuracy", "val_val_loss", "learning_rate"] {
        let err = Mode::Auto.maximizes(monitor, &m, "EarlyStopping").unwrap_err().to_string();
        assert!(err.contains(&format!("EarlyStopping callback received monitor={monitor},")), "{err}");
        assert!(err.contains("maximized or minimized"), "{err}");
        assert!(Mode::Min.maximizes(monitor, &m, "EarlyStopping").is_ok());
    }
    // Without compiled metrics, only the loss resolves.
    let mut bare = Sequential::new().add(kiln_layers::Dense::new(1));
    bare.compile(RMSprop::default(), Loss::mean_squared_error(), NO_METRICS).unwrap();
    assert!(!Mode::Auto.maximizes("val_loss", &bare, "ReduceLROnPlateau").unwrap());
    let err = Mode::Auto.maximizes("val_accuracy", &bare, "ReduceLROnPlateau").unwrap_err().to_string();
    assert!(err.contains("ReduceLROnPlateau callback received monitor=val_accuracy") && err.contains("none"), "{err}");
}

/// The directions survive save and load (the config keeps the metrics' Keras names).
#[test]
fn auto_mode_directions_survive_save_and_load() {
    use kiln_trainer::callbacks::Mode;
    let dir = std::env::temp_dir().join(format!("kiln-direction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut m = compiled_with_directions();
    m.build(4).unwrap();
    m.save(&dir).unwrap();
    let loaded = Sequential::load(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let names = |m: &Sequential| m.metrics().iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&loaded), names(&m));
    assert!(names(&m).contains(&"auc_1".to_string()) && names(&m).contains(&"weighted_accuracy".to_string()));
    assert!(Mode::Auto.maximizes("val_f1_score", &loaded, "EarlyStopping").unwrap());
    assert!(!Mode::Auto.maximizes("mean_absolute_error", &loaded, "EarlyStopping").unwrap());
    assert!(Mode::Auto.maximizes("auc_1", &loaded, "EarlyStopping").is_err());
}

/// The wrong answer the Keras port found: `EarlyStopping(monitor="val_f1_score")` in auto
/// mode minimized F1. Its best epoch must be the highest F1's.
#[test]
fn early_stopping_on_f1_score_maximizes() {
    use kiln_trainer::{F1Average, Metric};
    let (x, y) = blobs(200, 12);
    let y = one_hot(&y);
    let mut m = Sequential::new()
        .seed(4)
        .add(kiln_layers::Dense::new(16).activation(kiln_layers::Activation::Relu))
        .add(kiln_layers::Dense::new(3).activation(kiln_layers::Activation::Softmax));
    let f1 = Metric::F1Score { average: F1Average::Macro, threshold: None };
    m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::categorical_crossentropy(), [f1]).unwrap();
    let mut es = EarlyStopping::new("val_f1_score").patience(100);
    let h = m.fit(&x, &y, quiet().epochs(5).validation_split(0.2).callback(&mut es)).unwrap();
    let f1 = h.get("val_f1_score").unwrap();
    let best = f1.iter().cloned().fold(f64::MIN, f64::max);
    let worst = f1.iter().cloned().fold(f64::MAX, f64::min);
    assert!(best > worst, "the curve must move for the test to mean anything: {f1:?}");
    assert_eq!(f1[es.best_epoch().unwrap()], best, "{f1:?}");
}

/// An `auto` monitor that resolves to nothing stops `fit` before training, naming it
/// (Keras raises a ValueError); `mode(Min)` accepts the same monitor.
#[test]
fn auto_mode_on_an_unknown_monitor_is_an_error() {
    use kiln_trainer::callbacks::Mode;
    let (x, y) = blobs(40, 15);
    let mut m = classifier(6);
    m.build(4).unwrap();
    let before = m.get_weights();
    let mut es = EarlyStopping::new("val_los");
    let err = m.fit(&x, &y, quiet().epochs(2).validation_split(0.2).callback(&mut es)).unwrap_err().to_string();
    assert!(err.contains("monitor=val_los") && err.contains("accuracy"), "{err}");
    assert_eq!(m.get_weights(), before, "nothing trained");
    let mut es = EarlyStopping::new("val_los").mode(Mode::Min);
    assert!(m.fit(&x, &y, quiet().epochs(2).validation_split(0.2).callback(&mut es)).is_ok());
    // The typo then gets Keras' warning (printed on stderr once per fit), never a silent
    // run; the keys in Keras' order (`Trainer.get_metrics_result`: the loss, then the
    // compiled metrics; then the validation ones).
    assert_eq!(
        es.warning(),
        Some(
            "Early stopping conditioned on metric `val_los` which is not available. Available metrics are: loss,accuracy,val_loss,val_accuracy"
        )
    );
}

/// Keras' ModelCheckpoint saves when the monitored value is missing (with a warning);
/// kiln skipped the save silently.
#[test]
fn model_checkpoint_saves_when_the_monitor_is_missing() {
    use kiln_trainer::callbacks::Mode;
    let dir = std::env::temp_dir().join(format!("kiln-ckpt-missing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (x, y) = blobs(60, 16);
    let mut m = classifier(7);
    let path = dir.join("e{epoch}.safetensors").to_string_lossy().into_owned();
    let mut cb = ModelCheckpoint::new(path).save_best_only("val_acc").mode(Mode::Max).save_weights_only(true);
    m.fit(&x, &y, quiet().epochs(2).callback(&mut cb)).unwrap();
    assert!(dir.join("e1.safetensors").exists() && dir.join("e2.safetensors").exists());
    assert_eq!(cb.warning(), Some("Can save best model only with val_acc available."));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Labels whose width a metric cannot use are refused by name when `fit` starts: F1 on
/// class-id labels panicked (index out of bounds), Precision and MAE silently compared
/// only the first column, and a sparse accuracy read only the first of one-hot columns.
#[test]
fn metrics_refuse_labels_of_the_wrong_width() {
    use kiln_trainer::{F1Average, Metric};
    let (x, y) = blobs(40, 17);
    let one_hot = one_hot(&y);
    let (sparse, cce) = (Loss::sparse_categorical_crossentropy(), Loss::categorical_crossentropy());
    let cases: [(Metric, Loss, &kiln_tensor::Matrix, &str); 6] = [
        (Metric::F1Score { average: F1Average::Macro, threshold: None }, sparse, &y, "f1_score"),
        (Metric::precision(), sparse, &y, "precision"),
        (Metric::MeanAbsoluteError, sparse, &y, "mean_absolute_error"),
        (Metric::SparseCategoricalAccuracy, cce, &one_hot, "sparse_categorical_accuracy"),
        (Metric::Recall { thresholds: None, top_k: None, class_id: Some(3) }, cce, &one_hot, "class_id=3"),
        // TensorFlow's top_k fails with fewer columns than k (Keras 3.15.1: "input must have
        // at least k columns"); it used to score as if no filter were set.
        (Metric::Precision { thresholds: None, top_k: Some(5), class_id: None }, cce, &one_hot, "top_k=5"),
    ];
    for (metric, loss, labels, says) in cases {
        let mut m = Sequential::new().add(kiln_layers::Dense::new(3).activation(kiln_layers::Activation::Softmax));
        m.compile(RMSprop::default(), loss, [&metric]).unwrap();
        let err = m.fit(&x, labels, quiet().epochs(1)).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("metric"), "{metric:?}: {err}");
        assert!(m.history().is_none_or(|h| h.epochs() == 0), "{metric:?}: nothing trained");
    }
}

/// Class ids → one-hot rows of 3.
fn one_hot(y: &kiln_tensor::Matrix) -> kiln_tensor::Matrix {
    let rows = y.as_slice().iter().flat_map(|&c| (0..3).map(move |j| f32::from(u8::from(j as f32 == c))));
    kiln_tensor::Matrix::from_vec(y.rows(), 3, rows.collect()).unwrap()
}

/// A callback that only overrides the batch hooks is called for every batch, as in Keras:
/// there is no second method to remember (`wants_batches` stays `false` here).
#[test]
fn overridden_batch_hooks_are_called_without_wants_batches() {
    #[derive(Debug, Default)]
    struct Count {
        begins: usize,
        ends: Vec<f64>,
    }
    impl kiln_trainer::callbacks::Callback for Count {
        fn on_train_batch_begin(
            &mut self,
            _b: usize,
            _c: &mut kiln_trainer::callbacks::Control<'_>,
        ) -> Result<(), kiln_trainer::TrainError> {
            self.begins += 1;
            Ok(())
        }
        fn on_train_batch_end(
            &mut self,
            _b: usize,
            logs: &kiln_trainer::Logs,
            _c: &mut kiln_trainer::callbacks::Control<'_>,
        ) -> Result<(), kiln_trainer::TrainError> {
            self.ends.push(logs.get("loss").unwrap());
            Ok(())
        }
    }
    let (x, y) = blobs(100, 3);
    let mut m = classifier(3);
    let mut count = Count::default();
    m.fit(&x, &y, quiet().epochs(2).batch_size(32).callback(&mut count)).unwrap();
    assert_eq!(count.begins, 2 * 4, "4 batches of 100 rows per epoch, 2 epochs");
    assert_eq!(count.ends.len(), 8);
    assert!(count.ends.iter().all(|l| l.is_finite()));
}

/// A callback that asks to stop in `on_train_begin` or in `on_epoch_begin` of one epoch,
/// and counts the batches that ran.
#[derive(Debug, Default)]
struct StopAt {
    train_begin: bool,
    epoch_begin: Option<usize>,
    batches: usize,
}

impl kiln_trainer::callbacks::Callback for StopAt {
    fn on_train_begin(&mut self, c: &mut kiln_trainer::callbacks::Control<'_>) -> Result<(), kiln_trainer::TrainError> {
        if self.train_begin {
            c.stop_training();
        }
        Ok(())
    }
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        c: &mut kiln_trainer::callbacks::Control<'_>,
    ) -> Result<(), kiln_trainer::TrainError> {
        if self.epoch_begin == Some(epoch) {
            c.stop_training();
        }
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        _b: usize,
        _l: &kiln_trainer::Logs,
        _c: &mut kiln_trainer::callbacks::Control<'_>,
    ) -> Result<(), kiln_trainer::TrainError> {
        self.batches += 1;
        Ok(())
    }
}

/// Keras 3.15.1, 40 rows, batch 8, epochs 3: `stop_training` set in `on_train_begin` runs
/// 1 epoch of 1 batch; set in `on_epoch_begin(1)`, 2 epochs and 6 batches (Keras reads the
/// flag after each batch).
#[test]
fn a_stop_asked_before_an_epoch_ends_it_after_one_batch_as_keras() {
    let (x, y) = blobs(40, 3);
    for (mut cb, epochs, batches) in [
        (StopAt { train_begin: true, ..StopAt::default() }, 1, 1),
        (StopAt { epoch_begin: Some(1), ..StopAt::default() }, 2, 6),
    ] {
        let mut m = classifier(3);
        let h = m.fit(&x, &y, quiet().epochs(3).batch_size(8).callback(&mut cb)).unwrap();
        assert_eq!((h.epochs(), cb.batches), (epochs, batches), "{cb:?}");
    }
}

/// Keras' EarlyStopping returns before recording weights while `epoch < start_from_epoch`:
/// a run that ends before then keeps its last weights.
#[test]
fn early_stopping_restores_nothing_when_training_ends_before_start_from_epoch() {
    let (x, y) = blobs(64, 4);
    let mut m = classifier(4);
    let mut es = EarlyStopping::new("loss").restore_best_weights(true).start_from_epoch(5);
    m.fit(&x, &y, quiet().epochs(3).callback(&mut es)).unwrap();
    let trained = m.get_weights();
    let mut again = classifier(4);
    again.fit(&x, &y, quiet().epochs(3)).unwrap();
    assert_eq!(trained, again.get_weights(), "the weights after epoch 3, not epoch 1's");
    assert_eq!(es.best_epoch(), None);
}

/// ModelCheckpoint keeps its best value between `fit` calls (Keras sets `self.best` once,
/// in `__init__`), and names files with Python's `str.format` of `epoch` and the logs.
#[test]
fn model_checkpoint_keeps_its_best_across_fits_and_formats_log_values() {
    let tmp = tempfile::Builder::new().prefix("kiln-ckpt-format-").tempdir().unwrap();
    let (x, y) = blobs(100, 14);
    let mut m = classifier(5);
    let template = tmp.path().join("m-{epoch:03d}-{loss:.2f}.safetensors").to_string_lossy().into_owned();
    let mut cb = ModelCheckpoint::new(template).save_best_only("loss").save_weights_only(true);
    let h = m.fit(&x, &y, quiet().epochs(4).callback(&mut cb)).unwrap();
    let names = |dir: &std::path::Path| {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    let loss = h.get("loss").unwrap();
    assert_eq!(names(tmp.path())[0], format!("m-001-{:.2}.safetensors", loss[0]));
    let saved = names(tmp.path()).len();
    let best = loss.iter().copied().fold(f64::INFINITY, f64::min);
    // A fresh model's first epoch does worse than the trained one's best: nothing is saved.
    let mut worse = classifier(6);
    let h2 = worse.fit(&x, &y, quiet().epochs(1).callback(&mut cb)).unwrap();
    assert!(h2.get("loss").unwrap()[0] > best, "the premise: {h2:?} against {best}");
    assert_eq!(names(tmp.path()).len(), saved, "the second fit did not beat the first's best");
    // `initial_value_threshold`: nothing beats a minimum of f64::MIN.
    let mut strict = ModelCheckpoint::new(tmp.path().join("t{epoch}").to_string_lossy().into_owned())
        .save_best_only("loss")
        .save_weights_only(true)
        .initial_value_threshold(f64::MIN);
    m.fit(&x, &y, quiet().epochs(2).callback(&mut strict)).unwrap();
    assert_eq!(names(tmp.path()).len(), saved);
    let mut missing = ModelCheckpoint::new(tmp.path().join("{val_loss:.2f}").to_string_lossy().into_owned());
    let err = m.fit(&x, &y, quiet().epochs(1).callback(&mut missing)).unwrap_err().to_string();
    assert!(err.contains("val_loss") && err.contains("Failed to format"), "{err}");
}
