//! The `Plugin` regularizer: a built-in typetag variant that stands for any plugin's.

use std::sync::{Arc, OnceLock};

use kiln_regularizers::Regularizer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::envelope::Envelope;
use crate::instance::RegularizerInstance;
use crate::{PluginError, PluginRef, PluginRegistry};

/// A regularizer implemented by a plugin, by registered name and JSON config.
///
/// Serialized as `{"type":"Plugin","name":"pkg>Name","plugin":{…},"config":{…}}`. It
/// deserializes without the plugin (the `Plugin` tag is a built-in, so typetag's frozen
/// registry never needs to know plugin types) and is *bound* to the implementation in the
/// process-wide [`PluginRegistry`] by [`bind`](Regularizer::bind), which the trainer calls
/// at compile/fit/evaluate/predict time — so the plugin may be loaded after the model was.
#[derive(Clone)]
pub struct PluginRegularizer {
    name: String,
    saved_from: Option<PluginRef>,
    config: serde_json::Value,
    /// Set once by the first successful bind; shared by clones (the instance is immutable).
    bound: OnceLock<Arc<RegularizerInstance>>,
}

impl PluginRegularizer {
    /// An unbound envelope (binds at the trainer's next `bind`).
    pub fn new(name: impl Into<String>, config: serde_json::Value) -> Self {
        Self { name: name.into(), saved_from: None, config, bound: OnceLock::new() }
    }

    /// An envelope bound now against the global registry (errors early: unknown name, bad config).
    pub fn bound(name: impl Into<String>, config: serde_json::Value) -> Result<Self, PluginError> {
        let reg = Self::new(name, config);
        reg.bind_in(PluginRegistry::global())?;
        Ok(reg)
    }

    /// Binds to `registry`'s implementation (no-op when already bound).
    pub fn bind_in(&self, registry: &PluginRegistry) -> Result<(), PluginError> {
        if self.bound.get().is_some() {
            return Ok(());
        }
        let entry = registry.regularizer(&self.name).ok_or_else(|| PluginError::NotRegistered {
            kind: "regularizer",
            name: self.name.clone(),
            saved_from: self.saved_from.clone(),
            loaded: registry.loaded_names(),
        })?;
        let instance = RegularizerInstance::create(entry, &self.name, &self.config)?;
        // A concurrent bind may have won; either instance is equivalent, the loser is dropped.
        let _ = self.bound.set(Arc::new(instance));
        Ok(())
    }

    /// The registered name (`pkg>Name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The config as given or loaded (the bound plugin's view is in [`instance`](Self::instance)).
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// The plugin instance, once bound.
    pub fn instance(&self) -> Option<&RegularizerInstance> {
        self.bound.get().map(|i| &**i)
    }

    /// The penalty, binding first if needed, with the plugin's errors as values.
    pub fn try_penalty(&self, values: &[f32]) -> Result<f32, PluginError> {
        self.bind_in(PluginRegistry::global())?;
        self.instance().expect("bound").penalty(values)
    }

    /// The gradient, binding first if needed, with the plugin's errors as values.
    pub fn try_add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), PluginError> {
        self.bind_in(PluginRegistry::global())?;
        self.instance().expect("bound").add_grad(values, grad, scale)
    }
}

#[typetag::serde(name = "Plugin")]
impl Regularizer for PluginRegularizer {
    /// Panics with the plugin's message if the plugin fails (or cannot be bound): the trait
    /// has no error channel, and the trainer binds before any use, so this is a plugin bug
    /// surfacing as an ordinary (catchable) Rust panic — never UB, never a silent 0.
    fn penalty(&self, values: &[f32]) -> f32 {
        self.try_penalty(values).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Panics like [`penalty`](Self::penalty) on a plugin failure.
    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) {
        self.try_add_grad(values, grad, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    fn bind(&self) -> Result<(), String> {
        self.bind_in(PluginRegistry::global()).map_err(|e| e.to_string())
    }

    fn clone_box(&self) -> Box<dyn Regularizer> {
        Box::new(self.clone())
    }
}

impl std::fmt::Debug for PluginRegularizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegularizer")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("bound", &self.bound.get().is_some())
            .finish()
    }
}

impl Serialize for PluginRegularizer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let live = self.instance().map(|i| (i.plugin_ref(), i.config()));
        Envelope::current(&self.name, &self.saved_from, &self.config, live).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PluginRegularizer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Envelope::deserialize(d)?;
        Ok(Self { name: e.name, saved_from: e.plugin, config: e.config, bound: OnceLock::new() })
    }
}
