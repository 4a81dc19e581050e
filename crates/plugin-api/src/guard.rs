//! Plugin-side call guards: no panic and no Rust error ever crosses the boundary.
//!
//! A panic unwinding out of an `extern "C"` function aborts the process (Rust ≥ 1.81), and
//! the host's panic hook does not see a cdylib's panics (it has its own std), so every
//! shim runs the user's code under `catch_unwind` and turns the outcome into a status code
//! plus a message written into the host's [`Sink`].

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abi::{Sink, Str, ERR, OK, PANIC};

/// Runs `f`, mapping `Ok` to [`OK`], `Err(msg)` to [`ERR`] and a panic to [`PANIC`], with
/// the message written into `err`.
pub fn guard(err: *mut Sink, f: impl FnOnce() -> Result<(), String>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => OK,
        Ok(Err(msg)) => {
            write(err, &msg);
            ERR
        }
        Err(payload) => {
            write(err, &panic_message(payload.as_ref()));
            PANIC
        }
    }
}

/// Copies `s` into the host-owned sink (a null sink drops it).
pub fn write(sink: *mut Sink, s: &str) {
    if sink.is_null() {
        return;
    }
    // SAFETY: the host passes a valid sink for the duration of the call, and `Str::new(s)`
    // is valid while `s` is; the host copies the bytes before returning.
    unsafe { ((*sink).write)((*sink).ctx, Str::new(s)) }
}

/// The text of a panic payload (`panic!("…")` carries a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
