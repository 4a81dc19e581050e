//! Plugin-side call guards: no panic and no Rust error ever crosses the boundary.
//!
//! A panic unwinding out of an `extern "C"` function aborts the process (Rust ≥ 1.81), and
//! the host's panic hook does not see a cdylib's panics (it has its own std), so every
//! shim runs the user's code under `catch_unwind` and turns the outcome into a status code
//! plus a message written into the host's [`Sink`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::abi::{ERR, OK, PANIC, Sink, Str};

/// Runs `f`, mapping `Ok` to [`OK`], `Err(msg)` to [`ERR`] and a panic to [`PANIC`], with
/// the message written into `err`.
pub fn guard(err: *mut Sink, f: impl FnOnce() -> Result<(), String>) -> i32 {
    install_hook();
    let outer = IN_GUARD.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.set(outer);
    match result {
        Ok(Ok(())) => OK,
        Ok(Err(msg)) => {
            write(err, &msg);
            ERR
        }
        Err(payload) => {
            let at = PANIC_AT.take().map_or(String::new(), |at| format!(" (at {at})"));
            write(err, &format!("{}{at}", panic_message(payload.as_ref())));
            PANIC
        }
    }
}

thread_local! {
    /// Whether this thread is inside a guarded call (its panic goes to the host instead).
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic happened, for the host's message.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps the plugin's panic hook once: a panic inside a guarded call is reported to the
/// host as an error (with its location), so printing it here too would only be noise;
/// panics elsewhere (threads the plugin spawns) still reach the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_GUARD.get() {
                PANIC_AT.set(info.location().map(|l| l.to_string()));
            } else {
                previous(info);
            }
        }));
    });
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

#[cfg(test)]
mod tests {
    use std::ffi::c_void;

    use super::*;

    unsafe extern "C" fn push(ctx: *mut c_void, s: Str) {
        // SAFETY: `run` passes a live `String` as `ctx` and a valid string for the call.
        unsafe { (*ctx.cast::<String>()).push_str(&s.to_string_lossy()) }
    }

    fn run(f: impl FnOnce() -> Result<(), String>) -> (i32, String) {
        let mut text = String::new();
        let mut sink = Sink { ctx: (&raw mut text).cast(), write: push };
        let status = guard(&mut sink, f);
        (status, text)
    }

    #[test]
    fn statuses_and_messages() {
        assert_eq!(run(|| Ok(())), (OK, String::new()));
        assert_eq!(run(|| Err("nope".into())), (ERR, "nope".into()));
        let (status, text) = run(|| panic!("boom {}", 1));
        assert_eq!(status, PANIC);
        assert!(text.starts_with("boom 1 (at ") && text.contains("guard.rs"), "{text}");
    }
}
