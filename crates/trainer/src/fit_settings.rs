//! What a `fit` call's numbers depend on besides the model: a backup records it, and is
//! resumed only by a `fit` with the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The settings of a running `fit` that decide its numbers (batching, order, data shapes,
/// weighting). The epoch count is not among them: a longer run continues a shorter one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FitSettings {
    /// Samples per step.
    pub batch_size: usize,
    /// Whether the training rows are shuffled.
    pub shuffle: bool,
    /// Whether every epoch draws a new order.
    pub reshuffle_each_epoch: bool,
    /// The seed of the shuffle stream.
    pub shuffle_seed: u64,
    /// Rows trained on per epoch.
    pub train_rows: usize,
    /// Rows validated on per epoch.
    pub validation_rows: usize,
    /// Columns of the inputs.
    pub input_width: usize,
    /// Columns of the labels.
    pub target_width: usize,
    /// Whether rows carry a `sample_weight`.
    pub sample_weight: bool,
    /// The `class_weight` map, if any.
    pub class_weight: Option<BTreeMap<usize, f32>>,
}

impl FitSettings {
    /// Gradient steps in one full epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        self.train_rows.div_ceil(self.batch_size.max(1)) as u64
    }

    /// `field: a vs b` for every setting that differs from `other` (empty when equal).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let (serde_json::Value::Object(a), serde_json::Value::Object(b)) =
            (serde_json::to_value(self).expect("serializes"), serde_json::to_value(other).expect("serializes"))
        else {
            unreachable!("a struct serializes as an object")
        };
        a.iter().filter(|(k, v)| b.get(*k) != Some(v)).map(|(k, v)| format!("{k} {v} vs {}", b[k])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_with_class_weights_read_back_and_differences_name_the_field() {
        let a = FitSettings {
            batch_size: 16,
            shuffle: true,
            reshuffle_each_epoch: false,
            shuffle_seed: 3,
            train_rows: 100,
            validation_rows: 20,
            input_width: 4,
            target_width: 1,
            sample_weight: false,
            class_weight: Some(BTreeMap::from([(0, 1.0), (1, 1.5)])),
        };
        let back: FitSettings = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert_eq!(a.steps_per_epoch(), 7);
        let b = FitSettings { batch_size: 32, class_weight: None, ..a.clone() };
        assert_eq!(a.differences(&b), ["batch_size 16 vs 32", "class_weight {\"0\":1.0,\"1\":1.5} vs null"]);
    }
}
