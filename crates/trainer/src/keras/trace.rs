//! Replaying a Keras training trace and comparing every number.
//!
//! The trace schema is the one of `tests/fixtures/keras/keras_trace_*.json`: the model
//! config and compile settings, the data, the initial weights, and what Keras produced —
//! per batch (total and data loss, running logs, weights after the update), per epoch
//! (logs), final weights and final optimizer variables.

use std::collections::HashMap;

use kiln_tensor::Matrix;
use serde_json::Value;

use super::{compile_from_keras, model_from_keras};
use crate::callbacks::{BatchStats, Callback, Control};
use crate::{FitOptions, Logs, NamedTensor, Sequential, TrainError, Validation, Verbosity, Weights};

/// One family of compared numbers.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// What was compared (`batch total loss`, `final weights`, …).
    pub what: String,
    /// How many numbers.
    pub compared: usize,
    /// How many broke `|kiln − keras| ≤ atol + rtol·|keras|`.
    pub failed: usize,
    /// Largest `|kiln − keras| / |keras|` (over non-zero Keras values).
    pub max_rel_err: f64,
    /// Largest `|kiln − keras|`.
    pub max_abs_err: f64,
    /// Where the largest relative error is.
    pub worst: String,
}

/// The outcome of one replay.
#[derive(Debug, Clone, Default)]
pub struct TraceReport {
    /// Every family of checks.
    pub checks: Vec<Check>,
    /// Structural problems (missing slots, batch-count mismatches…).
    pub problems: Vec<String>,
}

impl TraceReport {
    /// True when every number is within tolerance and nothing is missing.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.checks.iter().all(|c| c.failed == 0)
    }

    /// The largest relative error over all checks.
    pub fn max_rel_err(&self) -> f64 {
        self.checks.iter().map(|c| c.max_rel_err).fold(0.0, f64::max)
    }

    /// How many numbers were compared.
    pub fn compared(&self) -> usize {
        self.checks.iter().map(|c| c.compared).sum()
    }
}

/// Absolute part of the tolerance.
const ATOL: f64 = 1e-6;

struct Comparer {
    rtol: f64,
    report: TraceReport,
}

impl Comparer {
    fn check(&mut self, what: &str) -> &mut Check {
        if let Some(i) = self.report.checks.iter().position(|c| c.what == what) {
            return &mut self.report.checks[i];
        }
        self.report.checks.push(Check { what: what.to_string(), ..Check::default() });
        self.report.checks.last_mut().unwrap()
    }

    fn compare(&mut self, what: &str, location: &str, kiln: f64, keras: f64) {
        let rtol = self.rtol;
        let c = self.check(what);
        c.compared += 1;
        let abs = (kiln - keras).abs();
        let ok = abs <= ATOL + rtol * keras.abs() || (kiln.is_nan() && keras.is_nan());
        if !ok {
            c.failed += 1;
        }
        c.max_abs_err = c.max_abs_err.max(abs);
        if keras != 0.0 {
            let rel = abs / keras.abs();
            if rel > c.max_rel_err || (!ok && c.failed == 1) {
                c.max_rel_err = c.max_rel_err.max(rel);
                c.worst = format!("{location}: kiln {kiln:e} vs keras {keras:e}");
            }
        } else if !ok {
            c.worst = format!("{location}: kiln {kiln:e} vs keras 0");
        }
    }

    fn compare_slices(&mut self, what: &str, location: &str, kiln: &[f32], keras: &[f64]) {
        if kiln.len() != keras.len() {
            self.report.problems.push(format!("{location}: {} values in kiln, {} in Keras", kiln.len(), keras.len()));
            return;
        }
        for (i, (&a, &b)) in kiln.iter().zip(keras).enumerate() {
            self.compare(what, &format!("{location}[{i}]"), a as f64, b);
        }
    }

    fn compare_weights(&mut self, what: &str, location: &str, kiln: &Weights, keras: &Value, model: &str) {
        let Some(map) = keras.as_object() else {
            self.report.problems.push(format!("{location}: not an object"));
            return;
        };
        for (name, v) in map {
            let local = strip_model(name, model);
            let values = flat_values(v.get("values").unwrap_or(v));
            match kiln.get(&local) {
                Some(t) => self.compare_slices(what, &format!("{location} {name}"), &t.values, &values),
                None => self.report.problems.push(format!("{location}: kiln has no weight `{local}` ({name})")),
            }
        }
    }
}

