//! Live plugin objects: an instance pointer, its factory and its library, with safe,
//! fallible methods. The only place the host calls into plugin code after loading.

use std::ffi::c_void;
use std::sync::Arc;

use kiln_plugin_api::abi::{self, CallbackFactory, Control, RegularizerFactory, Sink, Str};

use crate::loader::LoadedPlugin;
use crate::registry::Entry;
use crate::{PluginError, PluginInfo, PluginRef};

/// A regularizer instance living in a plugin (destroyed through the plugin on drop).
pub struct RegularizerInstance {
    plugin: Arc<LoadedPlugin>,
    factory: &'static RegularizerFactory,
    this: *mut c_void,
    name: String,
}

// SAFETY: `RegularizerPlugin` requires `Send + Sync` of the plugin's type, so the instance
// behind `this` may be used and dropped from any thread, and shared.
unsafe impl Send for RegularizerInstance {}
// SAFETY: as above.
unsafe impl Sync for RegularizerInstance {}

impl RegularizerInstance {
    /// Builds `name` from its JSON config inside the plugin.
    pub(crate) fn create(
        entry: Entry<RegularizerFactory>,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<Self, PluginError> {
        let json = config.to_string();
        let mut this = std::ptr::null_mut();
        // SAFETY: `create` reads the config during the call and writes the instance pointer.
        call(KIND_REG, name, |err| unsafe { (entry.factory.create)(Str::new(&json), &mut this, err) })?;
        Ok(Self { plugin: entry.plugin, factory: entry.factory, this, name: name.to_string() })
    }

    /// The penalty of `values`.
    pub fn penalty(&self, values: &[f32]) -> Result<f32, PluginError> {
        let mut out = 0.0f32;
        // SAFETY: `values` is readable for the call, `out` writable; `this` is ours.
        call(KIND_REG, &self.name, |err| unsafe {
            (self.factory.penalty)(self.this, values.as_ptr(), values.len(), &mut out, err)
        })?;
        Ok(out)
    }

    /// Adds `scale · ∂penalty/∂values` to `grad`.
    pub fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), PluginError> {
        // The plugin trusts `n` for both slices: make sure it is true.
        assert_eq!(values.len(), grad.len(), "regularizer `{}`: values and grad differ in length", self.name);
        // SAFETY: both slices hold `n` elements, `grad` is exclusively borrowed (no overlap).
        call(KIND_REG, &self.name, |err| unsafe {
            (self.factory.add_grad)(self.this, values.as_ptr(), grad.as_mut_ptr(), values.len(), scale, err)
        })
        .map(drop)
    }

    /// The instance's config as the plugin serializes it (plugin-side defaults included).
    pub fn config(&self) -> Result<serde_json::Value, PluginError> {
        // SAFETY: `config_json` only reads the instance and writes into the sink.
        let json = call(KIND_REG, &self.name, |out| unsafe { (self.factory.config_json)(self.this, out) })?;
        parse_config(KIND_REG, &self.name, &json)
    }

    /// The library this instance lives in.
    pub fn plugin(&self) -> &PluginInfo {
        &self.plugin.info
    }

    pub(crate) fn plugin_ref(&self) -> PluginRef {
        self.plugin.plugin_ref()
    }
}

impl Drop for RegularizerInstance {
    fn drop(&mut self) {
        // SAFETY: `this` came from this factory's `create` and is dropped exactly once.
        unsafe { (self.factory.drop)(self.this) }
    }
}

impl std::fmt::Debug for RegularizerInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegularizerInstance({} from {})", self.name, self.plugin.info.name)
    }
}

/// A callback instance living in a plugin.
pub struct CallbackInstance {
    plugin: Arc<LoadedPlugin>,
    factory: &'static CallbackFactory,
    this: *mut c_void,
    name: String,
}

// SAFETY: `CallbackPlugin` requires `Send` of the plugin's type; `&mut self` on every hook
// keeps calls exclusive.
unsafe impl Send for CallbackInstance {}

