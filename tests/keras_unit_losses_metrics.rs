//! Keras' own unit tests for losses and metrics, run on kiln's public standalone API.
//!
//! `fixtures/keras_unit/losses.json` and `metrics.json` hold every ported case: the Keras
//! test file and test name, the Keras version, the inputs, the expected number copied from
//! that file, and the tolerance that Keras test uses. Each case goes through
//! `Loss::call_weighted` (or `Loss::call_per_sample` for `reduction=None`) or
//! `Metric::standalone()` (`update_state` / `result`). A failure names the Keras file
//! and test. What was left out, and why, is in
//! `fixtures/keras_unit/LEFT_OUT_losses_metrics_callbacks.md`.

use std::path::PathBuf;

use kiln_tensor::Matrix;
use kiln_trainer::{Loss, Metric, Reduction, SampleWeight};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras_unit").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A JSON array of rows as a kiln matrix.
fn matrix(v: &Value) -> Matrix {
    let rows: Vec<Vec<f32>> = v
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("row").iter().map(|x| x.as_f64().expect("number") as f32).collect())
        .collect();
    Matrix::from_rows(&rows).expect("rectangular rows")
}

/// One weight per row, or `None` for JSON `null`.
fn weights(v: &Value) -> Option<Vec<f32>> {
    v.as_array().map(|w| w.iter().map(|x| x.as_f64().expect("number") as f32).collect())
}

/// `actual` against `expected` with the Keras test's own comparison: `decimal` is
/// `assertAlmostEqual` (numpy's `assert_almost_equal`: `|a − e| < 1.5·10⁻ᵈ`), `atol`/`rtol`
/// is `assertAllClose` (`|a − e| ≤ atol + rtol·|e|`), `exact` is `assertEqual`.
fn within(actual: f64, expected: f64, tol: &Value) -> Result<(), String> {
    let ok = if let Some(d) = tol.get("decimal") {
        (actual - expected).abs() < 1.5 * 10f64.powi(-(d.as_i64().unwrap() as i32))
    } else if tol.get("exact").is_some() {
        actual == expected
    } else {
        let (atol, rtol) = (tol["atol"].as_f64().unwrap(), tol["rtol"].as_f64().unwrap());
        (actual - expected).abs() <= atol + rtol * expected.abs()
    };
    if ok { Ok(()) } else { Err(format!("got {actual}, Keras expects {expected} (tolerance {tol})")) }
}

