//! What a plugin author implements for a callback, and the shims that export it.

use std::collections::BTreeMap;
use std::ffi::c_void;

use serde::{Serialize, de::DeserializeOwned};

use crate::abi::{CallbackFactory, Control, Sink, Str};
use crate::guard::guard;
use crate::regularizer::{config_json, create_boxed, drop_instance};

/// Keras' `logs` dict as a plugin sees it: `loss`, `val_loss`, `accuracy`, … sorted by
/// name (non-finite values arrive as NaN).
pub type Logs = BTreeMap<String, f64>;

/// A callback implemented in a plugin: a serde config plus any of Keras' hooks. Hooks see
/// the logs, never the model; a failing hook stops training with its message.
pub trait CallbackPlugin: Serialize + DeserializeOwned + Send + 'static {
    /// Registered name, `package>Name`.
    const NAME: &'static str;

    /// Before the first epoch.
    fn on_train_begin(&mut self, _ctl: &mut Control) -> Result<(), String> {
        Ok(())
    }

    /// Before each epoch (`epoch` counts from 0).
    fn on_epoch_begin(&mut self, _epoch: usize, _ctl: &mut Control) -> Result<(), String> {
        Ok(())
    }

    /// Before each training batch (only if [`wants_batches`](CallbackPlugin::wants_batches)).
    fn on_train_batch_begin(&mut self, _batch: usize, _ctl: &mut Control) -> Result<(), String> {
        Ok(())
    }

    /// After each training batch, with the epoch's running means (only if
    /// [`wants_batches`](CallbackPlugin::wants_batches)).
    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        Ok(())
    }

    /// After each epoch, with its logs (validation included).
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        Ok(())
    }

    /// After the last epoch, however training ended.
    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        Ok(())
    }

    /// Whether the batch hooks do anything (batch logs cost a JSON round trip per batch).
    fn wants_batches(&self) -> bool {
        false
    }

    /// Checks a freshly deserialized config.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The factory (name + `extern "C"` shims) of callback type `T`, for `export_plugin!`.
pub const fn callback_factory<T: CallbackPlugin>() -> CallbackFactory {
    CallbackFactory {
        name: Str::from_static(T::NAME),
        create: create::<T>,
        on_train_begin: on_train_begin::<T>,
        on_epoch_begin: on_epoch_begin::<T>,
        on_train_batch_begin: on_train_batch_begin::<T>,
        on_train_batch_end: on_train_batch_end::<T>,
        on_epoch_end: on_epoch_end::<T>,
        on_train_end: on_train_end::<T>,
        wants_batches: wants_batches::<T>,
        config_json: config_json::<T>,
        drop: drop_instance::<T>,
    }
}

/// Parses the host's logs JSON (`null` for non-finite values).
fn parse_logs(logs: Str) -> Result<Logs, String> {
    // SAFETY: the host passes a string valid for this call.
    let text = unsafe { logs.to_string_lossy() };
    let raw: BTreeMap<String, Option<f64>> =
        serde_json::from_str(&text).map_err(|e| format!("logs from the host: {e}"))?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
}

/// Runs `hook` on the instance and control behind the host's pointers.
fn with<T>(
    this: *mut c_void,
    ctl: *mut Control,
    err: *mut Sink,
    hook: impl FnOnce(&mut T, &mut Control) -> Result<(), String>,
) -> i32 {
    guard(err, || {
        // SAFETY: `this` came from `create::<T>` and the host never calls two hooks of one
        // instance at once; `ctl` is valid and exclusive for this call.
        let (cb, ctl) = unsafe { (&mut *this.cast::<T>(), &mut *ctl) };
        hook(cb, ctl)
    })
}

unsafe extern "C" fn create<T: CallbackPlugin>(config: Str, out: *mut *mut c_void, err: *mut Sink) -> i32 {
    create_boxed::<T>(config, out, err, T::validate)
}

unsafe extern "C" fn on_train_begin<T: CallbackPlugin>(this: *mut c_void, ctl: *mut Control, err: *mut Sink) -> i32 {
    with::<T>(this, ctl, err, |cb, ctl| cb.on_train_begin(ctl))
}

unsafe extern "C" fn on_epoch_begin<T: CallbackPlugin>(
    this: *mut c_void,
    epoch: usize,
    ctl: *mut Control,
    err: *mut Sink,
) -> i32 {
    with::<T>(this, ctl, err, |cb, ctl| cb.on_epoch_begin(epoch, ctl))
}

unsafe extern "C" fn on_train_batch_begin<T: CallbackPlugin>(
    this: *mut c_void,
    batch: usize,
    ctl: *mut Control,
    err: *mut Sink,
) -> i32 {
    with::<T>(this, ctl, err, |cb, ctl| cb.on_train_batch_begin(batch, ctl))
}

unsafe extern "C" fn on_train_batch_end<T: CallbackPlugin>(
    this: *mut c_void,
    batch: usize,
    logs: Str,
    ctl: *mut Control,
    err: *mut Sink,
) -> i32 {
    with::<T>(this, ctl, err, |cb, ctl| cb.on_train_batch_end(batch, &parse_logs(logs)?, ctl))
}

unsafe extern "C" fn on_epoch_end<T: CallbackPlugin>(
    this: *mut c_void,
    epoch: usize,
    logs: Str,
    ctl: *mut Control,
    err: *mut Sink,
) -> i32 {
    with::<T>(this, ctl, err, |cb, ctl| cb.on_epoch_end(epoch, &parse_logs(logs)?, ctl))
}

unsafe extern "C" fn on_train_end<T: CallbackPlugin>(
    this: *mut c_void,
    logs: Str,
    ctl: *mut Control,
    err: *mut Sink,
) -> i32 {
    with::<T>(this, ctl, err, |cb, ctl| cb.on_train_end(&parse_logs(logs)?, ctl))
}

unsafe extern "C" fn wants_batches<T: CallbackPlugin>(this: *const c_void) -> u8 {
    // SAFETY: `this` came from `create::<T>`.
    let cb = unsafe { &*this.cast::<T>() };
    let mut wants = false;
    // Guarded like every other call, so the panic is reported, not printed twice.
    match guard(std::ptr::null_mut(), || {
        wants = cb.wants_batches();
        Ok(())
    }) {
        crate::abi::OK => u8::from(wants),
        _ => crate::abi::WANTS_BATCHES_PANICKED,
    }
}
