//! Keras' own callback tests, run on kiln's public API.
//!
//! `fixtures/keras_unit/callbacks.json` holds every ported case: the Keras test file and
//! test name, the Keras version, the callback's settings and the behaviour that test
//! asserts. Keras drives its callbacks by hand (`on_epoch_end(epoch, logs={...})`); kiln's
//! callbacks run inside `fit`, so a scripted callback placed before the one under test
//! writes the test's monitor values into the epoch's logs. Only tests whose assertion does
//! not depend on Keras' random data are ported; what was left out, and why, is in
//! `fixtures/keras_unit/LEFT_OUT_losses_metrics_callbacks.md`.

use std::path::PathBuf;

use kiln_layers::{Activation, Dense, Initializer};
use kiln_optimizers::{Adam, LearningRateSchedule, Optimizer, Sgd};
use kiln_tensor::Matrix;
use kiln_trainer::callbacks::{
    Callback, Control, EarlyStopping, Mode, ModelCheckpoint, ReduceLrOnPlateau, TerminateOnNaN,
};
use kiln_trainer::{F1Average, FitOptions, Logs, Loss, Metric, Sequential, TrainError, Verbosity, Weights};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras_unit").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Writes `values[epoch]` under `key` into each epoch's logs; with `weights_to_epoch`, also
/// sets every weight to the epoch number (Keras' `DummyModel.set_weight_to_epoch`).
struct Script {
    key: String,
    values: Vec<f64>,
    weights_to_epoch: bool,
}

impl Callback for Script {
    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if let Some(&v) = self.values.get(epoch) {
            ctl.add_log(self.key.clone(), v);
        }
        if self.weights_to_epoch {
            let mut w = ctl.model().get_weights();
            for t in &mut w.0 {
                t.values.iter_mut().for_each(|v| *v = epoch as f32);
            }
            ctl.model_mut().set_weights(&w)?;
        }
        Ok(())
    }
}

/// Asks to stop at one epoch (Keras' test setting `model.stop_training = True`).
struct StopAt(Option<usize>);

impl Callback for StopAt {
    fn on_epoch_end(&mut self, epoch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if self.0 == Some(epoch) {
            ctl.stop_training();
        }
        Ok(())
    }
}

/// Deterministic inputs in [0, 1) standing in for the tests' `np.random.random`.
fn inputs(rows: usize, cols: usize, salt: usize) -> Matrix {
    let data = (0..rows * cols).map(|i| ((i * 7919 + salt * 104_729) % 1000) as f32 / 1000.0).collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

/// One-hot labels of `classes` classes.
fn one_hot(rows: usize, classes: usize, salt: usize) -> Matrix {
    let mut y = Matrix::zeros(rows, classes);
    for i in 0..rows {
        y.as_mut_slice()[i * classes + (i * 3 + salt) % classes] = 1.0;
    }
    y
}

fn silent<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(Verbosity::Silent)
}

fn mode(v: &Value) -> Mode {
    serde_json::from_value(v.clone()).unwrap()
}

/// A small model compiled as the direction tests compile theirs (the metrics kiln has).
fn direction_model() -> Sequential {
    let mut model = Sequential::new()
        .add(Dense::new(1).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Relu));
    model.build(5).unwrap();
    let metrics = vec![
        Metric::from_keras("mse").unwrap(),
        Metric::from_keras("acc").unwrap(),
        Metric::from_keras("accuracy").unwrap(),
        Metric::F1Score { average: F1Average::Micro, threshold: None }.named("f1_score"),
    ];
    model.compile(Adam::default(), Loss::mean_squared_error(), metrics).unwrap();
    model
}

