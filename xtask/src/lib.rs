//! kiln's developer commands as a library: `reproduce` (the chapter's experiments and
//! figures), `bench`, `parity`, `data`, `new-plugin`. The `cargo xtask` binary is a thin
//! command line over these; tests call them in-process.

pub mod bench;
pub mod data;
pub mod models;
pub mod new_plugin;
pub mod out_path;
pub mod parity;
pub mod plot;
pub mod plugins;
pub mod reproduce;
pub mod rows;