/// `sequential/dense_1/kernel` → `dense_1/kernel`.
fn strip_model(name: &str, model: &str) -> String {
    name.strip_prefix(&format!("{model}/")).unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_split_is_read_from_either_form() {
        assert_eq!(validation_split(&serde_json::json!({"validation_split": 0.2})), Some(0.2));
        assert_eq!(validation_split(&serde_json::json!({"validation": "validation_split=0.25"})), Some(0.25));
        assert_eq!(validation_split(&serde_json::json!({"validation": "validation_data=(x_val, y_val)"})), None);
    }
}

/// Every number of a (nested) JSON array, flattened row-major.
fn flat_values(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat_values).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN)],
        _ => Vec::new(),
    }
}

/// A JSON matrix (list of rows) or vector (one column) as a `Matrix`.
fn matrix(v: &Value, what: &str) -> Result<Matrix, TrainError> {
    let rows = v.as_array().ok_or_else(|| TrainError::Config(format!("`{what}` is not a list")))?;
    let n = rows.len();
    let values: Vec<f32> = flat_values(v).into_iter().map(|x| x as f32).collect();
    if n == 0 || values.len() % n != 0 {
        return Err(TrainError::Config(format!("`{what}` is empty or ragged")));
    }
    Matrix::from_vec(n, values.len() / n, values).map_err(|e| TrainError::Config(format!("`{what}`: {e}")))
}

/// Records what Keras' trace records, batch by batch.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Recorder {
    #[serde(skip)]
    batches: Vec<(BatchStats, Logs, Weights)>,
}

#[typetag::serde(name = "TraceRecorder")]
impl Callback for Recorder {
    fn on_train_batch_end(&mut self, _batch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let stats = ctl.batch_stats().expect("batch hooks carry stats");
        self.batches.push((stats, logs.clone(), ctl.model().get_weights()));
        Ok(())
    }

    fn wants_batches(&self) -> bool {
        true
    }
}

/// The validation fraction of a trace's `fit` section: a `validation_split` number, or a
/// `validation` description such as `"validation_split=0.25"`.
fn validation_split(fit: &Value) -> Option<f64> {
    if let Some(f) = fit.get("validation_split").and_then(Value::as_f64) {
        return Some(f);
    }
    let text = fit.get("validation")?.as_str()?;
    let rest = &text[text.find("validation_split")? + "validation_split".len()..];
    let number: String = rest
        .trim_start_matches(|c: char| c == '=' || c == ':' || c.is_whitespace())
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '-')
        .collect();
    number.parse().ok()
}

