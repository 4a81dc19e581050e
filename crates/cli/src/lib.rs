//! The `kiln` command line as a library: `keras import`, `predict`, `export-onnx`,
//! `data inspect|vocab|keras-imdb` and `parity`. The `kiln` binary (`cargo install
//! kiln-cli`) parses [`Cli`] and calls [`run`]; `cargo xtask` reuses these commands.

pub mod command;
pub mod data;
pub mod models;
pub mod out_path;
pub mod parity;
pub mod rows;

pub use command::{Cli, Command, DataCommand, KerasCommand, run};
