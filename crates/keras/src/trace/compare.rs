//! Comparing kiln's numbers with Keras': tolerances, families of checks, the report.

use serde_json::Value;

use kiln_trainer::Weights;

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

pub(crate) struct Comparer {
    pub rtol: f64,
    pub report: TraceReport,
}

impl Comparer {
    fn check(&mut self, what: &str) -> &mut Check {
        if let Some(i) = self.report.checks.iter().position(|c| c.what == what) {
            return &mut self.report.checks[i];
        }
        self.report.checks.push(Check { what: what.to_string(), ..Check::default() });
        self.report.checks.last_mut().unwrap()
    }

    pub fn compare(&mut self, what: &str, location: &str, kiln: f64, keras: f64) {
        let rtol = self.rtol;
        let c = self.check(what);
        c.compared += 1;
        let abs = (kiln - keras).abs();
        // Both NaN, or the same infinity, match.
        let ok = abs <= ATOL + rtol * keras.abs() || (kiln.is_nan() && keras.is_nan()) || kiln == keras;
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

    pub fn compare_slices(&mut self, what: &str, location: &str, kiln: &[f32], keras: &[f64]) {
        if kiln.len() != keras.len() {
            self.report.problems.push(format!("{location}: {} values in kiln, {} in Keras", kiln.len(), keras.len()));
            return;
        }
        for (i, (&a, &b)) in kiln.iter().zip(keras).enumerate() {
            self.compare(what, &format!("{location}[{i}]"), a as f64, b);
        }
    }

    pub fn compare_weights(&mut self, what: &str, location: &str, kiln: &Weights, keras: &Value, model: &str) {
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

/// `sequential/dense_1/kernel` → `dense_1/kernel`; a recurrent layer's variables, which
/// Keras keeps on its cell (`sequential/lstm_1/lstm_cell/kernel`), → `lstm_1/kernel`.
pub(crate) fn strip_model(name: &str, model: &str) -> String {
    drop_cells(name.strip_prefix(&format!("{model}/")).unwrap_or(name))
}

/// The cells recurrent layers keep their variables on, as Keras names them.
const CELLS: [&str; 3] = ["simple_rnn_cell", "lstm_cell", "gru_cell"];

/// A variable path or flattened optimizer-variable name without its recurrent cell's
/// component (`lstm/lstm_cell/kernel` → `lstm/kernel`,
/// `sequential_lstm_lstm_cell_kernel_velocity` → `sequential_lstm_kernel_velocity`).
pub(crate) fn drop_cells(name: &str) -> String {
    let mut out = name.to_string();
    for cell in CELLS {
        out = out.replace(&format!("/{cell}/"), "/").replace(&format!("_{cell}_"), "_");
    }
    out
}

/// Every number of a (nested) JSON array, flattened row-major.
pub(crate) fn flat_values(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat_values).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN)],
        other => super::non_finite::number(other).into_iter().collect(),
    }
}
