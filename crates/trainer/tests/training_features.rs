//! ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TensorBoard and initial_epoch.
//! (Their numbers against real Keras are in tests/parity.rs's traces x11–x21.)

mod common;

use std::path::Path;
use std::process::Command;

use common::{blobs, classifier};
use kiln_optimizers::{LearningRateSchedule, Optimizer, Sgd};
use kiln_trainer::callbacks::{CsvLogger, LearningRateScheduler, ReduceLrOnPlateau, TensorBoard, UpdateFreq};
use kiln_trainer::{FitOptions, Verbosity};

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(Verbosity::Silent)
}

/// A fresh scratch folder. A TempDir: removed when the test ends, even on panic.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("kiln-features-{name}-")).tempdir().unwrap()
}

#[test]
fn reduce_lr_on_plateau_logs_the_rate_and_cuts_it_after_patience() {
    let (x, y) = blobs(64, 3);
    let mut m = classifier(1);
    // min_delta 10: nothing counts as an improvement after the first epoch, so with
    // patience 2 and cooldown 2 the rate is cut at epochs 2, 5 and 8 (0-based): Keras'
    // cooldown counter runs down at the start of each epoch's check, and counting resumes
    // in the epoch it reaches 0.
    let mut cb = ReduceLrOnPlateau::new("loss").factor(0.5).patience(2).min_delta(10.0).cooldown(2);
    let h = m.fit(&x, &y, quiet().epochs(9).callback(&mut cb)).unwrap();
    let lr = h.get("learning_rate").expect("learning_rate is in the history");
    let want = [0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025, 0.0025];
    for (e, (&got, &want)) in lr.iter().zip(&want).enumerate() {
        assert_eq!(got as f32, want as f32, "epoch {e}: {lr:?}");
    }
    assert_eq!(cb.reductions().iter().map(|r| r.0).collect::<Vec<_>>(), [2, 5, 8]);
    assert_eq!(m.learning_rate(), Some(0.00125));
}

#[test]
fn reduce_lr_on_plateau_stops_at_min_lr_and_refuses_bad_settings() {
    let (x, y) = blobs(32, 4);
    let mut m = classifier(2);
    let mut cb = ReduceLrOnPlateau::new("loss").factor(0.1).patience(0).min_delta(10.0).min_lr(0.004);
    m.fit(&x, &y, quiet().epochs(4).callback(&mut cb)).unwrap();
    assert_eq!(m.learning_rate(), Some(0.004), "0.01 → max(0.001, 0.004), then no further cut");
    assert_eq!(cb.reductions().len(), 1);

    let mut bad = ReduceLrOnPlateau::new("loss").factor(1.5);
    let err = m.fit(&x, &y, quiet().callback(&mut bad)).unwrap_err().to_string();
    assert!(err.contains("factor must be in (0, 1)"), "{err}");
}

#[test]
fn a_scheduled_rate_cannot_be_set_by_a_callback() {
    let (x, y) = blobs(32, 5);
    let mut m = classifier(3);
    let schedule = LearningRateSchedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10.0,
        decay_rate: 0.5,
        staircase: false,
    };
    m.compile(
        Optimizer::new(Sgd::default(), schedule),
        kiln_trainer::Loss::sparse_categorical_crossentropy(),
        kiln_trainer::NO_METRICS,
    )
    .unwrap();
    let mut cb = LearningRateScheduler::new(|_, lr| lr * 0.5);
    let err = m.fit(&x, &y, quiet().callback(&mut cb)).unwrap_err().to_string();
    assert!(err.contains("ExponentialDecay schedule, hence not settable"), "{err}");
}

#[test]
fn learning_rate_scheduler_sets_the_rate_before_each_epoch() {
    let (x, y) = blobs(32, 6);
    let mut m = classifier(4);
    let mut seen = Vec::new();
    let mut cb = LearningRateScheduler::new(|epoch, lr| if epoch < 2 { lr } else { lr * 0.5 });
    let h = m.fit(&x, &y, quiet().epochs(4).callback(&mut cb)).unwrap();
    seen.extend(h.get("learning_rate").unwrap().iter().map(|&v| v as f32));
    assert_eq!(seen, [0.01, 0.01, 0.005, 0.0025]);
}

