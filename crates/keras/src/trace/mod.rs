//! Replaying a Keras training trace and comparing every number.
//!
//! The trace schema is the one of `tests/fixtures/keras/keras_trace_*.json`: the model
//! config and compile settings, the data, the initial weights, and what Keras produced —
//! per batch (total and data loss, running logs, weights after the update), per epoch
//! (logs), final weights and final optimizer variables. A key kiln does not understand
//! is an error: a trace must never pass because part of it was ignored.

mod compare;
mod length;
mod non_finite;

use std::collections::HashMap;

use kiln_tensor::{Matrix, Shape};
use kiln_trainer::callbacks::{BatchStats, Callback, Control};
use kiln_trainer::{
    FeaturesRef, FitOptions, Logs, NamedTensor, Sequential, Source, TrainError, Validation, Verbosity, Weights,
};
use serde_json::Value;

pub use self::compare::{Check, TraceReport};
use self::compare::{Comparer, flat_values, strip_model};
use self::non_finite::number;
pub use self::non_finite::parse_trace;
use crate::callbacks::callback_at;
use crate::json::{At, refuse_unknown};
use crate::model::unbuilt_model_at;
use crate::{KerasError, compile_from_keras};

/// Top-level keys of a trace; the informational ones are read by people, not compared.
const TOP_KEYS: &[&str] =
    &["model", "fit", "data", "initial_weights", "batches", "epochs", "final_weights", "final_optimizer_variables"];
const TOP_INFO: &[&str] = &[
    "description",
    "producer",
    "versions",
    "weight_order_note",
    "history",
    "epoch_loss_averaging_check",
    "val_loss_regularization_check",
    "ids_per_batch",
    "activation_regimes",
];
const FIT_KEYS: &[&str] = &["batch_size", "epochs", "shuffle", "validation_split", "class_weight", "callbacks"];
const FIT_INFO: &[&str] = &["steps_per_epoch", "validation"];
const DATA_KEYS: &[&str] = &["x", "y", "x_val", "y_val", "sample_weight"];
const BATCH_KEYS: &[&str] =
    &["epoch", "batch", "raw_total_loss", "raw_data_loss", "reported_running_logs", "weights_after_update"];
const BATCH_INFO: &[&str] =
    &["sample_range", "raw_additional_losses", "derived_batch_loss_from_running_mean", "dropout_masks"];

/// Refuses keys of `v` outside `known ∪ info`, even when they look "off": in a trace
/// every key is data. The one exception: a top-level key ending in `_note` is prose.
fn strict(v: &Value, path: &str, known: &[&str], info: &[&str]) -> Result<(), KerasError> {
    let Some(map) = v.as_object() else { return Err(KerasError::config(path, "must be an object")) };
    for k in map.keys() {
        let prose = path.is_empty() && k.ends_with("_note");
        if !known.contains(&k.as_str()) && !info.contains(&k.as_str()) && !prose {
            return Err(KerasError::config(
                if path.is_empty() { k.clone() } else { format!("{path}.{k}") },
                "is not part of the trace schema kiln replays; refusing to ignore it",
            ));
        }
    }
    Ok(())
}

/// A JSON matrix (list of rows) or vector (one column) as a `Matrix`.
fn matrix(v: &Value, what: &str) -> Result<Matrix, KerasError> {
    let rows = v.as_array().ok_or_else(|| KerasError::config(what, "is not a list"))?;
    let n = rows.len();
    let values: Vec<f32> = flat_values(v).into_iter().map(|x| x as f32).collect();
    if n == 0 || !values.len().is_multiple_of(n) {
        return Err(KerasError::config(what, "is empty or ragged"));
    }
    Matrix::from_vec(n, values.len() / n, values).map_err(|e| KerasError::config(what, e.to_string()))
}

