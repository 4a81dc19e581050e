//! The `logs` dictionary handed to callbacks.

use std::fmt;

/// Named scalar logs (`loss`, `accuracy`, `val_loss`, …) in insertion order. Updating an
/// existing key reuses its slot, so per-batch logs allocate nothing after the first batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(String, f64)>,
}

impl Logs {
    /// Sets `key` to `value`, keeping its position when it already exists.
    pub fn set(&mut self, key: &str, value: f64) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The logs as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.entries.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect())
    }
}

impl fmt::Display for Logs {
    /// `loss: 0.3012 - accuracy: 0.9100`, as Keras prints an epoch.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" - ")?;
            }
            write!(f, "{k}: {v:.4}")?;
        }
        Ok(())
    }
}
