//! What a plugin author implements for a regularizer, and the shims that export it.

use std::ffi::c_void;

use serde::{Serialize, de::DeserializeOwned};

use crate::abi::{RegularizerFactory, Sink, Str};
use crate::guard::{guard, write};

/// A regularizer implemented in a plugin: a serde config plus Keras' two formulas.
///
/// The config is the type itself (serialized into saved models, so keep field names
/// stable); [`validate`](RegularizerPlugin::validate) may refuse values serde accepts.
/// Instances are shared across the trainer's threads, hence `Send + Sync`. An `Err` from
/// either formula (or a panic) stops the host's training with the message, naming the
/// plugin; the host process lives on.
pub trait RegularizerPlugin: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Registered name, `package>Name` (Keras' `register_keras_serializable` style).
    const NAME: &'static str;

    /// The penalty of `values`, as a loss term.
    fn penalty(&self, values: &[f32]) -> Result<f32, String>;

    /// Adds `scale · ∂penalty/∂values` to `grad` (same length as `values`).
    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), String>;

    /// Checks a freshly deserialized config (e.g. a factor must not be negative).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The factory (name + `extern "C"` shims) of regularizer type `T`, for `export_plugin!`.
pub const fn regularizer_factory<T: RegularizerPlugin>() -> RegularizerFactory {
    RegularizerFactory {
        name: Str::from_static(T::NAME),
        create: create::<T>,
        penalty: penalty::<T>,
        add_grad: add_grad::<T>,
        config_json: config_json::<T>,
        drop: drop_instance::<T>,
    }
}

/// Parses `config`, validates it and boxes the instance (freed by `drop_instance::<T>`).
pub(crate) fn create_boxed<T: DeserializeOwned>(
    config: Str,
    out: *mut *mut c_void,
    err: *mut Sink,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> i32 {
    guard(err, || {
        // SAFETY: the host passes a string valid for this call.
        let text = unsafe { config.to_string_lossy() };
        let value: T = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        validate(&value)?;
        // SAFETY: `out` is a valid out-pointer provided by the host.
        unsafe { *out = Box::into_raw(Box::new(value)).cast() };
        Ok(())
    })
}

unsafe extern "C" fn create<T: RegularizerPlugin>(config: Str, out: *mut *mut c_void, err: *mut Sink) -> i32 {
    create_boxed::<T>(config, out, err, T::validate)
}

unsafe extern "C" fn penalty<T: RegularizerPlugin>(
    this: *const c_void,
    values: *const f32,
    n: usize,
    out: *mut f32,
    err: *mut Sink,
) -> i32 {
    guard(err, || {
        // SAFETY: `this` came from `create::<T>`; the host passes `n` readable values.
        let (reg, values) = unsafe { (&*this.cast::<T>(), slice(values, n)) };
        let penalty = reg.penalty(values)?;
        // SAFETY: `out` is a valid out-pointer provided by the host.
        unsafe { *out = penalty };
        Ok(())
    })
}

unsafe extern "C" fn add_grad<T: RegularizerPlugin>(
    this: *const c_void,
    values: *const f32,
    grad: *mut f32,
    n: usize,
    scale: f32,
    err: *mut Sink,
) -> i32 {
    guard(err, || {
        // SAFETY: `this` came from `create::<T>`; the host passes `n` readable values and
        // `n` writable gradients that do not overlap them.
        let (reg, values) = unsafe { (&*this.cast::<T>(), slice(values, n)) };
        let grad = if n == 0 {
            &mut [][..]
        } else {
            // SAFETY: the host passes `n` writable gradients that nothing else borrows.
            unsafe { std::slice::from_raw_parts_mut(grad, n) }
        };
        reg.add_grad(values, grad, scale)
    })
}

pub(crate) unsafe extern "C" fn config_json<T: Serialize>(this: *const c_void, out: *mut Sink) -> i32 {
    guard(out, || {
        // SAFETY: `this` came from the matching `create`.
        let value = unsafe { &*this.cast::<T>() };
        let json = serde_json::to_string(value).map_err(|e| e.to_string())?;
        write(out, &json);
        Ok(())
    })
}

pub(crate) unsafe extern "C" fn drop_instance<T>(this: *mut c_void) {
    // A panicking Drop must not unwind into the host; there is nobody to tell, so it is
    // swallowed (the plugin's own panic hook has already printed it).
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `this` came from `Box::into_raw` in the matching `create`, dropped once.
        drop(unsafe { Box::from_raw(this.cast::<T>()) })
    }));
}

/// `n` values at `ptr` (an empty slice for `n == 0`, whatever the pointer).
///
/// # Safety
/// For `n > 0`, `ptr` must point to `n` readable `f32`s valid for `'a`.
pub(crate) unsafe fn slice<'a>(ptr: *const f32, n: usize) -> &'a [f32] {
    if n == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `n` readable values at `ptr`.
        unsafe { std::slice::from_raw_parts(ptr, n) }
    }
}