impl CallbackInstance {
    /// Builds `name` from its JSON config inside the plugin.
    pub(crate) fn create(
        entry: Entry<CallbackFactory>,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<Self, PluginError> {
        let json = config.to_string();
        let mut this = std::ptr::null_mut();
        // SAFETY: as for regularizers.
        call(KIND_CB, name, |err| unsafe { (entry.factory.create)(Str::new(&json), &mut this, err) })?;
        Ok(Self { plugin: entry.plugin, factory: entry.factory, this, name: name.to_string() })
    }

    /// Before the first epoch.
    pub fn on_train_begin(&mut self, ctl: &mut Control) -> Result<(), PluginError> {
        // SAFETY: `this` is ours and exclusively borrowed; `ctl` is valid for the call.
        call(KIND_CB, &self.name, |err| unsafe { (self.factory.on_train_begin)(self.this, ctl, err) }).map(drop)
    }

    /// Before each epoch.
    pub fn on_epoch_begin(&mut self, epoch: usize, ctl: &mut Control) -> Result<(), PluginError> {
        // SAFETY: as above.
        call(KIND_CB, &self.name, |err| unsafe { (self.factory.on_epoch_begin)(self.this, epoch, ctl, err) }).map(drop)
    }

    /// Before a training batch.
    pub fn on_train_batch_begin(&mut self, batch: usize, ctl: &mut Control) -> Result<(), PluginError> {
        // SAFETY: as above.
        call(KIND_CB, &self.name, |err| unsafe { (self.factory.on_train_batch_begin)(self.this, batch, ctl, err) })
            .map(drop)
    }

    /// After a training batch; `logs` is a JSON object.
    pub fn on_train_batch_end(&mut self, batch: usize, logs: &str, ctl: &mut Control) -> Result<(), PluginError> {
        // SAFETY: as above; `logs` is valid for the call.
        call(KIND_CB, &self.name, |err| unsafe {
            (self.factory.on_train_batch_end)(self.this, batch, Str::new(logs), ctl, err)
        })
        .map(drop)
    }

    /// After an epoch; `logs` is a JSON object.
    pub fn on_epoch_end(&mut self, epoch: usize, logs: &str, ctl: &mut Control) -> Result<(), PluginError> {
        // SAFETY: as above.
        call(KIND_CB, &self.name, |err| unsafe {
            (self.factory.on_epoch_end)(self.this, epoch, Str::new(logs), ctl, err)
        })
        .map(drop)
    }

    /// After the last epoch; `logs` is a JSON object.
    pub fn on_train_end(&mut self, logs: &str, ctl: &mut Control) -> Result<(), PluginError> {
        // SAFETY: as above.
        call(KIND_CB, &self.name, |err| unsafe { (self.factory.on_train_end)(self.this, Str::new(logs), ctl, err) })
            .map(drop)
    }

    /// Whether the callback wants batch hooks (false if it panicked deciding).
    pub fn wants_batches(&self) -> bool {
        self.wants_batches_raw() == 1
    }

    /// The plugin's raw answer: 1 yes, 0 no, `WANTS_BATCHES_PANICKED` when it panicked.
    pub(crate) fn wants_batches_raw(&self) -> u8 {
        // SAFETY: `wants_batches` only reads the instance and catches its own panics.
        unsafe { (self.factory.wants_batches)(self.this) }
    }

    /// The instance's config as the plugin serializes it.
    pub fn config(&self) -> Result<serde_json::Value, PluginError> {
        // SAFETY: as for regularizers.
        let json = call(KIND_CB, &self.name, |out| unsafe { (self.factory.config_json)(self.this, out) })?;
        parse_config(KIND_CB, &self.name, &json)
    }

    /// The library this instance lives in.
    pub fn plugin(&self) -> &PluginInfo {
        &self.plugin.info
    }

    pub(crate) fn plugin_ref(&self) -> PluginRef {
        self.plugin.plugin_ref()
    }
}

impl Drop for CallbackInstance {
    fn drop(&mut self) {
        // SAFETY: `this` came from this factory's `create` and is dropped exactly once.
        unsafe { (self.factory.drop)(self.this) }
    }
}

impl std::fmt::Debug for CallbackInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallbackInstance({} from {})", self.name, self.plugin.info.name)
    }
}

const KIND_REG: &str = "regularizer";
const KIND_CB: &str = "callback";

/// Runs one boundary call with a fresh host-owned sink; returns what the plugin wrote on
/// success, or its message as [`PluginError::Rejected`] / [`PluginError::Panicked`].
fn call(kind: &'static str, name: &str, f: impl FnOnce(*mut Sink) -> i32) -> Result<String, PluginError> {
    // `String::new()` does not allocate: the hot path (penalty per batch) stays allocation-free.
    let mut text = String::new();
    let mut sink = Sink { ctx: (&raw mut text).cast(), write: write_string };
    let status = f(&mut sink);
    let name = || name.to_string();
    match status {
        abi::OK => Ok(text),
        abi::PANIC => Err(PluginError::Panicked { kind, name: name(), message: text }),
        abi::ERR => Err(PluginError::Rejected { kind, name: name(), message: text }),
        other => Err(PluginError::Rejected { kind, name: name(), message: format!("unknown status {other}: {text}") }),
    }
}

/// The host's sink writer: appends a copy of the plugin's bytes to the `String` at `ctx`.
unsafe extern "C" fn write_string(ctx: *mut c_void, s: Str) {
    // SAFETY: `ctx` is the `&mut String` set up by `call`, alive for the whole call, and `s`
    // is valid for this call (copied before returning).
    unsafe { (*ctx.cast::<String>()).push_str(&s.to_string_lossy()) }
}

fn parse_config(kind: &'static str, name: &str, json: &str) -> Result<serde_json::Value, PluginError> {
    serde_json::from_str(json).map_err(|e| PluginError::Rejected {
        kind,
        name: name.to_string(),
        message: format!("config is not JSON: {e}"),
    })
}
