//! A trace's declared training length, checked against what the trace records before
//! anything trains: a 12 KB trace declaring 10¹² epochs is an error naming the field, not
//! an endless run whose recordings grow without bound.

use serde_json::Value;

use crate::KerasError;

/// Callbacks that may end a Keras run before `fit.epochs`.
const STOPPERS: &[&str] = &["EarlyStopping", "TerminateOnNaN"];

/// How `fit` runs the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Length {
    /// `fit.epochs`.
    pub epochs: usize,
    /// `fit.batch_size`.
    pub batch_size: usize,
}

/// The optional integer `fit.key` (at least 1), or `default`.
fn positive(fit: &Value, key: &str, default: usize) -> Result<usize, KerasError> {
    match fit.get(key) {
        None => Ok(default),
        Some(v) => v.as_u64().filter(|&n| n >= 1).and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
            KerasError::config(format!("fit.{key}"), format!("must be an integer ≥ 1, got {}", kiln_fs::excerpt(v)))
        }),
    }
}

/// The length of the list `trace.key`.
fn recorded(trace: &Value, key: &str) -> Result<usize, KerasError> {
    trace
        .get(key)
        .ok_or_else(|| KerasError::config(key, "missing from the trace"))?
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| KerasError::config(key, "must be a list"))
}

/// Checks `fit.epochs` against the recorded `epochs` and `history` lists, and the batches
/// `rows` training rows make (after the validation fraction `split`, when the trace holds
/// no validation data) against the recorded `batches`. Fewer epochs than declared are
/// accepted only when a callback could have stopped Keras early.
pub(super) fn check_length(trace: &Value, fit: &Value, rows: usize, split: Option<f64>) -> Result<Length, KerasError> {
    let epochs = positive(fit, "epochs", 1)?;
    let batch_size = positive(fit, "batch_size", 32)?;
    let train_rows = match split {
        Some(f) => {
            let at = (rows as f64 * (1.0 - f)).floor();
            if !(f > 0.0 && f < 1.0) || at < 1.0 || at >= rows as f64 {
                return Err(KerasError::config(
                    "fit.validation_split",
                    format!("{f} of {rows} rows leaves an empty training or validation set"),
                ));
            }
            at as usize
        }
        None => rows,
    };
    let steps = train_rows.div_ceil(batch_size);
    if let Some(v) = fit.get("steps_per_epoch")
        && v.as_u64() != Some(steps as u64)
    {
        return Err(KerasError::config(
            "fit.steps_per_epoch",
            format!(
                "the trace says {}, but {train_rows} training rows in batches of {batch_size} make {steps}",
                kiln_fs::excerpt(v)
            ),
        ));
    }
    let may_stop = fit
        .get("callbacks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("class_name").and_then(Value::as_str).is_some_and(|n| STOPPERS.contains(&n)));
    let ran = recorded(trace, "epochs")?;
    if ran > epochs || (ran < epochs && !may_stop) {
        return Err(KerasError::config(
            "fit.epochs",
            format!("declares {epochs} epochs, but the trace records {ran} (its `epochs` list)"),
        ));
    }
    if let Some(history) = trace.get("history").and_then(Value::as_object) {
        for (key, list) in history {
            let n = list.as_array().map_or(0, Vec::len);
            if n != ran {
                return Err(KerasError::config(
                    format!("history.{key}"),
                    format!("records {n} epochs, but the `epochs` list records {ran}"),
                ));
            }
        }
    }
    let batches = recorded(trace, "batches")?;
    let full = ran.saturating_mul(steps);
    // An early stop ends an epoch (EarlyStopping) or a batch (TerminateOnNaN) of the last
    // recorded epoch; without one every epoch runs all its steps.
    let fits = if may_stop { batches <= full && batches + steps > full } else { batches == full };
    if !fits {
        return Err(KerasError::config(
            "batches",
            format!(
                "the trace records {batches} batches, but {ran} epochs of {steps} steps \
                 ({train_rows} training rows in batches of {batch_size}) make {full}"
            ),
        ));
    }
    Ok(Length { epochs, batch_size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trace(epochs: u64, recorded_epochs: usize, batches: usize) -> (Value, Value) {
        let fit = json!({"epochs": epochs, "batch_size": 8, "steps_per_epoch": 4});
        let t = json!({
            "epochs": vec![json!({}); recorded_epochs],
            "batches": vec![json!({}); batches],
            "history": {"loss": vec![0.5; recorded_epochs]},
        });
        (t, fit)
    }

    #[test]
    fn a_consistent_trace_passes() {
        let (t, fit) = trace(3, 3, 12);
        assert_eq!(check_length(&t, &fit, 32, None).unwrap(), Length { epochs: 3, batch_size: 8 });
        // 40 rows with a quarter held out: 30 training rows, 4 steps.
        assert!(check_length(&t, &fit, 40, Some(0.25)).is_ok());
    }

    #[test]
    fn declared_lengths_the_trace_does_not_record_are_refused_naming_both_numbers() {
        let (t, fit) = trace(1_000_000_000_000, 3, 12);
        let err = check_length(&t, &fit, 32, None).unwrap_err().to_string();
        assert!(err.starts_with("fit.epochs:") && err.contains("1000000000000") && err.contains("records 3"), "{err}");
        let (t, fit) = trace(3, 3, 400_000);
        let err = check_length(&t, &fit, 32, None).unwrap_err().to_string();
        assert!(err.starts_with("batches:") && err.contains("400000") && err.contains("make 12"), "{err}");
        let (mut t, fit) = trace(3, 3, 12);
        t["history"]["loss"] = json!([0.5]);
        let err = check_length(&t, &fit, 32, None).unwrap_err().to_string();
        assert!(err.starts_with("history.loss:") && err.contains("records 1"), "{err}");
        let (t, fit) = trace(3, 3, 12);
        let err = check_length(&t, &fit, 64, None).unwrap_err().to_string();
        assert!(err.starts_with("fit.steps_per_epoch:") && err.contains("make 8"), "{err}");
        let (t, _) = trace(3, 3, 12);
        let err = check_length(&t, &json!({"epochs": 3, "batch_size": 0}), 32, None).unwrap_err().to_string();
        assert!(err.starts_with("fit.batch_size:"), "{err}");
    }

    #[test]
    fn an_early_stop_may_record_fewer_epochs_than_declared() {
        let (t, mut fit) = trace(100, 3, 12);
        assert!(check_length(&t, &fit, 32, None).is_err());
        fit["callbacks"] = json!([{"class_name": "EarlyStopping", "config": {}}]);
        assert!(check_length(&t, &fit, 32, None).is_ok());
        // Still not more batches than the recorded epochs hold.
        let (t, _) = trace(100, 3, 13);
        assert!(check_length(&t, &fit, 32, None).is_err());
    }
}