/// Runs every case of `file` through `run`; failures are collected and reported together,
/// each naming its Keras file and test; a case marked `known_failure` is skipped with its
/// reason printed.
fn run_cases(file: &str, run: impl Fn(&Value) -> Result<(), String>) -> usize {
    let data = fixture(file);
    assert_eq!(data["keras_version"], "3.15.1");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in cases {
        let name = format!("{} :: {}", case["file"].as_str().unwrap(), case["test"].as_str().unwrap());
        assert_eq!(case["keras_version"], "3.15.1", "{name}");
        if let Some(reason) = case.get("known_failure") {
            println!("SKIPPED (known failure) {name}: {reason}");
            continue;
        }
        match run(case) {
            Ok(()) => passed += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} Keras cases in {file} fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{file}: {passed} Keras cases pass");
    passed
}

/// A loss case's `sample_weight`: JSON null (none), a number (Keras' scalar), a list (one
/// per row) or a list of lists (a weight matrix).
fn loss_weight<'a>(v: &Value, rows: &'a mut Vec<f32>, m: &'a mut Option<Matrix>) -> Option<SampleWeight<'a>> {
    match v {
        Value::Null => None,
        Value::Number(n) => Some(SampleWeight::Scalar(n.as_f64().unwrap() as f32)),
        Value::Array(a) if a.first().is_some_and(Value::is_array) => Some(SampleWeight::Values(m.insert(matrix(v)))),
        Value::Array(_) => {
            *rows = weights(v).unwrap();
            Some(SampleWeight::PerSample(rows))
        }
        other => panic!("sample_weight {other}"),
    }
}

/// The loss a case names, with the options its Keras constructor sets.
fn case_loss(case: &Value) -> Result<Loss, String> {
    let name = case["loss"].as_str().unwrap();
    let mut loss = Loss::from_keras(name)
        .ok_or_else(|| format!("kiln has no loss `{name}`"))?
        .with_from_logits(case["from_logits"].as_bool().unwrap());
    if let Some(r) = case.get("reduction") {
        loss = loss.with_reduction(Reduction::from_keras(r.as_str())?);
    }
    if let Some(ls) = case.get("label_smoothing") {
        loss = loss.with_label_smoothing(ls.as_f64().unwrap() as f32).map_err(|e| e.to_string())?;
    }
    if let Some(c) = case.get("ignore_class") {
        loss = loss.with_ignore_class(Some(c.as_i64().unwrap() as i32)).map_err(|e| e.to_string())?;
    }
    Ok(loss)
}

fn loss_case(case: &Value) -> Result<(), String> {
    let loss = case_loss(case)?;
    let (y_true, y_pred) = (matrix(&case["y_true"]), matrix(&case["y_pred"]));
    let (mut rows, mut m) = (Vec::new(), None);
    let w = loss_weight(&case["sample_weight"], &mut rows, &mut m);
    // Keras' reduction=None: one value per sample, each compared at the test's tolerance.
    if let Some(expected) = case["expected"].as_array() {
        let values = loss.call_per_sample(&y_true, &y_pred, w).map_err(|e| format!("kiln refused: {e}"))?;
        if values.len() != expected.len() {
            return Err(format!("got {} values, Keras expects {}", values.len(), expected.len()));
        }
        for (i, (v, e)) in values.iter().zip(expected).enumerate() {
            within(f64::from(*v), e.as_f64().unwrap(), &case["tolerance"]).map_err(|err| format!("[{i}]: {err}"))?;
        }
        return Ok(());
    }
    let result = loss.call_weighted(&y_true, &y_pred, w);
    if case.get("expect_error").is_some() {
        return match result {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("Keras raises, kiln returned {v}")),
        };
    }
    let value = result.map_err(|e| format!("kiln refused: {e}"))?;
    within(f64::from(value), case["expected"].as_f64().unwrap(), &case["tolerance"])
}

fn metric_case(case: &Value) -> Result<(), String> {
    let expect_error = case.get("expect_error").and_then(Value::as_str);
    let metric: Metric = match serde_json::from_value(case["metric"].clone()) {
        Ok(m) => m,
        Err(e) if expect_error == Some("config") => {
            let _ = e;
            return Ok(());
        }
        Err(e) => return Err(format!("metric {} not readable: {e}", case["metric"])),
    };
    // Keras' `AUC.thresholds` (ends included) and `num_thresholds`.
    if let Some(want) = case.get("auc_thresholds") {
        let got = metric.auc_thresholds().ok_or("not an AUC")?;
        let n = want["num_thresholds"].as_u64().unwrap() as usize;
        if got.len() != n {
            return Err(format!("num_thresholds {}, Keras {n}", got.len()));
        }
        for (i, (g, w)) in got.iter().zip(want["expected"].as_array().unwrap()).enumerate() {
            within(f64::from(*g), w.as_f64().unwrap(), &want["tolerance"])
                .map_err(|e| format!("threshold {i}: {e}"))?;
        }
    }
    let mut m = metric.standalone();
    for update in case["updates"].as_array().unwrap() {
        let (y_true, y_pred) = (matrix(&update["y_true"]), matrix(&update["y_pred"]));
        let w = weights(&update["sample_weight"]);
        if let Err(e) = m.update_state(&y_true, &y_pred, w.as_deref()) {
            return match (expect_error, &e) {
                (Some("config"), kiln_trainer::TrainError::Config(_))
                | (Some("input"), kiln_trainer::TrainError::Input(_)) => Ok(()),
                _ => Err(format!("update_state refused: {e}")),
            };
        }
    }
    if let Some(kind) = expect_error {
        return Err(format!("Keras raises ({kind}), kiln computed {}", m.result()));
    }
    // An array: Keras' result of an F-score with average=None (one score per class), or of
    // Precision/Recall with a list of thresholds (one value per threshold).
    if let Some(want) = case["expected"].as_array() {
        let got = m
            .result_per_class()
            .or_else(|| m.result_per_threshold())
            .ok_or("kiln gives one number, Keras one per class or threshold")?;
        if got.len() != want.len() {
            return Err(format!("{} values, Keras {}", got.len(), want.len()));
        }
        for (c, (g, w)) in got.iter().zip(want).enumerate() {
            within(f64::from(*g), w.as_f64().unwrap(), &case["tolerance"]).map_err(|e| format!("[{c}]: {e}"))?;
        }
        return Ok(());
    }
    // The Keras test asserts no result (only the numbers checked above).
    if case["expected"].is_null() {
        return Ok(());
    }
    within(f64::from(m.result()), case["expected"].as_f64().unwrap(), &case["tolerance"])
}

