//! The record of a `fit`: one value per epoch for every log key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Logs;

/// Per-epoch logs under Keras' keys (`loss`, `accuracy`, `val_loss`, `val_accuracy`), as
/// `model.fit(...).history` in Keras. Serializes to `{"loss": [...], ...}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    history: BTreeMap<String, Vec<f64>>,
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

    /// The history as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.history).expect("history serializes")
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
