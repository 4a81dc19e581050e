//! Cross-crate integration tests live beside this file; see `parity.rs`.