#[test]
fn learning_rate_scheduler_computes_in_float64_as_keras() {
    // Keras passes float(lr) and stores the result as float32: from 0.01, `lr * 0.9` gives
    // 0.006560999434… at the fourth epoch, where float32 arithmetic would give 0.006560998969….
    let (x, y) = blobs(32, 6);
    let mut m = classifier(4);
    let mut cb = LearningRateScheduler::new(|_, lr| lr * 0.9);
    let h = m.fit(&x, &y, quiet().epochs(5).callback(&mut cb)).unwrap();
    let rates: Vec<f32> = h.get("learning_rate").unwrap().iter().map(|&v| v as f32).collect();
    let keras = [
        0.008999999612569809f64,
        0.008099999278783798,
        0.0072899991646409035,
        0.006560999434441328,
        0.0059048994444310665,
    ];
    assert_eq!(rates, keras.map(|v| v as f32));
}

#[test]
fn csv_logger_writes_keras_layout_and_appends() {
    let tmp = temp_dir("csv");
    let dir = tmp.path();
    let path = dir.join("log.csv");
    let (x, y) = blobs(40, 7);
    let mut m = classifier(5);
    let mut csv = CsvLogger::new(&path);
    let h = m.fit(&x, &y, quiet().epochs(2).callback(&mut csv)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    // No validation: Keras adds a val_ column per key, filled with NA.
    assert_eq!(lines[0], "epoch,accuracy,loss,val_accuracy,val_loss");
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(row[0], "0");
    assert_eq!(row[2].parse::<f64>().unwrap(), h.get("loss").unwrap()[0]);
    assert_eq!(&row[3..], ["NA", "NA"]);
    assert_eq!(lines.len(), 4, "header, two rows, final empty piece: {text:?}");

    let mut again = CsvLogger::new(&path).append(true);
    m.fit(&x, &y, quiet().epochs(1).callback(&mut again)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("epoch,").count(), 1, "appending keeps the one header");
    assert_eq!(text.split("\r\n").filter(|l| !l.is_empty()).count(), 4);
}

#[test]
fn csv_logger_quotes_fields_holding_its_separator_as_pythons_csv() {
    // Keras 3.15.1, CSVLogger(separator="_"), loss only, no validation: `epoch_loss_"val_loss"`.
    let tmp = temp_dir("csv_sep");
    let path = tmp.path().join("log.csv");
    let (x, y) = blobs(40, 7);
    let mut m = classifier(5);
    m.fit(&x, &y, quiet().epochs(1).callback(&mut CsvLogger::new(&path).separator("_"))).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("epoch_accuracy_loss_\"val_accuracy\"_\"val_loss\"\r\n0_"), "{text:?}");
    let err = m.fit(&x, &y, quiet().epochs(1).callback(&mut CsvLogger::new(&path).separator("::"))).unwrap_err();
    assert!(err.to_string().contains("1-character"), "{err}");
}

#[test]
fn initial_epoch_skips_the_first_epochs() {
    let (x, y) = blobs(32, 8);
    let mut m = classifier(6);
    let mut seen = Vec::new();
    let mut cb = LearningRateScheduler::new(move |epoch, lr| {
        seen.push(epoch);
        assert!(epoch >= 3, "epoch {epoch} should have been skipped");
        lr
    });
    let h = m.fit(&x, &y, quiet().epochs(5).initial_epoch(3).callback(&mut cb)).unwrap();
    assert_eq!(h.epochs(), 2, "epochs 3 and 4 only");
    assert_eq!(m.optimizer().unwrap().iterations(), 2);
    let h = m.fit(&x, &y, quiet().epochs(2).initial_epoch(2)).unwrap();
    assert_eq!(h.epochs(), 0);
}