#[test]
fn keras_losses_test_golden_values() {
    let passed = run_cases("losses.json", loss_case);
    assert!(passed >= 53, "only {passed} loss cases ran");
}

#[test]
fn keras_metrics_tests_golden_values() {
    let passed = run_cases("metrics.json", metric_case);
    assert!(passed >= 176, "only {passed} metric cases ran");
}

/// The arguments Keras refuses when a metric is made are refused by `compile` too, not
/// only by `standalone()`'s first update (an AUC without thresholds used to reach `fit`
/// and panic there).
#[test]
fn compile_refuses_the_metric_arguments_keras_refuses() {
    use kiln_layers::Dense;
    use kiln_optimizers::Sgd;
    use kiln_trainer::{AucCurve, AucSummation, F1Average, Sequential};
    let bad = [
        (Metric::F1Score { average: F1Average::Macro, threshold: Some(1.1) }, "threshold"),
        (Metric::F1Score { average: F1Average::Micro, threshold: Some(0.0) }, "threshold"),
        (
            Metric::Auc {
                num_thresholds: 0,
                curve: AucCurve::Roc,
                summation_method: AucSummation::Interpolation,
                from_logits: false,
                thresholds: None,
            },
            "num_thresholds",
        ),
    ];
    for (metric, argument) in bad {
        let mut model = Sequential::new().add(Dense::new(2));
        let err = model.compile(Sgd::default(), Loss::binary_crossentropy(), [&metric]).unwrap_err().to_string();
        assert!(err.contains(argument) && err.contains(metric.keras_name()), "{err}");
    }
}

/// `average=None` is one score per class: standalone gives the vector, `compile` refuses it
/// by name (a log key holds one number).
#[test]
fn per_class_fbeta_is_standalone_only() {
    use kiln_layers::Dense;
    use kiln_optimizers::Sgd;
    use kiln_trainer::{F1Average, Sequential};
    let metric = Metric::FBetaScore { beta: 2.0, average: F1Average::PerClass, threshold: None };
    let mut model = Sequential::new().add(Dense::new(2));
    let err = model.compile(Sgd::default(), Loss::categorical_crossentropy(), [&metric]).unwrap_err().to_string();
    assert!(err.contains("fbeta_score") && err.contains("average=None"), "{err}");
    let mut m = metric.standalone();
    assert_eq!(m.result_per_class(), Some(vec![]));
    let y = Matrix::from_rows(&[[1.0, 0.0], [0.0, 1.0]]).unwrap();
    m.update_state(&y, &y, None).unwrap();
    assert_eq!(m.result_per_class().map(|v| v.len()), Some(2));
    assert!(m.result().is_nan());
    assert_eq!(Metric::MeanSquaredError.standalone().result_per_class(), None);
}

/// Per-value weights go only where Keras weighs values; other lengths name both allowed.
#[test]
fn element_wise_weights_are_checked() {
    let y = Matrix::from_rows(&[[1.0, 0.0], [0.0, 1.0]]).unwrap();
    let mut mse = Metric::MeanSquaredError.standalone();
    let err = mse.update_state(&y, &y, Some(&[1.0, 1.0, 1.0, 1.0])).unwrap_err().to_string();
    assert!(err.contains("one weight per row"), "{err}");
    let err = mse.update_state(&y, &y, Some(&[1.0, 1.0, 1.0])).unwrap_err().to_string();
    assert!(err.contains("3 values") && err.contains("2x2"), "{err}");
    let mut p = Metric::precision().standalone();
    p.update_state(&y, &y, Some(&[1.0, 0.0, 0.0, 1.0])).unwrap();
    assert_eq!(p.result(), 1.0);
}

