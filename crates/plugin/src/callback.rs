//! The plugin callback: a plain `Callback` that forwards Keras' hooks to a plugin.

use kiln_plugin_api::Control as PluginControl;
use kiln_plugin_api::abi::WANTS_BATCHES_PANICKED;
use kiln_trainer::callbacks::{Callback, Control};
use kiln_trainer::{Logs, TrainError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::envelope::Envelope;
use crate::instance::CallbackInstance;
use crate::registry::current;
use crate::{PluginError, PluginRef, PluginRegistry};

/// A callback implemented by a plugin, by registered name and JSON config, bound to its
/// implementation when made ([`new`](PluginCallback::new) or deserialized from its
/// envelope, `{"name": "pkg>Name", "plugin": {…}, "config": {…}}`). Hooks see the logs
/// as JSON and may request a stop; a failing or panicking hook stops `fit` with its
/// message, naming the plugin.
pub struct PluginCallback {
    name: String,
    config: serde_json::Value,
    instance: CallbackInstance,
    wants_batches: bool,
}

impl PluginCallback {
    /// `name` with `config`, bound against the global registry.
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
        let entry = registry.callback(&name).ok_or_else(|| PluginError::NotRegistered {
            kind: "callback",
            name: name.clone(),
            saved_from: saved_from.map(Box::new),
            loaded: registry.loaded_names(),
            search_path: registry.search_path_problem(),
        })?;
        let instance = CallbackInstance::create(entry, &name, &config)?;
        let wants_batches = match instance.wants_batches_raw() {
            WANTS_BATCHES_PANICKED => {
                return Err(PluginError::Panicked {
                    kind: "callback",
                    name,
                    message: "in wants_batches (batch hooks cannot be decided)".into(),
                });
            }
            v => v != 0,
        };
        Ok(Self { name, config, instance, wants_batches })
    }

    /// The registered name (`pkg>Name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin instance.
    pub fn instance(&self) -> &CallbackInstance {
        &self.instance
    }

    /// Runs `hook` on the instance and forwards a stop request to `fit`.
    fn hook(
        &mut self,
        ctl: &mut Control<'_>,
        hook: impl FnOnce(&mut CallbackInstance, &mut PluginControl) -> Result<(), PluginError>,
    ) -> Result<(), TrainError> {
        let mut plugin_ctl = PluginControl::new();
        hook(&mut self.instance, &mut plugin_ctl)
            .map_err(|e| TrainError::Callback { callback: self.name.clone(), message: e.to_string() })?;
        if plugin_ctl.stop_requested() {
            ctl.stop_training();
        }
        Ok(())
    }
}

/// Keras' logs as the JSON object plugins receive (non-finite values become `null`).
fn logs_json(logs: &Logs) -> String {
    logs.to_json().to_string()
}

impl Callback for PluginCallback {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.hook(ctl, |i, c| i.on_train_begin(c))
    }

    fn on_epoch_begin(&mut self, epoch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.hook(ctl, |i, c| i.on_epoch_begin(epoch, c))
    }

    fn on_train_batch_begin(&mut self, batch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        // A plugin that said it wants no batches is not called across the ABI per batch.
        if !self.wants_batches {
            return Ok(());
        }
        self.hook(ctl, |i, c| i.on_train_batch_begin(batch, c))
    }

    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        if !self.wants_batches {
            return Ok(());
        }
        let json = logs_json(logs);
        self.hook(ctl, |i, c| i.on_train_batch_end(batch, &json, c))
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let json = logs_json(logs);
        self.hook(ctl, |i, c| i.on_epoch_end(epoch, &json, c))
    }

    fn on_train_end(&mut self, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let json = logs_json(logs);
        self.hook(ctl, |i, c| i.on_train_end(&json, c))
    }

    fn wants_batches(&self) -> bool {
        self.wants_batches
    }
}

impl std::fmt::Debug for PluginCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCallback").field("name", &self.name).field("config", &self.config).finish()
    }
}

impl Serialize for PluginCallback {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let live = (self.instance.plugin_ref(), self.instance.config());
        Envelope::current(&self.name, &self.config, live).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PluginCallback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Envelope::deserialize(d)?;
        Self::bind(current(), e.name, e.plugin, e.config).map_err(serde::de::Error::custom)
    }
}
