//! Keras' own unit tests for optimizers, learning-rate schedules and regularizers (Keras
//! 3.15.1), run through kiln's public API at each test's own tolerance.
//!
//! The cases are data, in `fixtures/keras_unit/{optimizers,schedules,regularizers}.json`:
//! each names its Keras file and test, its inputs and the numbers copied from that test.
//! The tests Keras has that are not ported are listed, with the reason, in
//! `fixtures/keras_unit/LEFT_OUT.md`. A case marked `known_failure` is skipped with its
//! reason printed; every other case must pass. Nothing is printed on success.

use std::path::Path;

use kiln::prelude::*;
use kiln::regularizers::Regularizer;
use kiln_keras::{compile_from_keras, model_from_keras, optimizer_from_keras, regularizer_from_keras};
use kiln_optimizers::LearningRate;
use serde_json::{Value, json};

/// One fixture file: its cases, and the file-level data they refer to.
fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras_unit").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(doc["keras_version"], "3.15.1", "{}", path.display());
    doc
}

/// Runs every case of a fixture with `run`; panics listing each failing case by its Keras
/// file and test. Returns how many cases ran.
fn run_all(doc: &Value, run: impl Fn(&Value, &Value) -> Result<(), String>) -> usize {
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in doc["cases"].as_array().expect("cases") {
        let name = format!("{} :: {}", case["file"].as_str().unwrap_or("?"), case["test"].as_str().unwrap_or("?"));
        if let Some(why) = case.get("known_failure").and_then(Value::as_str) {
            println!("SKIPPED (known failure) {name}: {why}");
            continue;
        }
        ran += 1;
        if let Err(e) = run(doc, case) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} Keras test case(s) failed:\n{}", failures.len(), failures.join("\n"));
    ran
}

/// `numpy.testing.assert_allclose`: `|actual − expected| ≤ atol + rtol·|expected|`.
fn all_close(actual: &[f64], expected: &[f64], atol: f64, rtol: f64) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!("{} values, expected {}", actual.len(), expected.len()));
    }
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        // Written so that a NaN fails.
        let within = (a - e).abs() <= atol + rtol * e.abs();
        if !within {
            return Err(format!("value {i}: kiln {a}, Keras {e} (atol {atol}, rtol {rtol}); kiln {actual:?}"));
        }
    }
    Ok(())
}

