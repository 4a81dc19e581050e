//! The `Plugin` regularizer: a built-in typetag variant that stands for any plugin's.

use std::sync::Arc;

use kiln_regularizers::{Regularizer, RegularizerError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::envelope::Envelope;
use crate::instance::RegularizerInstance;
use crate::registry::current;
use crate::{PluginError, PluginRef, PluginRegistry};

/// A regularizer implemented by a plugin, bound to its implementation.
///
/// Serialized as `{"type":"Plugin","name":"pkg>Name","plugin":{…},"config":{…}}`; the
/// `Plugin` tag is a built-in, so typetag's frozen registry never needs to know plugin
/// types. It binds when it is made — [`new`](PluginRegularizer::new), or deserialized
/// while loading a model — against the process-wide [`PluginRegistry`] (or the one given
/// to [`load_model`](crate::load_model)): a model whose plugin is missing fails to load
/// with an error naming the plugin. A plugin's failure inside `penalty`/`add_grad` is a
/// [`RegularizerError`] naming it, and stops training cleanly.
#[derive(Clone)]
pub struct PluginRegularizer {
    name: String,
    config: serde_json::Value,
    instance: Arc<RegularizerInstance>,
}

impl PluginRegularizer {
    /// `name` with `config`, bound against the global registry (searching
    /// `KILN_PLUGIN_PATH` once if it is not loaded yet).
    pub fn new(name: impl Into<String>, config: serde_json::Value) -> Result<Self, PluginError> {
        Self::new_in(PluginRegistry::global(), name, config)
    }

    /// `name` with `config`, bound against `registry`.
    pub fn new_in(
        registry: &PluginRegistry,
        name: impl Into<String>,
        config: serde_json::Value,
    ) -> Result<Self, PluginError> {
        Self::bind(registry, name.into(), None, config)
    }

    fn bind(
        registry: &PluginRegistry,
        name: String,
        saved_from: Option<PluginRef>,
        config: serde_json::Value,
    ) -> Result<Self, PluginError> {
        let entry = registry.regularizer(&name).ok_or_else(|| PluginError::NotRegistered {
            kind: "regularizer",
            name: name.clone(),
            saved_from: saved_from.map(Box::new),
            loaded: registry.loaded_names(),
            search_path: registry.search_path_problem(),
        })?;
        let instance = Arc::new(RegularizerInstance::create(entry, &name, &config)?);
        Ok(Self { name, config, instance })
    }

    /// The registered name (`pkg>Name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The config as given or loaded (the plugin's own view is in [`instance`](Self::instance)).
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// The plugin instance.
    pub fn instance(&self) -> &RegularizerInstance {
        &self.instance
    }

    fn error(&self, e: PluginError) -> RegularizerError {
        RegularizerError::new(&self.name, e.to_string())
    }
}

#[typetag::serde(name = "Plugin")]
impl Regularizer for PluginRegularizer {
    fn penalty(&self, values: &[f32]) -> Result<f32, RegularizerError> {
        self.instance.penalty(values).map_err(|e| self.error(e))
    }

    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), RegularizerError> {
        self.instance.add_grad(values, grad, scale).map_err(|e| self.error(e))
    }
}

impl std::fmt::Debug for PluginRegularizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegularizer").field("name", &self.name).field("config", &self.config).finish()
    }
}

impl Serialize for PluginRegularizer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let live = (self.instance.plugin_ref(), self.instance.config());
        Envelope::current(&self.name, &self.config, live).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PluginRegularizer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Envelope::deserialize(d)?;
        Self::bind(current(), e.name, e.plugin, e.config).map_err(serde::de::Error::custom)
    }
}
