//! Crash injection for tests, from the `fail` crate when the `failpoints` feature is on;
//! nothing at all otherwise.

/// `failpoint!(NAME, |_| -> T { … })`: with the `failpoints` feature, when the `fail`
/// crate's point NAME is configured to `return`, runs the closure and returns its value
/// from the enclosing function. Without the feature it expands to nothing.
macro_rules! failpoint {
    ($name:literal, $action:expr) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name, $action);
    };
}

pub(crate) use failpoint;