/// The case's comparison: `assertAlmostEqual(decimal=d)` (`|a − e| < 1.5·10⁻ᵈ`) when it
/// says so, else `assertAllClose` with its `atol`/`rtol` (Keras' defaults 1e-6).
fn compare(case: &Value, actual: &[f64], expected: &[f64]) -> Result<(), String> {
    if let Some(d) = case.get("almost_equal_decimal").and_then(Value::as_i64) {
        let tol = 1.5 * 10f64.powi(-(d as i32));
        return all_close(actual, expected, tol, 0.0);
    }
    let atol = case.get("atol").and_then(Value::as_f64).unwrap_or(1e-6);
    let rtol = case.get("rtol").and_then(Value::as_f64).unwrap_or(1e-6);
    all_close(actual, expected, atol, rtol)
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list of numbers").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    numbers(v).into_iter().map(|x| x as f32).collect()
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Every argument the Keras config sets (but `name`) has the same value in kiln's own
/// serialized config: `run_class_serialization_test`'s check that a config survives.
fn config_keeps_arguments(keras_config: &Value, kiln_config: &Value) -> Result<(), String> {
    let args = keras_config.get("config").and_then(Value::as_object).ok_or("the Keras config has no arguments")?;
    for (key, want) in args.iter().filter(|(k, _)| k.as_str() != "name") {
        let got = kiln_config.get(key).ok_or_else(|| format!("kiln's config lacks `{key}`: {kiln_config}"))?;
        let same = match (got, want) {
            (Value::Number(_), Value::Number(_)) | (Value::Array(_), Value::Array(_)) => {
                let (g, w) =
                    if got.is_number() { (vec![got.clone()], vec![want.clone()]) } else { (as_vec(got), as_vec(want)) };
                all_close(&numbers(&Value::Array(g)), &numbers(&Value::Array(w)), 1e-6, 1e-6).is_ok()
            }
            _ => got == want,
        };
        if !same {
            return Err(format!("`{key}`: kiln {got}, Keras {want}"));
        }
    }
    Ok(())
}

fn as_vec(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// Fails unless `result` is an error whose message names every one of `names`.
fn refused<T>(result: Result<T, String>, names: &Value) -> Result<(), String> {
    let Err(message) = result else { return Err("accepted; Keras raises".into()) };
    for name in names.as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !message.contains(name) {
            return Err(format!("the error does not name `{name}`: {message}"));
        }
    }
    Ok(())
}

// --- optimizers -------------------------------------------------------------------

fn optimizer(case: &Value) -> Result<Optimizer, String> {
    optimizer_from_keras(&case["optimizer"]).map_err(|e| e.to_string())
}

/// The case's optimizer with its `exclude_from_weight_decay` (`var_names`, or `var_list`
/// as parameter names), if any.
fn optimizer_excluding(case: &Value) -> Result<Optimizer, String> {
    let strings = |key: &str| -> Vec<String> {
        as_vec(&case["exclude_from_weight_decay"][key]).iter().filter_map(|v| v.as_str().map(String::from)).collect()
    };
    let opt = optimizer(case)?
        .exclude_from_weight_decay(strings("var_names"))
        .exclude_params_from_weight_decay(strings("var_list"));
    opt.validate()?;
    Ok(opt)
}

/// Applies the case's gradients step by step (`apply_gradients`), checking each
/// expectation after its step (a `null` expected value is not asserted).
fn optimizer_steps(case: &Value) -> Result<(), String> {
    let mut values: Vec<Vec<f32>> = case["initial"].as_array().unwrap().iter().map(f32s).collect();
    let name = |i: usize| case["names"].get(i).and_then(Value::as_str).map_or(format!("var{i}"), String::from);
    let params: Vec<(String, usize)> = values.iter().enumerate().map(|(i, v)| (name(i), v.len())).collect();
    let fresh = case.get("fresh_optimizer_each_step").and_then(Value::as_bool).unwrap_or(false);
    let mut opt = optimizer_excluding(case)?;
    opt.build(&params);
    let check = |after: usize, opt: &Optimizer, values: &[Vec<f32>]| -> Result<(), String> {
        for e in case["expect"].as_array().unwrap().iter().filter(|e| e["after_steps"] == after) {
            if let Some(n) = e.get("iterations")
                && opt.iterations() != n.as_u64().unwrap()
            {
                return Err(format!("after {after} steps: iterations {}, Keras {n}", opt.iterations()));
            }
            for (k, want) in e.get("values").and_then(Value::as_array).into_iter().flatten().enumerate() {
                if want.is_null() {
                    continue;
                }
                compare(case, &widen(&values[k]), &numbers(want))
                    .map_err(|m| format!("after {after} steps, variable {k}: {m}"))?;
            }
        }
        Ok(())
    };
    check(0, &opt, &values)?;
    for (step, grads) in case["grads"].as_array().unwrap().iter().enumerate() {
        if fresh {
            opt = optimizer_excluding(case)?;
            opt.build(&params);
        }
        let mut grads: Vec<Vec<f32>> = grads.as_array().unwrap().iter().map(f32s).collect();
        opt.begin_step(grads.iter().map(Vec::as_slice));
        for (i, (v, g)) in values.iter_mut().zip(&mut grads).enumerate() {
            opt.update(i, v, g);
        }
        opt.finish_step();
        check(step + 1, &opt, &values)?;
    }
    Ok(())
}

/// The gradients after the optimizer's clipping (`_clip_gradients`): `update` clips the
/// gradient buffers in place before it uses them.
fn optimizer_clip(case: &Value) -> Result<(), String> {
    let mut grads: Vec<Vec<f32>> = case["grads"].as_array().unwrap().iter().map(f32s).collect();
    let mut opt = optimizer(case)?;
    opt.build(&grads.iter().enumerate().map(|(i, g)| (format!("var{i}"), g.len())).collect::<Vec<_>>());
    opt.begin_step(grads.iter().map(Vec::as_slice));
    for (i, g) in grads.iter_mut().enumerate() {
        opt.update(i, &mut vec![0.0; g.len()], g);
    }
    for (g, want) in grads.iter().zip(case["expected"].as_array().unwrap()) {
        compare(case, &widen(g), &numbers(want))?;
    }
    Ok(())
}

/// The Keras config imports with every argument kept, and kiln's config of it round-trips.
fn optimizer_config(case: &Value) -> Result<(), String> {
    let opt = optimizer(case)?;
    let saved = serde_json::to_value(&opt).map_err(|e| e.to_string())?;
    config_keeps_arguments(&case["optimizer"], &saved)?;
    if saved["type"] != case["optimizer"]["class_name"] {
        return Err(format!("kiln type {}, Keras class {}", saved["type"], case["optimizer"]["class_name"]));
    }
    let revived: Optimizer = serde_json::from_value(saved.clone()).map_err(|e| e.to_string())?;
    let again = serde_json::to_value(&revived).map_err(|e| e.to_string())?;
    if again != saved { Err(format!("round trip changed the config: {saved} → {again}")) } else { Ok(()) }
}

#[test]
fn keras_optimizer_tests_pass() {
    let doc = fixture("optimizers.json");
    let ran = run_all(&doc, |_, case| match case["kind"].as_str().unwrap() {
        "steps" => optimizer_steps(case),
        "clip" => optimizer_clip(case),
        "config" => optimizer_config(case),
        "get" => {
            let saved = serde_json::to_value(optimizer(case)?).map_err(|e| e.to_string())?;
            if saved["type"] == case["expected_type"] { Ok(()) } else { Err(format!("got {}", saved["type"])) }
        }
        "error" => refused(optimizer(case), &case["message_names"]),
        other => Err(format!("unknown case kind {other}")),
    });
    assert!(ran >= 30, "only {ran} optimizer cases ran");
}

// --- learning-rate schedules ------------------------------------------------------

/// The case's schedule, imported as Keras serializes it, as an optimizer's learning rate.
fn scheduled(case: &Value) -> Result<Optimizer, String> {
    optimizer_from_keras(&json!({"class_name": "SGD", "config": {"learning_rate": case["schedule"]}}))
        .map_err(|e| e.to_string())
}

/// `decayed_lr(step)`: the optimizer's learning rate at iteration `step`; a negative or
/// fractional step (a Keras float variable) goes through `LearningRateSchedule::at_float`.
fn schedule_values(case: &Value) -> Result<(), String> {
    let mut opt = scheduled(case)?;
    for point in case["points"].as_array().unwrap() {
        let got = match point["step"].as_u64() {
            Some(step) => {
                opt.set_iterations(step);
                opt.learning_rate()
            }
            None => {
                let LearningRate::Schedule(schedule) = opt.learning_rate_config() else {
                    return Err("not a schedule".into());
                };
                schedule.at_float(point["step"].as_f64().unwrap() as f32)
            }
        };
        let want = point["expected"].as_f64().unwrap();
        compare(case, &[got as f64], &[want])
            .map_err(|m| format!("step {}: {m} [expected: {}]", point["step"], point["expected_expr"]))?;
    }
    Ok(())
}

fn schedule_config(case: &Value) -> Result<(), String> {
    let opt = scheduled(case)?;
    let LearningRate::Schedule(schedule) = opt.learning_rate_config() else { return Err("not a schedule".into()) };
    let saved = serde_json::to_value(schedule).map_err(|e| e.to_string())?;
    config_keeps_arguments(&case["schedule"], &saved)?;
    if saved["type"] != case["schedule"]["class_name"] {
        return Err(format!("kiln type {}, Keras class {}", saved["type"], case["schedule"]["class_name"]));
    }
    let revived: LearningRateSchedule = serde_json::from_value(saved.clone()).map_err(|e| e.to_string())?;
    if &revived != schedule { Err(format!("round trip changed {saved}")) } else { Ok(()) }
}

/// `model.fit` with a scheduled optimizer: the loss of each epoch and the iteration count.
fn schedule_fit(case: &Value) -> Result<(), String> {
    let mut model = model_from_keras(&case["model"]).map_err(|e| e.to_string())?;
    compile_from_keras(&mut model, &case["compile"]).map_err(|e| e.to_string())?;
    let matrix = |v: &Value| {
        let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
        Matrix::from_vec(rows.len(), rows[0].len(), rows.concat()).unwrap()
    };
    let (x, y) = (matrix(&case["x"]), matrix(&case["y"]));
    let fit = &case["fit"];
    let options = FitOptions::default()
        .epochs(fit["epochs"].as_u64().unwrap() as usize)
        .batch_size(fit["batch_size"].as_u64().unwrap() as usize)
        .shuffle(fit["shuffle"].as_bool().unwrap())
        .verbose(Verbosity::Silent);
    let history = model.fit(&x, &y, options).map_err(|e| e.to_string())?;
    let loss: Vec<f64> = history.get("loss").ok_or("no loss in the history")?.to_vec();
    compare(case, &loss, &numbers(&case["expected_loss"]))?;
    let iterations = model.optimizer().map(Optimizer::iterations);
    if iterations != case["expected_iterations"].as_u64() {
        return Err(format!("iterations {iterations:?}, Keras {}", case["expected_iterations"]));
    }
    Ok(())
}

#[test]
fn keras_learning_rate_schedule_tests_pass() {
    let doc = fixture("schedules.json");
    let ran = run_all(&doc, |_, case| match case["kind"].as_str().unwrap() {
        "values" => schedule_values(case),
        "config" => schedule_config(case),
        "fit" => schedule_fit(case),
        other => Err(format!("unknown case kind {other}")),
    });
    assert!(ran >= 25, "only {ran} schedule cases ran");
}

// --- regularizers -----------------------------------------------------------------

fn regularizer(v: &Value) -> Result<Box<dyn Regularizer>, String> {
    regularizer_from_keras(v).map_err(|e| e.to_string())?.ok_or_else(|| "no regularizer".to_string())
}

/// The case's input: a list, or the name of a list the fixture file holds.
fn input(doc: &Value, v: &Value) -> Vec<f32> {
    match v.as_str() {
        Some(name) => f32s(&doc[name]),
        None => f32s(v),
    }
}

fn penalty(reg: &dyn Regularizer, values: &[f32]) -> Result<f64, String> {
    reg.penalty(values).map(f64::from).map_err(|e| e.to_string())
}

fn regularizer_case(doc: &Value, case: &Value) -> Result<(), String> {
    match case["kind"].as_str().unwrap() {
        "penalty" => {
            let got = penalty(regularizer(&case["regularizer"])?.as_ref(), &input(doc, &case["value"]))?;
            compare(case, &[got], &[case["expected"].as_f64().unwrap()])
                .map_err(|m| format!("{m} [expected: {}]", case["expected_expr"]))
        }
        "same" => {
            let reg = regularizer(&case["regularizer"])?;
            let other = &case["other"];
            let other_reg = other.get("regularizer").map(regularizer).transpose()?;
            let value = input(doc, &case["value"]);
            let other_value = other.get("value").map(|v| input(doc, v)).unwrap_or_else(|| value.clone());
            let a = penalty(reg.as_ref(), &value)?;
            let b = penalty(other_reg.as_deref().unwrap_or(reg.as_ref()), &other_value)?;
            compare(case, &[a], &[b])
        }
        "order" => {
            let value = input(doc, &case["value"]);
            let larger = penalty(regularizer(&case["larger"])?.as_ref(), &value)?;
            let smaller = penalty(regularizer(&case["smaller"])?.as_ref(), &value)?;
            if larger > smaller { Ok(()) } else { Err(format!("{larger} is not greater than {smaller}")) }
        }
        "config" => {
            let reg = regularizer(&case["regularizer"])?;
            let saved = serde_json::to_value(reg.as_ref()).map_err(|e| e.to_string())?;
            config_keeps_arguments(&case["regularizer"], &saved)?;
            if saved["type"] != case["regularizer"]["class_name"] {
                return Err(format!("kiln type {}, Keras class {}", saved["type"], case["regularizer"]["class_name"]));
            }
            let revived: Box<dyn Regularizer> = serde_json::from_value(saved.clone()).map_err(|e| e.to_string())?;
            let again = serde_json::to_value(revived.as_ref()).map_err(|e| e.to_string())?;
            if again != saved { Err(format!("round trip changed the config: {saved} → {again}")) } else { Ok(()) }
        }
        "get" => {
            let got = regularizer_from_keras(&case["regularizer"]).map_err(|e| e.to_string())?;
            let got = got.map(|r| serde_json::to_value(r.as_ref()).unwrap()["type"].clone()).unwrap_or(Value::Null);
            if got == case["expected_type"] { Ok(()) } else { Err(format!("got {got}")) }
        }
        "error" => refused(regularizer(&case["regularizer"]), &case["message_names"]),
        "validate" => {
            // NaN and ±inf cannot be written in JSON: they go to the constructor.
            let result = match case.get("float_special").and_then(Value::as_str) {
                Some(s) => {
                    let l1: f32 = s.parse().map_err(|e| format!("{s}: {e}"))?;
                    L1::new(l1).validate().map(|()| l1 as f64).map_err(|e| e.to_string())
                }
                None => regularizer(&json!({"class_name": "L1", "config": {"l1": case["arg"]}}))
                    .map(|r| serde_json::to_value(r.as_ref()).unwrap()["l1"].as_f64().unwrap_or(f64::NAN)),
            };
            match (result, case["accepted"].as_bool().unwrap()) {
                (Ok(got), true) => compare(case, &[got], &[case["expected"].as_f64().unwrap()]),
                (Err(e), true) => Err(format!("refused: {e}")),
                (Ok(got), false) => Err(format!("accepted as {got}; Keras raises")),
                (Err(e), false) if e.contains("non-negative") || e.contains("invalid type") => Ok(()),
                (Err(e), false) => Err(format!("refused, but not saying why: {e}")),
            }
        }
        other => Err(format!("unknown case kind {other}")),
    }
}

#[test]
fn keras_regularizer_tests_pass() {
    let doc = fixture("regularizers.json");
    let ran = run_all(&doc, regularizer_case);
    assert!(ran >= 30, "only {ran} regularizer cases ran");
}
