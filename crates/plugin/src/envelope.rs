//! The JSON shape shared by both `Plugin` envelopes.

use serde::{Deserialize, Serialize};

use crate::{PluginError, PluginRef};

/// The envelope's fields as they appear in JSON.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginRef>,
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

/// A missing config means "the plugin's defaults".
fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

impl Envelope {
    /// What to write: the plugin's own view of its config and library (the config as
    /// given if the plugin cannot say).
    pub fn current(
        name: &str,
        config: &serde_json::Value,
        live: (PluginRef, Result<serde_json::Value, PluginError>),
    ) -> Self {
        let (plugin, config) = match live {
            (plugin, Ok(config)) => (plugin, config),
            (plugin, Err(e)) => {
                tracing::warn!("{e}; saving the config as given");
                (plugin, config.clone())
            }
        };
        Self { name: name.to_string(), plugin: Some(plugin), config }
    }
}
