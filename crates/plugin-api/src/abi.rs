//! The `#[repr(C)]` types that cross the host/plugin boundary, and the version constants.
//!
//! Rust has no stable ABI, so nothing Rust-specific crosses: borrowed UTF-8 strings,
//! `f32` slices as pointer + length, opaque instance pointers, `extern "C"` function
//! pointers and status codes. Any layout change below bumps [`ABI_VERSION`]; fields are only
//! ever appended to [`PluginHeader`] (its `header_size` tells the host how much it got).

use std::ffi::c_void;

/// Version of the layouts in this module; the first field of every [`PluginHeader`].
pub const ABI_VERSION: u32 = 1;

/// The entry symbol every plugin exports (`extern "C" fn() -> *const PluginHeader`);
/// versioned so that a future ABI can live next to this one.
pub const ENTRY_SYMBOL: &str = "kiln_plugin_entry_v1";

/// The semver of the `kiln-plugin-api` crate the plugin (or host) was compiled against.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `rustc --version` of the compiler that built this crate (reported, never required).
pub const RUSTC_VERSION: &str = env!("KILN_RUSTC_VERSION");

/// A call succeeded.
pub const OK: i32 = 0;
/// A call failed; the message went to the error sink.
pub const ERR: i32 = 1;
/// The plugin panicked; the panic message went to the error sink.
pub const PANIC: i32 = 2;

/// What `wants_batches` returns when the plugin panicked deciding (plugins built before
/// this value existed return 0 then, which the host cannot tell from "no").
pub const WANTS_BATCHES_PANICKED: u8 = 2;

/// A borrowed UTF-8 string: valid for the duration of the call that hands it over, or for
/// the life of the process when it points into a plugin's static data.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Str {
    /// First byte.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

// SAFETY: a `Str` is a read-only view; the ones stored in statics point to `'static` data.
unsafe impl Sync for Str {}
// SAFETY: as above, read-only.
unsafe impl Send for Str {}