/// A model whose weights a [`Script`] can overwrite: `Dense(1)` on one input.
fn scripted_model() -> Sequential {
    let mut model = Sequential::new().add(Dense::new(1));
    model.build(1).unwrap();
    model.compile(Optimizer::new(Sgd::default(), 0.01), Loss::mean_squared_error(), kiln_trainer::NO_METRICS).unwrap();
    model
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Every weight of `w`, flattened.
fn flat(w: &Weights) -> Vec<f32> {
    w.0.iter().flat_map(|t| t.values.iter().copied()).collect()
}

/// Runs an EarlyStopping with the scripted monitor; returns it, the epochs trained and the
/// final weights.
fn scripted_early_stopping(p: &Value) -> Result<(EarlyStopping, usize, Vec<f32>), TrainError> {
    let values = f64s(&p["values"]);
    let monitor = p["monitor"].as_str().unwrap();
    let mut es = EarlyStopping::new(monitor)
        .patience(p["patience"].as_u64().unwrap_or(0) as usize)
        .mode(mode(&p["mode"]))
        .restore_best_weights(p["restore_best_weights"].as_bool().unwrap_or(false));
    if let Some(b) = p["baseline"].as_f64() {
        es = es.baseline(b);
    }
    if let Some(d) = p["min_delta"].as_f64() {
        es = es.min_delta(d);
    }
    let restore = es.restore_best_weights;
    let mut script = Script { key: monitor.to_string(), values: values.clone(), weights_to_epoch: restore };
    let mut stop = StopAt(p["external_stop_epoch"].as_u64().map(|e| e as usize));
    let mut model = scripted_model();
    let x = Matrix::from_rows(&[[1.0], [2.0]]).unwrap();
    let y = Matrix::from_rows(&[[1.0], [2.0]]).unwrap();
    let opts = silent().epochs(values.len()).callback(&mut script).callback(&mut es).callback(&mut stop);
    let history = model.fit(&x, &y, opts)?;
    let weights = flat(&model.get_weights());
    Ok((es, history.epochs(), weights))
}

/// The ReduceLROnPlateau tests' model: Dense(5), Dense(2), mse, Adam(0.1) (or a schedule).
fn reduce_lr_case(p: &Value) -> Result<f32, TrainError> {
    let mut model = Sequential::new().add(Dense::new(5)).add(Dense::new(2));
    model.build(3).unwrap();
    let optimizer = match p.get("schedule") {
        Some(s) => Optimizer::new(Adam::default(), serde_json::from_value::<LearningRateSchedule>(s.clone()).unwrap()),
        None => Optimizer::new(Adam::default(), 0.1),
    };
    model.compile(optimizer, Loss::mean_squared_error(), kiln_trainer::NO_METRICS)?;
    let mut cb = ReduceLrOnPlateau::new("val_loss")
        .patience(p["patience"].as_u64().unwrap() as usize)
        .factor(p["factor"].as_f64().unwrap())
        .min_delta(p["min_delta"].as_f64().unwrap())
        .min_lr(p["min_lr"].as_f64().unwrap_or(0.0))
        .cooldown(p["cooldown"].as_u64().unwrap_or(0) as usize);
    let (x, y, xv, yv) = (inputs(10, 3, 1), one_hot(10, 2, 0), inputs(10, 3, 2), one_hot(10, 2, 1));
    let opts = silent().epochs(p["epochs"].as_u64().unwrap() as usize).validation_data(&xv, &yv).callback(&mut cb);
    model.fit(&x, &y, opts)?;
    Ok(model.learning_rate().unwrap())
}

/// The ModelCheckpoint tests' model: Dense(5, relu), Dense(3, softmax), categorical CE, sgd,
/// accuracy logged as `acc`.
fn checkpoint_model() -> Sequential {
    let mut model = Sequential::new()
        .add(Dense::new(5).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    model.build(3).unwrap();
    model.compile(Sgd::default(), Loss::categorical_crossentropy(), [Metric::Accuracy.named("acc")]).unwrap();
    model
}

/// A fresh empty directory for one case's files.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln_keras_unit_cb_{}_{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn checkpoint_data() -> (Matrix, Matrix, Matrix, Matrix) {
    (inputs(30, 3, 3), one_hot(30, 3, 0), inputs(30, 3, 4), one_hot(30, 3, 1))
}

fn run_case(case: &Value, index: usize) -> Result<(), String> {
    let (p, expect) = (&case["params"], &case["expect"]);
    let err = |e: TrainError| format!("kiln refused: {e}");
    match case["scenario"].as_str().unwrap() {
        "monitor_op" => {
            let model = direction_model();
            let got = mode(&p["mode"]).maximizes(p["monitor"].as_str().unwrap(), &model, "MonitorCallback");
            match (expect["op"].as_str().unwrap(), got) {
                ("max", Ok(true)) | ("min", Ok(false)) | ("error", Err(_)) => Ok(()),
                (want, got) => Err(format!("Keras: {want}, kiln: {got:?}")),
            }
        }
        "early_stopping_monitor_op" => {
            let mut model = direction_model();
            let monitor = p["monitor"].as_str().unwrap();
            let mut script = Script { key: monitor.to_string(), values: f64s(&p["values"]), weights_to_epoch: false };
            let mut es =
                EarlyStopping::new(monitor).patience(p["patience"].as_u64().unwrap() as usize).mode(mode(&p["mode"]));
            let (x, y) = (
                inputs(10, 5, 5),
                Matrix::from_vec(10, 1, vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]).unwrap(),
            );
            let fit = model.fit(&x, &y, silent().epochs(2).batch_size(5).callback(&mut script).callback(&mut es));
            let got = match fit {
                Err(e) => format!("error ({e})"),
                Ok(_) => match es.stopped_epoch() {
                    None => "max".into(),
                    Some(1) => "min".into(),
                    Some(e) => format!("stopped at epoch {e}"),
                },
            };
            let want = expect["op"].as_str().unwrap();
            if got == want || (want == "error" && got.starts_with("error")) {
                Ok(())
            } else {
                Err(format!("Keras: {want}, kiln: {got}"))
            }
        }
        "early_stopping_scripted" => {
            let (es, epochs, weights) = scripted_early_stopping(p).map_err(err)?;
            if let Some(want) = expect.get("stopped_epoch") {
                let want = want.as_u64().unwrap() as usize;
                if es.stopped_epoch() != Some(want) {
                    return Err(format!("stopped_epoch: Keras {want}, kiln {:?}", es.stopped_epoch()));
                }
            }
            if let Some(want) = expect.get("epochs_trained")
                && epochs != want.as_u64().unwrap() as usize
            {
                return Err(format!("epochs trained: Keras {want}, kiln {epochs}"));
            }
            if let Some(want) = expect.get("restored_weight") {
                let want = want.as_f64().unwrap() as f32;
                if weights.iter().any(|&w| w != want) {
                    return Err(format!("restored weights: Keras {want}, kiln {weights:?}"));
                }
            }
            Ok(())
        }
        "is_improvement" => {
            let mut values: Vec<f64> = p["reference"].as_f64().into_iter().collect();
            values.push(p["value"].as_f64().unwrap());
            let last = values.len() - 1;
            let params = serde_json::json!({
                "monitor": "loss", "mode": p["mode"], "patience": 1, "min_delta": p["min_delta"], "values": values,
            });
            let (es, _, _) = scripted_early_stopping(&params).map_err(err)?;
            let got = es.best_epoch() == Some(last);
            let want = expect["improvement"].as_bool().unwrap();
            if got == want { Ok(()) } else { Err(format!("_is_improvement: Keras {want}, kiln {got}")) }
        }
        "reduce_lr_fit" => {
            let got = reduce_lr_case(p);
            if expect.get("error").is_some() {
                return match got {
                    Err(_) => Ok(()),
                    Ok(lr) => Err(format!("Keras raises, kiln trained on to rate {lr}")),
                };
            }
            let lr = got.map_err(err)?;
            let want = expect["learning_rate"].as_f64().unwrap();
            let tol = &expect["tolerance"];
            let ok = if tol.get("exact_f32").is_some() {
                lr == want as f32
            } else {
                (f64::from(lr) - want).abs()
                    <= tol["atol"].as_f64().unwrap() + tol["rtol"].as_f64().unwrap() * want.abs()
            };
            if ok { Ok(()) } else { Err(format!("learning rate: Keras {want}, kiln {lr}")) }
        }
        "model_checkpoint" => {
            let dir = temp_dir(&format!("ckpt{index}"));
            let path = dir.join("subdir").join("checkpoint");
            let mut cb = ModelCheckpoint::new(path.to_str().unwrap()).mode(mode(&p["mode"]));
            let monitor = p["monitor"].as_str().unwrap();
            if p["save_best_only"].as_bool().unwrap() {
                cb = cb.save_best_only(monitor);
            } else {
                cb.monitor = monitor.to_string();
            }
            let mut model = checkpoint_model();
            let (x, y, xv, yv) = checkpoint_data();
            model
                .fit(&x, &y, silent().epochs(1).batch_size(5).validation_data(&xv, &yv).callback(&mut cb))
                .map_err(err)?;
            let exists = path.exists();
            let _ = std::fs::remove_dir_all(&dir);
            if exists == expect["exists"].as_bool().unwrap() {
                Ok(())
            } else {
                Err(format!("checkpoint written: {exists}"))
            }
        }
        "model_checkpoint_loading" => {
            let dir = temp_dir(&format!("load{index}"));
            let weights_only = p["save_weights_only"].as_bool().unwrap();
            let path = dir.join(if weights_only { "checkpoint.weights.safetensors" } else { "checkpoint.model" });
            let mut cb =
                ModelCheckpoint::new(path.to_str().unwrap()).save_best_only("val_loss").save_weights_only(weights_only);
            let mut model = checkpoint_model();
            let (x, y, xv, yv) = checkpoint_data();
            model
                .fit(&x, &y, silent().epochs(1).batch_size(5).validation_data(&xv, &yv).callback(&mut cb))
                .map_err(err)?;
            let loaded = if weights_only {
                let mut fresh = checkpoint_model();
                fresh.load_weights(&path).map_err(err)?;
                fresh
            } else {
                Sequential::load(&path).map_err(err)?
            };
            let _ = std::fs::remove_dir_all(&dir);
            let (want, got) = (model.get_weights(), loaded.get_weights());
            if want.0.len() != got.0.len() {
                return Err(format!("{} weight tensors saved, {} loaded", want.0.len(), got.0.len()));
            }
            let tol = &expect["weights_close"];
            let (atol, rtol) = (tol["atol"].as_f64().unwrap(), tol["rtol"].as_f64().unwrap());
            for (r, w) in want.0.iter().zip(&got.0) {
                for (&a, &b) in r.values.iter().zip(&w.values) {
                    if (f64::from(b) - f64::from(a)).abs() > atol + rtol * f64::from(a).abs() {
                        return Err(format!("{}: saved {a}, loaded {b}", r.name));
                    }
                }
            }
            Ok(())
        }
        "terminate_on_nan" => {
            let mut model = Sequential::new();
            for _ in 0..5 {
                model = model.add(
                    Dense::new(2).activation(Activation::Relu).kernel_initializer(Initializer::Constant { value: 1e5 }),
                );
            }
            let mut model = model.add(Dense::new(2));
            model.build(3).unwrap();
            model.compile(Sgd::default(), Loss::mean_squared_error(), kiln_trainer::NO_METRICS).unwrap();
            let mut cb = TerminateOnNaN::default();
            let (x, y, xv, yv) = (inputs(10, 3, 6), one_hot(10, 2, 0), inputs(10, 3, 7), one_hot(10, 2, 1));
            let opts = silent()
                .epochs(p["epochs"].as_u64().unwrap() as usize)
                .batch_size(p["batch_size"].as_u64().unwrap() as usize)
                .validation_data(&xv, &yv)
                .callback(&mut cb);
            let history = model.fit(&x, &y, opts).map_err(err)?;
            let loss = history.get("loss").unwrap();
            let want = expect["history_len"].as_u64().unwrap() as usize;
            if loss.len() == want && !loss[0].is_finite() { Ok(()) } else { Err(format!("loss history {loss:?}")) }
        }
        "normal_training" => {
            let mut model = scripted_model();
            let mut cb = TerminateOnNaN::default();
            let x = Matrix::from_rows(&[[1.0], [2.0]]).unwrap();
            let history = model
                .fit(&x, &x.clone(), silent().epochs(p["epochs"].as_u64().unwrap() as usize).callback(&mut cb))
                .map_err(err)?;
            let want = expect["history_len"].as_u64().unwrap() as usize;
            if history.epochs() == want {
                Ok(())
            } else {
                Err(format!("{} epochs trained, Keras {want}", history.epochs()))
            }
        }
        "early_stopping_fit" => {
            let mut model = Sequential::new()
                .add(Dense::new(1).activation(Activation::Relu))
                .add(Dense::new(1).activation(Activation::Relu));
            model.build(5).unwrap();
            model.compile(Sgd::default(), Loss::mean_squared_error(), kiln_trainer::NO_METRICS).unwrap();
            let mut es = EarlyStopping::new("loss")
                .patience(p["patience"].as_u64().unwrap() as usize)
                .start_from_epoch(p["start_from_epoch"].as_u64().unwrap_or(0) as usize);
            if let Some(b) = p["baseline"].as_f64() {
                es = es.baseline(b);
            }
            let (x, y) = (inputs(100, 5, 8), inputs(100, 1, 9));
            let want = expect["min_epochs"].as_u64().unwrap() as usize;
            for _ in 0..p["fits"].as_u64().unwrap() {
                let opts = silent().epochs(p["epochs"].as_u64().unwrap() as usize).callback(&mut es);
                let history = model.fit(&x, &y, opts).map_err(err)?;
                if history.epochs() < want {
                    return Err(format!("{} epochs trained, Keras asserts at least {want}", history.epochs()));
                }
            }
            Ok(())
        }
        other => Err(format!("unknown scenario {other}")),
    }
}

#[test]
fn keras_callback_tests() {
    let data = fixture("callbacks.json");
    assert_eq!(data["keras_version"], "3.15.1");
    let cases = data["cases"].as_array().unwrap();
    let (mut failures, mut passed) = (Vec::new(), 0);
    for (i, case) in cases.iter().enumerate() {
        let name = format!("{} :: {}", case["file"].as_str().unwrap(), case["test"].as_str().unwrap());
        assert_eq!(case["keras_version"], "3.15.1", "{name}");
        if let Some(reason) = case.get("known_failure") {
            println!("SKIPPED (known failure) {name}: {reason}");
            continue;
        }
        match run_case(case, i) {
            Ok(()) => passed += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} Keras callback cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(passed >= 40, "only {passed} callback cases ran");
    println!("callbacks.json: {passed} Keras cases pass");
}
