//! The `Plugin` callback: a built-in typetag variant that stands for any plugin's.

use kiln_plugin_api::Control as PluginControl;
use kiln_trainer::callbacks::{Callback, Control};
use kiln_trainer::{Logs, TrainError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::envelope::Envelope;
use crate::instance::CallbackInstance;
use crate::{PluginError, PluginRef, PluginRegistry};

/// A callback implemented by a plugin, by registered name and JSON config; serialized
/// like [`PluginRegularizer`](crate::PluginRegularizer) and bound by `fit` (through
/// [`bind`](Callback::bind)) against the global [`PluginRegistry`]. Hooks see the logs as
/// JSON and may request a stop; a failing or panicking hook stops `fit` with its message.
pub struct PluginCallback {
    name: String,
    saved_from: Option<PluginRef>,
    config: serde_json::Value,
    bound: Option<CallbackInstance>,
    wants_batches: bool,
}

impl PluginCallback {
    /// An unbound envelope (`fit` binds it).
    pub fn new(name: impl Into<String>, config: serde_json::Value) -> Self {
        Self { name: name.into(), saved_from: None, config, bound: None, wants_batches: false }
    }

    /// Binds to `registry`'s implementation (no-op when already bound: state persists
    /// across `fit` calls, as for a Rust callback object).
    pub fn bind_in(&mut self, registry: &PluginRegistry) -> Result<(), PluginError> {
        if self.bound.is_some() {
            return Ok(());
        }
        let entry = registry.callback(&self.name).ok_or_else(|| PluginError::NotRegistered {
            kind: "callback",
            name: self.name.clone(),
            saved_from: self.saved_from.clone(),
            loaded: registry.loaded_names(),
        })?;
        let instance = CallbackInstance::create(entry, &self.name, &self.config)?;
        self.wants_batches = instance.wants_batches();
        self.bound = Some(instance);
        Ok(())
    }

    /// The registered name (`pkg>Name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin instance, once bound.
    pub fn instance(&self) -> Option<&CallbackInstance> {
        self.bound.as_ref()
    }

    /// Runs `hook` on the bound instance and forwards a stop request to `fit`.
    fn hook(
        &mut self,
        ctl: &mut Control<'_>,
        hook: impl FnOnce(&mut CallbackInstance, &mut PluginControl) -> Result<(), PluginError>,
    ) -> Result<(), TrainError> {
        let err = |message: String| TrainError::Callback { callback: self.name.clone(), message };
        let Some(instance) = self.bound.as_mut() else {
            return Err(err("used before bind(); fit binds callbacks before training".into()));
        };
        let mut plugin_ctl = PluginControl::new();
        hook(instance, &mut plugin_ctl).map_err(|e| err(e.to_string()))?;
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

#[typetag::serde(name = "Plugin")]
impl Callback for PluginCallback {
    fn on_train_begin(&mut self, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.hook(ctl, |i, c| i.on_train_begin(c))
    }

    fn on_epoch_begin(&mut self, epoch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.hook(ctl, |i, c| i.on_epoch_begin(epoch, c))
    }

    fn on_train_batch_begin(&mut self, batch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.hook(ctl, |i, c| i.on_train_batch_begin(batch, c))
    }

    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
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

    fn bind(&mut self) -> Result<(), TrainError> {
        self.bind_in(PluginRegistry::global())
            .map_err(|e| TrainError::Callback { callback: self.name.clone(), message: e.to_string() })
    }

    fn wants_batches(&self) -> bool {
        self.wants_batches
    }
}

impl std::fmt::Debug for PluginCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCallback")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("bound", &self.bound.is_some())
            .finish()
    }
}

impl Serialize for PluginCallback {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let live = self.bound.as_ref().map(|i| (i.plugin_ref(), i.config()));
        Envelope::current(&self.name, &self.saved_from, &self.config, live).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PluginCallback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Envelope::deserialize(d)?;
        Ok(Self { name: e.name, saved_from: e.plugin, config: e.config, bound: None, wants_batches: false })
    }
}
