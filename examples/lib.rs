//! kiln's runnable examples live beside this file; run one with
//! `cargo run --release -p kiln-examples --example readme` (or `custom_layer`,
//! `custom_callback`, `save_load`).