/// As `compile_utils.get_metric`: the string `accuracy` resolves by shape in any case, and
/// a string is its own log key; a serialized `Accuracy` class is exact match, logged as
/// `accuracy`; `mse` and the crossentropies are metrics that go down.
#[test]
fn keras_names_of_the_new_metrics() {
    use kiln_trainer::Direction;
    assert_eq!(Metric::from_keras("accuracy").unwrap().metric, Metric::Accuracy);
    let shaped = Metric::from_keras("Accuracy").unwrap();
    assert_eq!((shaped.metric, shaped.name.as_str()), (Metric::Accuracy, "Accuracy"));
    let exact = Metric::from_keras_class("Accuracy").unwrap();
    assert_eq!((exact.metric, exact.name.as_str()), (Metric::ExactAccuracy, "accuracy"));
    for name in
        ["mse", "MSE", "bce", "binary_crossentropy", "CategoricalCrossentropy", "sparse_categorical_crossentropy"]
    {
        assert_eq!(Metric::from_keras(name).unwrap().metric.direction(), Direction::Down, "{name}");
    }
    assert_eq!(Metric::from_keras("MeanSquaredError").unwrap().name, "MeanSquaredError");
    assert_eq!(Metric::from_keras_class("MeanSquaredError").unwrap().name, "mean_squared_error");
}

/// Precision and Recall with a list of thresholds: one value per threshold, standalone only
/// (`compile` refuses it by name, as each log key holds one number); one threshold in a
/// list is one number, as Keras' `result()` gives `result[0]`.
#[test]
fn per_threshold_precision_and_recall_are_standalone_only() {
    use kiln_layers::Dense;
    use kiln_optimizers::Sgd;
    use kiln_trainer::Sequential;
    let y_true = Matrix::from_rows(&[[0.0], [1.0], [1.0], [0.0]]).unwrap();
    let y_pred = Matrix::from_rows(&[[1.0], [0.0], [0.6], [0.0]]).unwrap();
    for (metric, name) in [
        (Metric::Precision { thresholds: Some(vec![0.5, 0.7].into()), top_k: None, class_id: None }, "precision"),
        (Metric::Recall { thresholds: Some(vec![0.5, 0.7].into()), top_k: None, class_id: None }, "recall"),
    ] {
        assert!(metric.is_per_threshold());
        let mut model = Sequential::new().add(Dense::new(1));
        let err = model.compile(Sgd::default(), Loss::binary_crossentropy(), [&metric]).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("2 thresholds") && err.contains("result_per_threshold"), "{err}");
        let mut m = metric.standalone();
        assert_eq!(m.result_per_threshold(), Some(vec![0.0, 0.0]));
        m.update_state(&y_true, &y_pred, None).unwrap();
        assert_eq!(m.result_per_threshold(), Some(vec![0.5, 0.0]));
        assert!(m.result().is_nan());
        assert_eq!(m.result_per_class(), None);
        m.reset_state();
        assert_eq!(m.result_per_threshold(), Some(vec![0.0, 0.0]));
    }
    let one = Metric::Precision { thresholds: Some(vec![0.5].into()), top_k: None, class_id: None };
    assert!(!one.is_per_threshold());
    let mut m = one.standalone();
    m.update_state(&y_true, &y_pred, None).unwrap();
    assert_eq!((m.result(), m.result_per_threshold()), (0.5, None));
    // Keras' `assert_thresholds_range`, and an empty list.
    for (bad, why) in [(vec![0.5, 1.5], "[0, 1]"), (vec![], "at least one")] {
        let metric = Metric::Recall { thresholds: Some(bad.into()), top_k: None, class_id: None };
        let err = metric.clone().standalone().update_state(&y_true, &y_pred, None).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
        let mut model = Sequential::new().add(Dense::new(1));
        let err = model.compile(Sgd::default(), Loss::binary_crossentropy(), [metric]).unwrap_err().to_string();
        assert!(err.contains("recall") && err.contains(why), "{err}");
    }
}