/// One input's features, or the list of several.
fn one_or_list<'a>(parts: &'a [FeaturesRef<'a>]) -> FeaturesRef<'a> {
    if parts.len() == 1 { parts[0] } else { FeaturesRef::list(parts) }
}

/// The input arrays of `v`: itself for a model of one input, else a list of `inputs`
/// arrays of equal length.
fn input_arrays(v: &Value, what: &str, inputs: usize) -> Result<Vec<Matrix>, KerasError> {
    if inputs == 1 {
        return Ok(vec![matrix(v, what)?]);
    }
    let list = v
        .as_array()
        .filter(|l| l.len() == inputs)
        .ok_or_else(|| KerasError::config(what, format!("must be a list of {inputs} arrays, one per model input")))?;
    let arrays =
        list.iter().enumerate().map(|(k, a)| matrix(a, &format!("{what}[{k}]"))).collect::<Result<Vec<_>, _>>()?;
    if arrays.iter().any(|a| a.rows() != arrays[0].rows()) {
        return Err(KerasError::config(what, "the input arrays hold different numbers of samples"));
    }
    Ok(arrays)
}

/// A JSON list of numbers as weights.
fn weights_vector(v: &Value, what: &str) -> Result<Vec<f32>, KerasError> {
    let list = v.as_array().ok_or_else(|| KerasError::config(what, "must be a list of numbers"))?;
    list.iter()
        .enumerate()
        .map(|(i, w)| {
            w.as_f64().map(|w| w as f32).ok_or_else(|| KerasError::config(format!("{what}[{i}]"), "is not a number"))
        })
        .collect()
}

/// `fit.class_weight`: `{"<class index>": weight}`.
fn class_weights(v: &Value) -> Result<std::collections::BTreeMap<usize, f32>, KerasError> {
    let map = v.as_object().ok_or_else(|| KerasError::config("fit.class_weight", "must be an object"))?;
    map.iter()
        .map(|(k, w)| {
            let at = format!("fit.class_weight.{k}");
            let class = k.parse::<usize>().map_err(|_| KerasError::config(&at, "the key is not a class index"))?;
            let w = w.as_f64().ok_or_else(|| KerasError::config(&at, "the weight is not a number"))?;
            Ok((class, w as f32))
        })
        .collect()
}

/// Compares each batch with Keras' record of it as it ends, so what the replay holds does
/// not grow with the number of batches; stops training one batch past the trace's last.
struct Recorder<'t> {
    keras: &'t [Value],
    model_name: &'t str,
    cmp: Comparer,
    ran: usize,
    error: Option<KerasError>,
}

impl Callback for Recorder<'_> {
    /// Hands each Dropout layer the keep mask Keras drew for this step (TF's mask stream
    /// cannot be reproduced, so the trace records it).
    fn on_train_batch_begin(&mut self, _batch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let Some(b) = self.keras.get(self.ran) else { return Ok(()) };
        let Some(masks) = b.get("dropout_masks") else { return Ok(()) };
        let rows = b.get("sample_range").map(flat_values).and_then(|r| match r[..] {
            [start, end] if end >= start => Some((end - start) as usize),
            _ => None,
        });
        if let Err(e) = replay_masks(self.ran, masks, rows, ctl.model_mut()) {
            self.error.get_or_insert(e);
            ctl.stop_training();
        }
        Ok(())
    }

    fn on_train_batch_end(&mut self, _batch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let i = self.ran;
        self.ran += 1;
        let Some(b) = self.keras.get(i) else {
            ctl.stop_training();
            return Ok(());
        };
        let stats = ctl.batch_stats().expect("batch hooks carry stats");
        if let Err(e) = compare_batch(&mut self.cmp, i, b, &stats, logs, ctl.model(), self.model_name) {
            self.error.get_or_insert(e);
            ctl.stop_training();
        }
        Ok(())
    }

    fn wants_batches(&self) -> bool {
        true
    }
}