/// Rebuilds the trace's model in kiln, sets the initial weights, trains as the trace
/// says, and compares every number it lists with tolerance `1e-6 + rtol·|keras|`.
pub fn replay(trace: &Value, rtol: f64) -> Result<TraceReport, TrainError> {
    let get = |k: &str| trace.get(k).ok_or_else(|| TrainError::Config(format!("trace has no `{k}`")));
    let model_v = get("model")?;
    let mut model: Sequential =
        model_from_keras(model_v.get("config").ok_or_else(|| TrainError::Config("no model.config".into()))?)?;
    let data = get("data")?;
    let x = matrix(data.get("x").ok_or_else(|| TrainError::Config("no data.x".into()))?, "data.x")?;
    let y = matrix(data.get("y").ok_or_else(|| TrainError::Config("no data.y".into()))?, "data.y")?;
    if model.input_width().is_none() {
        model.build(x.cols())?;
    }
    let name = model.model_name().to_string();
    let mut initial = Vec::new();
    for (k, v) in get("initial_weights")?.as_object().ok_or_else(|| TrainError::Config("initial_weights".into()))? {
        let shape = v.get("shape").map(flat_values).unwrap_or_default().iter().map(|&d| d as usize).collect();
        let values = flat_values(v.get("values").unwrap_or(&Value::Null)).into_iter().map(|x| x as f32).collect();
        initial.push(NamedTensor { name: strip_model(k, &name), shape, values });
    }
    model.set_weights(&Weights(initial))?;
    compile_from_keras(
        &mut model,
        model_v.get("compile").ok_or_else(|| TrainError::Config("no model.compile".into()))?,
    )?;

    let fit = get("fit")?;
    if fit.get("shuffle").and_then(Value::as_bool) != Some(false) {
        return Err(TrainError::Config(
            "only shuffle=False traces can be replayed (TensorFlow's shuffle order is not reproducible)".into(),
        ));
    }
    let mut opts = FitOptions::default()
        .epochs(fit.get("epochs").and_then(Value::as_u64).unwrap_or(1) as usize)
        .batch_size(fit.get("batch_size").and_then(Value::as_u64).unwrap_or(32) as usize)
        .shuffle(false)
        .verbose(Verbosity::Silent);
    if let (Some(xv), Some(yv)) = (data.get("x_val"), data.get("y_val")) {
        opts.validation = Validation::Data(matrix(xv, "data.x_val")?.into(), matrix(yv, "data.y_val")?);
    } else if let Some(f) = validation_split(fit) {
        opts.validation = Validation::Split(f);
    }
    let mut recorder = Recorder::default();
    let history = model.fit_with_callbacks(&x.into(), &y, opts, &mut [&mut recorder])?;

    let mut cmp = Comparer { rtol, report: TraceReport::default() };
    let batches = get("batches")?.as_array().cloned().unwrap_or_default();
    if batches.len() != recorder.batches.len() {
        cmp.report.problems.push(format!("Keras ran {} batches, kiln {}", batches.len(), recorder.batches.len()));
    }
    for (b, (stats, logs, weights)) in batches.iter().zip(&recorder.batches) {
        let at = format!("epoch {} batch {}", b["epoch"], b["batch"]);
        if let Some(v) = b.get("raw_total_loss").and_then(Value::as_f64) {
            cmp.compare("batch total loss", &at, stats.loss as f64, v);
        }
        if let Some(v) = b.get("raw_data_loss").and_then(Value::as_f64) {
            cmp.compare("batch data loss", &at, stats.data_loss as f64, v);
        }
        for (k, v) in b.get("reported_running_logs").and_then(Value::as_object).into_iter().flatten() {
            match (logs.get(k), v.as_f64()) {
                (Some(ours), Some(theirs)) => cmp.compare("batch running logs", &format!("{at} {k}"), ours, theirs),
                _ => cmp.report.problems.push(format!("{at}: no running log `{k}` in kiln")),
            }
        }
        if let Some(w) = b.get("weights_after_update") {
            cmp.compare_weights("weights after each batch", &at, weights, w, &name);
        }
    }
    for e in get("epochs")?.as_array().into_iter().flatten() {
        let epoch = e.get("epoch").and_then(Value::as_u64).unwrap_or(0) as usize;
        for (k, v) in e.get("logs").and_then(Value::as_object).into_iter().flatten() {
            match (history.get(k).and_then(|h| h.get(epoch)), v.as_f64()) {
                (Some(&ours), Some(theirs)) => cmp.compare("epoch logs", &format!("epoch {epoch} {k}"), ours, theirs),
                _ => cmp.report.problems.push(format!("epoch {epoch}: no `{k}` in kiln's history")),
            }
        }
    }
    if let Some(w) = trace.get("final_weights") {
        cmp.compare_weights("final weights", "final", &model.get_weights(), w, &name);
    }
    if let Some(vars) = trace.get("final_optimizer_variables").and_then(Value::as_object) {
        compare_optimizer(&mut cmp, &model, vars, &name);
    }
    Ok(cmp.report)
}

/// Compares Keras' optimizer variables (`<opt>/iteration`, `<opt>/learning_rate`,
/// `<opt>/<model>_<layer>_<param>_<slot>`) with kiln's.
fn compare_optimizer(cmp: &mut Comparer, model: &Sequential, vars: &serde_json::Map<String, Value>, name: &str) {
    let opt = model.optimizer().expect("compiled");
    let slots: HashMap<String, &[f32]> = opt
        .slots()
        .into_iter()
        .map(|s| (format!("{name}_{}_{}", s.param.replace('/', "_"), s.slot), s.values))
        .collect();
    for (key, v) in vars {
        let var = key.split_once('/').map_or(key.as_str(), |(_, v)| v);
        let values = flat_values(v.get("values").unwrap_or(v));
        match var {
            "iteration" | "iterations" => cmp.compare(
                "optimizer variables",
                key,
                opt.iterations() as f64,
                values.first().copied().unwrap_or(f64::NAN),
            ),
            "learning_rate" => cmp.compare(
                "optimizer variables",
                key,
                opt.learning_rate() as f64,
                values.first().copied().unwrap_or(f64::NAN),
            ),
            slot => match slots.get(slot) {
                Some(ours) => cmp.compare_slices("optimizer variables", key, ours, &values),
                None => cmp.report.problems.push(format!("optimizer variable `{key}` has no kiln counterpart")),
            },
        }
    }
}