/// AUC with explicit thresholds is one number: it trains in `fit`, and `evaluate` logs what
/// the standalone metric computes on the same predictions (sums of ones: exact).
#[test]
fn auc_with_explicit_thresholds_in_fit_and_evaluate() {
    use kiln_layers::{Activation, Dense};
    use kiln_optimizers::Sgd;
    use kiln_trainer::{AucCurve, AucSummation, FitOptions, Sequential, Verbosity};
    let auc = Metric::Auc {
        num_thresholds: 200,
        curve: AucCurve::Roc,
        summation_method: AucSummation::Interpolation,
        from_logits: false,
        thresholds: Some(vec![0.7, 0.3, 0.45].into()),
    };
    let x = Matrix::from_rows(&[[0.1, 0.9], [0.8, 0.2], [0.4, 0.5], [0.9, 0.7], [0.3, 0.1], [0.6, 0.6]]).unwrap();
    let y = Matrix::from_rows(&[[0.0], [1.0], [0.0], [1.0], [0.0], [1.0]]).unwrap();
    let mut model = Sequential::new().seed(3).add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(Sgd::default(), Loss::binary_crossentropy(), [auc.clone().named("auc_t")]).unwrap();
    let history = model.fit(&x, &y, FitOptions::default().epochs(2).batch_size(4).verbose(Verbosity::Silent)).unwrap();
    assert_eq!(history.get("auc_t").map(<[f64]>::len), Some(2));
    let logs = model.evaluate(&x, &y, 4).unwrap();
    let y_pred = model.predict(&x, 4).unwrap();
    let mut m = auc.standalone();
    m.update_state(&y, &y_pred, None).unwrap();
    assert_eq!(logs.get("auc_t"), Some(f64::from(m.result())));
    assert!((0.0..=1.0).contains(&m.result()));
}

/// `AUCTest.test_config_manual_thresholds` (keras/src/metrics/confusion_metrics_test.py,
/// Keras 3.15.1): the config Keras' `get_config` writes for `AUC(num_thresholds=None,
/// curve="PR", summation_method="majoring", name="auc_1", thresholds=[0.3, 0.5])` imports
/// with its name, curve, summation and thresholds (`num_thresholds` 4, thresholds
/// `[0, 0.3, 0.5, 1]` ± ε), and kiln's own serialized form reads back equal.
#[test]
fn auc_manual_thresholds_config_round_trip() {
    use kiln_layers::Dense;
    use kiln_trainer::{AucCurve, AucSummation, NamedMetric, Sequential};
    let config = serde_json::json!({"optimizer": {"name": "sgd"}, "loss": "binary_crossentropy", "metrics": [
        {"module": "keras.metrics", "class_name": "AUC", "config": {
            "name": "auc_1", "dtype": "float32", "num_thresholds": 4, "curve": "PR",
            "summation_method": "majoring", "multi_label": false, "num_labels": null, "label_weights": null,
            "from_logits": false, "thresholds": [0.3, 0.5]}}]});
    let mut model = Sequential::new().add(Dense::new(1));
    kiln_keras::compile_from_keras(&mut model, &config).unwrap();
    let named = model.metrics()[0].clone();
    assert_eq!(named.name, "auc_1");
    let Metric::Auc { curve, summation_method, thresholds, .. } = &named.metric else { panic!("{named:?}") };
    assert_eq!((*curve, *summation_method), (AucCurve::Pr, AucSummation::Majoring));
    assert_eq!(thresholds.as_ref().map(|t| t.as_slice().to_vec()), Some(vec![0.3, 0.5]));
    let all = named.metric.auc_thresholds().unwrap();
    assert_eq!(all.len(), 4);
    for (got, want) in all.iter().zip([0.0, 0.3, 0.5, 1.0]) {
        assert!((f64::from(*got) - want).abs() <= 1e-6 + 1e-6 * want, "{all:?}");
    }
    let text = serde_json::to_string(&named).unwrap();
    assert!(text.contains("\"thresholds\":[0.3,0.5]"), "{text}");
    assert_eq!(serde_json::from_str::<NamedMetric>(&text).unwrap(), named);
    // An AUC saved before `thresholds` existed reads back with none.
    let old: Metric = serde_json::from_str(
        r#"{"auc": {"num_thresholds": 3, "curve": "ROC", "summation_method": "interpolation", "from_logits": false}}"#,
    )
    .unwrap();
    assert_eq!(old.auc_thresholds().map(|t| t.len()), Some(3));
    // Several Precision thresholds in a Keras config are refused by name (scalar logs).
    let config = serde_json::json!({"optimizer": {"name": "sgd"}, "loss": "binary_crossentropy", "metrics": [
        {"class_name": "Precision", "config": {"name": "p", "thresholds": [0.5, 0.7]}}]});
    let err = kiln_keras::compile_from_keras(&mut Sequential::new().add(Dense::new(1)), &config).unwrap_err();
    assert!(err.to_string().contains("thresholds"), "{err}");
}
