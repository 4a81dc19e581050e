//! The record of a `fit`: one value per epoch for every log key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Logs;

/// Per-epoch logs under Keras' keys (`loss`, `accuracy`, `val_loss`, `val_accuracy`), as
/// `model.fit(...).history` in Keras. Serializes to `{"loss": [...], ...}`.
///
/// JSON has no NaN or infinity: a diverged epoch's non-finite values are written as
/// `null` and read back as NaN.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    #[serde(with = "non_finite_as_null")]
    history: BTreeMap<String, Vec<f64>>,
}

/// Serde for per-epoch values where `null` stands for a non-finite value.
mod non_finite_as_null {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(h: &BTreeMap<String, Vec<f64>>, s: S) -> Result<S::Ok, S::Error> {
        let out: BTreeMap<&String, Vec<Option<f64>>> =
            h.iter().map(|(k, v)| (k, v.iter().map(|x| x.is_finite().then_some(*x)).collect())).collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
        let read: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::deserialize(d)?;
        Ok(read.into_iter().map(|(k, v)| (k, v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())).collect())
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

    /// The history as pretty JSON (non-finite values as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("history serializes")
    }

    /// Reads [`to_json`](History::to_json) output (`null` becomes NaN).
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
