//! The record of a `fit`: one value per epoch for every log key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Logs;

/// Per-epoch logs under Keras' keys (`loss`, `accuracy`, `val_loss`, `val_accuracy`), as
/// `model.fit(...).history` in Keras. Serializes to `{"loss": [...], ...}`.
///
/// JSON has no NaN or infinity: a diverged epoch's values are written as the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (the words Python's `json` module writes bare),
/// so the three stay apart. `null`, which older kiln versions wrote for all three, reads
/// back as NaN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    #[serde(with = "non_finite_as_words")]
    history: BTreeMap<String, Vec<f64>>,
}

/// Serde for per-epoch values where non-finite values are the words `NaN`, `Infinity`,
/// `-Infinity` (and `null` is read as NaN).
mod non_finite_as_words {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One JSON value of a history column.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Word(String),
        Null(()),
    }

    pub fn serialize<S: Serializer>(h: &BTreeMap<String, Vec<f64>>, s: S) -> Result<S::Ok, S::Error> {
        let word = |x: f64| match x {
            x if x.is_finite() => Value::Number(x),
            x if x.is_nan() => Value::Word("NaN".into()),
            x if x > 0.0 => Value::Word("Infinity".into()),
            _ => Value::Word("-Infinity".into()),
        };
        let out: BTreeMap<&String, Vec<Value>> =
            h.iter().map(|(k, v)| (k, v.iter().map(|&x| word(x)).collect())).collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
        let read: BTreeMap<String, Vec<Value>> = BTreeMap::deserialize(d)?;
        let number = |key: &str, v: Value| match v {
            Value::Number(x) => Ok(x),
            Value::Null(()) => Ok(f64::NAN),
            Value::Word(w) => match w.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(D::Error::custom(format!(
                    "history `{key}`: {other:?} is not a number, \"NaN\", \"Infinity\" or \"-Infinity\""
                ))),
            },
        };
        read.into_iter()
            .map(|(k, v)| {
                let values = v.into_iter().map(|x| number(&k, x)).collect::<Result<Vec<f64>, D::Error>>()?;
                Ok((k, values))
            })
            .collect()
    }
}

impl History {
    /// Appends one epoch's logs.
    pub fn push(&mut self, logs: &Logs) {
        for (k, v) in logs.iter() {
            self.history.entry(k.to_string()).or_default().push(v);
        }
    }

    /// The values of `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.history.get(key).map(Vec::as_slice)
    }

    /// The values of `key`, or an error listing the keys that exist.
    pub fn try_get(&self, key: &str) -> Result<&[f64], String> {
        self.get(key)
            .ok_or_else(|| format!("no `{key}` in history; available: {}", self.keys().collect::<Vec<_>>().join(", ")))
    }

    /// The recorded keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.history.keys().map(String::as_str)
    }

    /// Number of recorded epochs.
    pub fn epochs(&self) -> usize {
        self.history.values().map(Vec::len).max().unwrap_or(0)
    }

    /// The history as pretty JSON (non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("history serializes")
    }

    /// Reads [`to_json`](History::to_json) output (and `null`, from older files, as NaN).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The first epoch (0-based) at which `key` stopped being finite, if it did.
    pub fn first_non_finite(&self, key: &str) -> Option<usize> {
        self.get(key)?.iter().position(|v| !v.is_finite())
    }

    /// The history as CSV: an `epoch` column then one column per key.
    pub fn to_csv(&self) -> String {
        let keys: Vec<&String> = self.history.keys().collect();
        let mut out = String::from("epoch");
        keys.iter().for_each(|k| {
            out.push(',');
            out.push_str(k);
        });
        out.push('\n');
        for e in 0..self.epochs() {
            out.push_str(&e.to_string());
            for k in &keys {
                out.push(',');
                if let Some(v) = self.history[*k].get(e) {
                    out.push_str(&v.to_string());
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(values: &[f64]) -> History {
        History { history: BTreeMap::from([("loss".to_string(), values.to_vec())]) }
    }

    #[test]
    fn nan_and_both_infinities_round_trip_apart() {
        let h = history(&[0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        let json = h.to_json();
        assert!(json.contains("\"NaN\"") && json.contains("\"Infinity\"") && json.contains("\"-Infinity\""), "{json}");
        let back = History::from_json(&json).unwrap().get("loss").unwrap().to_vec();
        assert_eq!(back[0], 0.5);
        assert!(back[1].is_nan());
        assert_eq!(back[2..], [f64::INFINITY, f64::NEG_INFINITY]);
    }

    #[test]
    fn old_null_files_still_read_and_other_words_are_refused() {
        let old = History::from_json(r#"{"loss": [1.0, null]}"#).unwrap();
        assert!(old.get("loss").unwrap()[1].is_nan());
        let err = History::from_json(r#"{"loss": [1.0, "lots"]}"#).unwrap_err().to_string();
        assert!(err.contains("loss") && err.contains("\"lots\""), "{err}");
    }
}