/// Sets `batches[i].dropout_masks` (`{layer: 0/1 mask in the layer input's shape}`) on
/// the model's layers for the coming step.
/// `rows`, the batch's sample count when the trace records it, must match each mask.
fn replay_masks(i: usize, masks: &Value, rows: Option<usize>, model: &mut Sequential) -> Result<(), KerasError> {
    let at = format!("batches[{i}].dropout_masks");
    let map = masks.as_object().ok_or_else(|| KerasError::config(&at, "must be an object"))?;
    let widths = model.layer_widths().map(<[usize]>::to_vec).unwrap_or_default();
    let inputs: Vec<usize> =
        model.model_input_shapes().map(|s| s.iter().map(|s| s.numel()).collect()).unwrap_or_default();
    let sources = model.layer_sources().map(<[Vec<Source>]>::to_vec).unwrap_or_default();
    for (name, mask) in map {
        let path = format!("{at}.{name}");
        let index = model
            .layers()
            .iter()
            .position(|l| l.name() == name)
            .ok_or_else(|| KerasError::config(&path, "names no layer of the model"))?;
        let keep: Vec<f32> = flat_values(mask).into_iter().map(|v| v as f32).collect();
        // The mask covers the layer's input: what it reads (an earlier layer's output, or a
        // model input).
        let width = match sources.get(index).and_then(|s| s.first()) {
            Some(Source::Layer(j)) => widths[*j],
            Some(Source::Input(k)) => inputs.get(*k).copied().unwrap_or(0),
            None => 0,
        };
        let whole = width > 0 && !keep.is_empty() && keep.len().is_multiple_of(width);
        if !whole || rows.is_some_and(|r| r * width != keep.len()) {
            return Err(KerasError::config(
                &path,
                format!(
                    "{} values are not {} samples of the layer's {width} inputs",
                    keep.len(),
                    rows.map_or_else(|| "whole".to_string(), |r| r.to_string())
                ),
            ));
        }
        model.layers_mut()[index].replay_mask(&keep).map_err(|e| KerasError::config(&path, e.to_string()))?;
    }
    Ok(())
}

/// Compares kiln's batch `i` with Keras' record `b` of it.
fn compare_batch(
    cmp: &mut Comparer,
    i: usize,
    b: &Value,
    stats: &BatchStats,
    logs: &Logs,
    model: &Sequential,
    name: &str,
) -> Result<(), KerasError> {
    strict(b, &format!("batches[{i}]"), BATCH_KEYS, BATCH_INFO)?;
    let at = format!("epoch {} batch {}", kiln_fs::excerpt(&b["epoch"]), kiln_fs::excerpt(&b["batch"]));
    if let Some(v) = b.get("raw_total_loss").and_then(number) {
        cmp.compare("batch total loss", &at, stats.loss as f64, v);
    }
    if let Some(v) = b.get("raw_data_loss").and_then(number) {
        cmp.compare("batch data loss", &at, stats.data_loss as f64, v);
    }
    for (k, v) in b.get("reported_running_logs").and_then(Value::as_object).into_iter().flatten() {
        match (logs.get(k), number(v)) {
            (Some(ours), Some(theirs)) => cmp.compare("batch running logs", &format!("{at} {k}"), ours, theirs),
            _ => cmp.report.problems.push(format!("{at}: no running log `{k}` in kiln")),
        }
    }
    if let Some(w) = b.get("weights_after_update") {
        cmp.compare_weights("weights after each batch", &at, &model.get_weights(), w, name);
    }
    Ok(())
}

/// `initial_weights` as named tensors, each `values` list checked against its `shape`.
fn initial_weights(v: &Value, model_name: &str) -> Result<Vec<NamedTensor>, KerasError> {
    let weights = v.as_object().ok_or_else(|| KerasError::config("initial_weights", "must be an object"))?;
    let mut out = Vec::with_capacity(weights.len());
    for (k, v) in weights {
        let shape: Vec<usize> =
            v.get("shape").map(flat_values).unwrap_or_default().iter().map(|&d| d as usize).collect();
        let values: Vec<f32> =
            flat_values(v.get("values").unwrap_or(&Value::Null)).into_iter().map(|x| x as f32).collect();
        let holds = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if holds != Some(values.len()) {
            return Err(KerasError::config(
                format!("initial_weights.{k}"),
                format!("shape {shape:?} does not hold the {} values listed", values.len()),
            ));
        }
        out.push(NamedTensor { name: strip_model(k, model_name), shape, values });
    }
    Ok(out)
}

/// Builds `model` for samples of `input` shape once the weights its config declares are
/// known to be the `carried` values of the trace's `initial_weights`: a 12 KB trace must
/// not build a 1 GB model only to find its weights do not fit.
fn build_for_carried(mut model: Sequential, input: &Shape, carried: usize) -> Result<Sequential, KerasError> {
    if model.graph().is_some() {
        // A graph states its inputs; its layers are held to the trace's size as they build.
        model = model.max_weights(carried.max(1));
        model.build_declared()?;
        return Ok(model);
    }
    let mut declared = Some(0usize);
    let mut shape = input.clone();
    for layer in model.layers() {
        declared = match (declared, layer.planned(&shape)) {
            (Some(total), Some((n, out))) => {
                shape = out;
                total.checked_add(n)
            }
            _ => None,
        };
    }
    match declared {
        Some(declared) if declared != carried => {
            return Err(KerasError::config(
                "initial_weights",
                format!(
                    "the trace carries {carried} weight values, but model.config declares {declared} \
                     (for input samples of shape {:?})",
                    input.dims()
                ),
            ));
        }
        // A layer that cannot say what it will create is still held to the trace's size.
        _ => model = model.max_weights(carried.max(1)),
    }
    model.build_shape(input)?;
    Ok(model)
}