impl Str {
    /// A view of a `'static` string (usable in statics).
    pub const fn from_static(s: &'static str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }

    /// A view of `s`, valid while `s` is.
    pub fn new(s: &str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }

    /// The string, copied out (invalid UTF-8 is replaced, never trusted).
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (or `len` must be 0).
    pub unsafe fn to_string_lossy(&self) -> String {
        if self.len == 0 || self.ptr.is_null() {
            return String::new();
        }
        // SAFETY: the caller guarantees `ptr..ptr+len` is readable.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// A host-owned output: the plugin hands it strings (error messages, JSON) and the host
/// copies them into its own memory, so nothing allocated by one side is freed by the other.
#[repr(C)]
pub struct Sink {
    /// The host's state (e.g. a `*mut String`).
    pub ctx: *mut c_void,
    /// Copies the string into `ctx`.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, s: Str),
}

/// What a callback may ask of the training loop; the host reads it after each hook.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Control {
    stop_training: u8,
}

impl Control {
    /// A control with nothing requested.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks `fit` to stop after the current batch or epoch (Keras' `model.stop_training`).
    pub fn stop_training(&mut self) {
        self.stop_training = 1;
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop_training != 0
    }
}

/// What the plugin's entry symbol returns; lives in the plugin's static data.
#[repr(C)]
pub struct PluginHeader {
    /// [`ABI_VERSION`] as the plugin saw it. FIRST field, forever: the host reads only this
    /// `u32` before deciding whether to trust the rest.
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` as the plugin saw it (fields are only appended).
    pub header_size: u32,
    /// The `kiln-plugin-api` semver the plugin compiled against.
    pub api_version: Str,
    /// The plugin's `rustc --version` (informational).
    pub rustc_version: Str,
    /// The plugin crate's name.
    pub plugin_name: Str,
    /// The plugin crate's version.
    pub plugin_version: Str,
    /// Number of regularizer factories.
    pub n_regularizers: usize,
    /// The regularizer factories.
    pub regularizers: *const RegularizerFactory,
    /// Number of callback factories.
    pub n_callbacks: usize,
    /// The callback factories.
    pub callbacks: *const CallbackFactory,
}

// SAFETY: the header is immutable static data of the plugin.
unsafe impl Sync for PluginHeader {}

/// One regularizer type: its registered name, constructor and methods. `this` is the
/// instance `create` returned; every fallible call writes its error into `err`.
#[repr(C)]
pub struct RegularizerFactory {
    /// Registered name, `package>Name` (Keras style), e.g. `kiln_l3>L3`.
    pub name: Str,
    /// Builds an instance from its JSON config into `*out`.
    pub create: unsafe extern "C" fn(config: Str, out: *mut *mut c_void, err: *mut Sink) -> i32,
    /// Writes the penalty of `values[..n]` into `*out`.
    pub penalty:
        unsafe extern "C" fn(this: *const c_void, values: *const f32, n: usize, out: *mut f32, err: *mut Sink) -> i32,
    /// Adds `scale · ∂penalty/∂values` to `grad[..n]`.
    pub add_grad: unsafe extern "C" fn(
        this: *const c_void,
        values: *const f32,
        grad: *mut f32,
        n: usize,
        scale: f32,
        err: *mut Sink,
    ) -> i32,
    /// Writes the instance's config as JSON into `out`.
    pub config_json: unsafe extern "C" fn(this: *const c_void, out: *mut Sink) -> i32,
    /// Destroys the instance (on the plugin's side, with the plugin's allocator).
    pub drop: unsafe extern "C" fn(this: *mut c_void),
}

// SAFETY: immutable static data of the plugin.
unsafe impl Sync for RegularizerFactory {}

/// One callback type. Hooks get the Keras logs as a JSON object (`{"loss": 0.3, …}`,
/// non-finite values as `null`) and a [`Control`] to request a stop.
#[repr(C)]
pub struct CallbackFactory {
    /// Registered name, `package>Name`.
    pub name: Str,
    /// Builds an instance from its JSON config into `*out`.
    pub create: unsafe extern "C" fn(config: Str, out: *mut *mut c_void, err: *mut Sink) -> i32,
    /// Before the first epoch.
    pub on_train_begin: unsafe extern "C" fn(this: *mut c_void, ctl: *mut Control, err: *mut Sink) -> i32,
    /// Before each epoch (from 0).
    pub on_epoch_begin: unsafe extern "C" fn(this: *mut c_void, epoch: usize, ctl: *mut Control, err: *mut Sink) -> i32,
    /// Before each training batch (only when `wants_batches`).
    pub on_train_batch_begin:
        unsafe extern "C" fn(this: *mut c_void, batch: usize, ctl: *mut Control, err: *mut Sink) -> i32,
    /// After each training batch, with the epoch's running means.
    pub on_train_batch_end:
        unsafe extern "C" fn(this: *mut c_void, batch: usize, logs: Str, ctl: *mut Control, err: *mut Sink) -> i32,
    /// After each epoch, with its logs.
    pub on_epoch_end:
        unsafe extern "C" fn(this: *mut c_void, epoch: usize, logs: Str, ctl: *mut Control, err: *mut Sink) -> i32,
    /// After the last epoch.
    pub on_train_end: unsafe extern "C" fn(this: *mut c_void, logs: Str, ctl: *mut Control, err: *mut Sink) -> i32,
    /// 1 when the instance wants `on_train_batch_end`, 0 when not,
    /// [`WANTS_BATCHES_PANICKED`] if it panicked.
    pub wants_batches: unsafe extern "C" fn(this: *const c_void) -> u8,
    /// Writes the instance's config as JSON into `out`.
    pub config_json: unsafe extern "C" fn(this: *const c_void, out: *mut Sink) -> i32,
    /// Destroys the instance.
    pub drop: unsafe extern "C" fn(this: *mut c_void),
}

// SAFETY: immutable static data of the plugin.
unsafe impl Sync for CallbackFactory {}
