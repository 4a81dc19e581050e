//! A metric as compiled: its log key, and Keras' rules for ordering and naming the keys.

use serde::{Deserialize, Serialize};

use crate::Metric;

/// A metric as compiled: the log key it reports under and what it computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedMetric {
    /// The key in the logs (`accuracy`, `mae`, …).
    pub name: String,
    /// What it computes.
    #[serde(rename = "kind")]
    pub metric: Metric,
    /// Whether sample and class weights weigh it (Keras' `weighted_metrics`); metrics
    /// from Keras' `metrics` list ignore them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weighted: bool,
}

impl NamedMetric {
    /// This metric weighted by sample and class weights, as in Keras' `weighted_metrics`.
    pub fn sample_weighted(mut self) -> Self {
        self.weighted = true;
        self
    }
}

/// `metrics` in the order Keras' `CompileMetrics.metrics` lists them: the unweighted
/// ones, then the weighted ones (each group in the order given).
pub(crate) fn keras_order(metrics: Vec<NamedMetric>) -> Vec<NamedMetric> {
    let (mut plain, weighted): (Vec<_>, Vec<_>) = metrics.into_iter().partition(|m| !m.weighted);
    plain.extend(weighted);
    plain
}

/// Gives `metrics` Keras' log keys (`CompileMetrics.get_result`): unweighted metrics
/// first, then weighted ones; a repeated unweighted name gets `_1`, `_2`…, a weighted one
/// that clashes becomes `weighted_<name>` (then `_1`, …).
pub(crate) fn keras_log_names(metrics: Vec<NamedMetric>) -> Vec<NamedMetric> {
    let (plain, weighted): (Vec<_>, Vec<_>) = metrics.into_iter().partition(|m| !m.weighted);
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(plain.len() + weighted.len());
    for mut m in plain {
        match counts.get_mut(&m.name) {
            None => {
                counts.insert(m.name.clone(), 1);
            }
            Some(n) => {
                m.name = format!("{}_{n}", m.name);
                *n += 1;
            }
        }
        out.push(m);
    }
    for mut m in weighted {
        if counts.contains_key(&m.name) {
            let name = format!("weighted_{}", m.name);
            m.name = match counts.get_mut(&name) {
                None => {
                    counts.insert(name.clone(), 1);
                    name
                }
                Some(n) => {
                    *n += 1;
                    format!("{name}_{}", *n - 1)
                }
            };
        } else {
            counts.insert(m.name.clone(), 1);
        }
        out.push(m);
    }
    out
}

impl From<Metric> for NamedMetric {
    fn from(metric: Metric) -> Self {
        let name = metric.keras_name();
        metric.named(name)
    }
}

impl From<&Metric> for NamedMetric {
    fn from(metric: &Metric) -> Self {
        metric.clone().into()
    }
}

impl From<&NamedMetric> for NamedMetric {
    fn from(metric: &NamedMetric) -> Self {
        metric.clone()
    }
}