/// The validation fraction of a trace's `fit` section: a `validation_split` number, or a
/// `validation` description such as `"validation_split=0.25"`. 0 is none, as Keras'
/// `if validation_split and …` reads its default.
fn validation_split(fit: &Value) -> Option<f64> {
    if let Some(f) = fit.get("validation_split").and_then(Value::as_f64) {
        return Some(f).filter(|&f| f != 0.0);
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
pub fn replay(trace: &Value, rtol: f64) -> Result<TraceReport, KerasError> {
    strict(trace, "", TOP_KEYS, TOP_INFO)?;
    let get = |k: &str| trace.get(k).ok_or_else(|| KerasError::config(k, "missing from the trace"));
    let model_v = get("model")?;
    refuse_unknown(At { value: model_v, path: "model" }, "trace model", &["config", "compile"], &[])?;
    let config = model_v.get("config").ok_or_else(|| KerasError::config("model.config", "missing"))?;
    let (model, input_shape) = unbuilt_model_at(At { value: config, path: "model.config" })?;
    let data = get("data")?;
    strict(data, "data", DATA_KEYS, &[])?;
    // A model of several inputs takes one array per input, in `input_layers` order.
    let inputs = model.graph().map_or(1, |g| g.inputs.len());
    let xs = input_arrays(data.get("x").ok_or_else(|| KerasError::config("data.x", "missing"))?, "data.x", inputs)?;
    let x = &xs[0];
    let y = matrix(data.get("y").ok_or_else(|| KerasError::config("data.y", "missing"))?, "data.y")?;
    let fit = get("fit")?;
    strict(fit, "fit", FIT_KEYS, FIT_INFO)?;
    let (xv, yv) = match (data.get("x_val"), data.get("y_val")) {
        (Some(xv), Some(yv)) => (Some(input_arrays(xv, "data.x_val", inputs)?), Some(matrix(yv, "data.y_val")?)),
        _ => (None, None),
    };
    let split = if xv.is_some() { None } else { validation_split(fit) };
    // Before anything is built or trained: what the trace declares must be what it holds.
    let length = length::check_length(trace, fit, x.rows(), split)?;
    let name = model.model_name().to_string();
    let initial = initial_weights(get("initial_weights")?, &name)?;
    let carried = initial.iter().map(|t| t.values.len()).sum();
    let input_shape = match input_shape {
        Some(shape) => shape,
        None => Shape::new([x.cols()]).map_err(|e| KerasError::config("data.x", e))?,
    };
    let mut model = build_for_carried(model, &input_shape, carried)?;
    model.set_weights(&Weights(initial))?;
    compile_from_keras(
        &mut model,
        model_v.get("compile").ok_or_else(|| KerasError::config("model.compile", "missing"))?,
    )
    .map_err(|e| prefixed(e, "model.compile"))?;

    if fit.get("shuffle").and_then(Value::as_bool) != Some(false) {
        return Err(KerasError::config(
            "fit.shuffle",
            "only shuffle=False traces can be replayed (TensorFlow's shuffle order is not reproducible)",
        ));
    }
    let sample_weight = data.get("sample_weight").map(|w| weights_vector(w, "data.sample_weight")).transpose()?;
    let class_weight = fit.get("class_weight").map(class_weights).transpose()?;
    let mut callbacks = Vec::new();
    for (i, c) in fit.get("callbacks").and_then(Value::as_array).into_iter().flatten().enumerate() {
        callbacks.push(callback_at(At { value: c, path: &format!("fit.callbacks[{i}]") })?);
    }
    if fit.get("callbacks").is_some_and(|c| !c.is_array()) {
        return Err(KerasError::config("fit.callbacks", "must be a list"));
    }
    let batches = get("batches")?.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut recorder = Recorder {
        keras: batches,
        model_name: &name,
        cmp: Comparer { rtol, report: TraceReport::default() },
        ran: 0,
        error: None,
    };
    let mut opts = FitOptions::default()
        .epochs(length.epochs)
        .batch_size(length.batch_size)
        .shuffle(false)
        .verbose(Verbosity::Silent)
        .callback(&mut recorder);
    for cb in &mut callbacks {
        opts.callbacks.push(cb.as_mut());
    }
    opts.sample_weight = sample_weight.as_deref();
    opts.class_weight = class_weight;
    let x_parts: Vec<FeaturesRef<'_>> = xs.iter().map(FeaturesRef::from).collect();
    let xv_parts: Vec<FeaturesRef<'_>> = xv.iter().flatten().map(FeaturesRef::from).collect();
    if let (Some(_), Some(yv)) = (&xv, &yv) {
        opts.validation = Validation::Data(one_or_list(&xv_parts), yv);
    } else if let Some(f) = split {
        opts.validation = Validation::Split(f);
    }
    let history = model.fit(one_or_list(&x_parts), &y, opts)?;
    if let Some(e) = recorder.error {
        return Err(e);
    }
    let mut cmp = recorder.cmp;
    if batches.len() != recorder.ran {
        let more = if recorder.ran > batches.len() { " (stopped there)" } else { "" };
        cmp.report.problems.push(format!("Keras ran {} batches, kiln {}{more}", batches.len(), recorder.ran));
    }
    for (i, e) in get("epochs")?.as_array().into_iter().flatten().enumerate() {
        strict(e, &format!("epochs[{i}]"), &["epoch", "logs"], &[])?;
        let epoch = e.get("epoch").and_then(Value::as_u64).unwrap_or(0) as usize;
        for (k, v) in e.get("logs").and_then(Value::as_object).into_iter().flatten() {
            match (history.get(k).and_then(|h| h.get(epoch)), number(v)) {
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

/// `e` with `prefix.` in front of its JSON path.
fn prefixed(e: KerasError, prefix: &str) -> KerasError {
    match e {
        KerasError::Config { at, message } => KerasError::Config { at: format!("{prefix}.{at}"), message },
        other => other,
    }
}

/// Compares Keras' optimizer variables (`<opt>/iteration`, `<opt>/learning_rate`,
/// `<opt>/<model>_<layer>_<param>_<slot>`) with kiln's.
fn compare_optimizer(cmp: &mut Comparer, model: &Sequential, vars: &serde_json::Map<String, Value>, name: &str) {
    let opt = model.optimizer().expect("compiled");
    // A Sequential's variables live under the model (`sequential/dense/kernel`), a
    // Functional model's do not (`dense/kernel`): the slot is named after either path.
    let slots: HashMap<String, &[f32]> = opt
        .slots()
        .into_iter()
        .flat_map(|s| {
            let var = format!("{}_{}", s.param.replace('/', "_"), s.slot);
            [(format!("{name}_{var}"), s.values), (var, s.values)]
        })
        .collect();
    for (key, v) in vars {
        let var = key.split_once('/').map_or(key.as_str(), |(_, v)| v);
        let values = flat_values(v.get("values").unwrap_or(v));
        let first = values.first().copied().unwrap_or(f64::NAN);
        match var {
            "iteration" | "iterations" => cmp.compare("optimizer variables", key, opt.iterations() as f64, first),
            "learning_rate" => cmp.compare("optimizer variables", key, opt.learning_rate() as f64, first),
            slot => match slots.get(&compare::drop_cells(slot)) {
                Some(ours) => cmp.compare_slices("optimizer variables", key, ours, &values),
                None => cmp.report.problems.push(format!("optimizer variable `{key}` has no kiln counterpart")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_split_is_read_from_either_form() {
        assert_eq!(validation_split(&serde_json::json!({"validation_split": 0.2})), Some(0.2));
        assert_eq!(validation_split(&serde_json::json!({"validation_split": 0.0})), None);
        assert_eq!(validation_split(&serde_json::json!({"validation": "validation_split=0.25"})), Some(0.25));
        assert_eq!(validation_split(&serde_json::json!({"validation": "validation_data=(x_val, y_val)"})), None);
    }

    #[test]
    fn unknown_trace_keys_are_errors() {
        let err = strict(&serde_json::json!({"batch_size": 2, "initial_epoch": 1}), "fit", FIT_KEYS, FIT_INFO)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("fit.initial_epoch: is not part of the trace schema"), "{err}");
    }
}
