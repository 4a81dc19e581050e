//! kiln's developer commands as a library: `reproduce` (the chapter's experiments and
//! figures), `bench`, `new-plugin`, and kiln-cli's `parity`, `data`, `keras import`, `predict`, `export-onnx`. The `cargo xtask` binary is a thin
//! command line over these; tests call them in-process.

pub mod bench;
pub mod new_plugin;
pub mod plot;
pub mod plugins;
pub mod reproduce;

// The user-facing commands live in `kiln-cli` (the installable `kiln` binary); xtask
// runs the same code under `cargo xtask`.
pub use kiln_cli::{data, models, out_path, parity, rows};