/// A Python that can import TensorBoard: `KILN_TENSORBOARD_PYTHON`, else `python3`.
fn tensorboard_python() -> Option<String> {
    let python = std::env::var("KILN_TENSORBOARD_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python).args(["-c", "import tensorboard"]).output().is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

#[test]
fn tensorboard_files_load_in_tensorboards_reader() {
    let tmp = temp_dir("tb");
    let dir = tmp.path();
    let (x, y) = blobs(48, 9);
    let (xv, yv) = blobs(16, 10);
    let mut m = classifier(7);
    let mut tb = TensorBoard::new(dir).update_freq(UpdateFreq::Batches(2));
    let h = m.fit(&x, &y, quiet().epochs(3).batch_size(8).validation_data(&xv, &yv).callback(&mut tb)).unwrap();
    assert_eq!(tb.files().len(), 2);
    for (f, run) in tb.files().iter().zip(["train", "validation"]) {
        assert_eq!(f.parent().unwrap(), dir.join(run));
        assert!(f.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."));
    }
    let Some(python) = tensorboard_python() else {
        assert!(
            std::env::var_os("KILN_REQUIRE_TENSORBOARD").is_none(),
            "KILN_REQUIRE_TENSORBOARD is set but no Python can import tensorboard"
        );
        eprintln!("note: no Python with `tensorboard` (set KILN_TENSORBOARD_PYTHON); checked the files' layout only");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tensorboard/read_events.py");
    let out = Command::new(python).arg(script).arg(dir).output().unwrap();
    assert!(out.status.success(), "TensorBoard's reader failed: {}", String::from_utf8_lossy(&out.stderr));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let series = |run: &str, tag: &str| -> Vec<(i64, f64)> {
        read[run][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {run}/{tag} in {read}"))
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    };
    let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32 as f64).collect::<Vec<_>>();
    let steps_values =
        |s: Vec<(i64, f64)>| (s.iter().map(|p| p.0).collect::<Vec<_>>(), s.iter().map(|p| p.1).collect::<Vec<_>>());
    assert_eq!(steps_values(series("train", "epoch_loss")), (vec![0, 1, 2], as_f32(h.get("loss").unwrap())));
    assert_eq!(steps_values(series("train", "epoch_accuracy")).1, as_f32(h.get("accuracy").unwrap()));
    assert_eq!(steps_values(series("train", "epoch_learning_rate")).1, vec![0.01f32 as f64; 3]);
    assert_eq!(steps_values(series("validation", "epoch_loss")).1, as_f32(h.get("val_loss").unwrap()));
    assert_eq!(steps_values(series("validation", "evaluation_loss_vs_iterations")).0, vec![6, 12, 18]);
    // 6 batches per epoch, every second one logged, at the global batch count from 1.
    assert_eq!(steps_values(series("train", "batch_loss")).0, vec![2, 4, 6, 8, 10, 12, 14, 16, 18]);
}

/// Keras writes `learning_rate` into the logs before ReduceLROnPlateau reads its monitor:
/// monitoring the rate itself (mode min, patience 0, factor 0.5) halves it every other
/// epoch, `[0.01, 0.01, 0.005, 0.005]` in Keras 3.15.1.
#[test]
fn reduce_lr_on_plateau_can_monitor_the_learning_rate() {
    use kiln_trainer::callbacks::Mode;
    let (x, y) = blobs(32, 3);
    let mut m = classifier(2);
    let mut cb = ReduceLrOnPlateau::new("learning_rate").mode(Mode::Min).patience(0).factor(0.5);
    let h = m.fit(&x, &y, quiet().epochs(4).callback(&mut cb)).unwrap();
    let rates: Vec<f32> = h.get("learning_rate").unwrap().iter().map(|&v| v as f32).collect();
    assert_eq!(rates, [0.01, 0.01, 0.005, 0.005]);
    assert_eq!(cb.warning(), None);
}

/// `validation_split(0.0)` is Keras' default: no validation, not an error.
#[test]
fn a_validation_split_of_zero_holds_out_nothing() {
    let (x, y) = blobs(32, 3);
    let h = classifier(2).fit(&x, &y, quiet().epochs(1).validation_split(0.0)).unwrap();
    assert!(h.get("val_loss").is_none() && h.get("loss").is_some());
}

/// An Embedding's per-occurrence gradient refuses clipping (kiln cannot clip it as Keras
/// does), but a limit that is not above 0 clips nothing, in Keras as here.
#[test]
fn embedding_models_take_clipping_limits_that_clip_nothing() {
    use kiln_layers::{Activation, Dense, Embedding, Flatten};
    use kiln_optimizers::RMSprop;
    use kiln_tensor::{IdMatrix, Matrix};
    use kiln_trainer::{Features, Loss, NO_METRICS, Sequential};
    let ids = Features::Ids(IdMatrix::from_vec(8, 3, (0..24).map(|i| i % 10).collect()).unwrap());
    let y = Matrix::from_vec(8, 1, (0..8).map(|i| (i % 2) as f32).collect()).unwrap();
    for (limit, refused) in [(1.0, true), (0.0, false), (-1.0, false)] {
        let mut m = Sequential::new()
            .input_shape([3])
            .add(Embedding::new(10, 2))
            .add(Flatten::new())
            .add(Dense::new(1).activation(Activation::Sigmoid));
        m.compile(Optimizer::new(RMSprop::default(), 0.01).clipnorm(limit), Loss::binary_crossentropy(), NO_METRICS)
            .unwrap();
        let result = m.fit(&ids, &y, quiet().epochs(1));
        assert_eq!(result.is_err(), refused, "clipnorm {limit}: {result:?}");
    }
    let err = Optimizer::new(RMSprop::default(), 0.01).clipnorm(f64::INFINITY).validate().unwrap_err();
    assert!(err.contains("clipnorm"), "an infinite limit would reload as none: {err}");
}
