//! kiln-plugin: the host side of kiln's plugins.
//!
//! [`PluginRegistry::global`] loads plugin libraries (`cdylib`s built against
//! `kiln-plugin-api`) with [`load`](PluginRegistry::load), [`load_dir`](PluginRegistry::load_dir)
//! or the `KILN_PLUGIN_PATH` search path, checking in order: the file opens, it is a kiln
//! plugin, its ABI version, its header size, its API semver, and its names (no built-in
//! shadowed, no name registered twice) — each failure its own [`PluginError`], naming the
//! file. Libraries are never unloaded.
//!
//! Plugin objects live in models as [`PluginRegularizer`] (the built-in typetag variant
//! `Plugin` of `dyn Regularizer`) and beside them as [`PluginCallback`] (a plain
//! `Callback`). Both bind to their implementation when they are made or deserialized, so a
//! model whose plugin is missing fails to load with an error naming the plugin;
//! [`load_model`] loads against a registry of your choice. typetag only sees the
//! `Plugin` impl in binaries that link this crate: reference it (e.g. call [`link`]) from
//! any binary that loads such models.
//!
//! ```no_run
//! use kiln_plugin::{PluginRegistry, PluginRegularizer};
//! use kiln_regularizers::Regularizer;
//!
//! let info = PluginRegistry::global().load("target/release/libkiln_l3.so")?;
//! println!("{} {}: {:?}", info.name, info.version, info.regularizers);
//! let l3 = PluginRegularizer::new("kiln_l3>L3", serde_json::json!({"l3": 0.01}))?;
//! assert!(l3.penalty(&[1.0, -2.0]).unwrap() > 0.0);
//! # Ok::<(), kiln_plugin::PluginError>(())
//! ```

mod callback;
mod envelope;
mod error;
mod hygiene;
mod instance;
mod loader;
mod names;
mod registry;
mod regularizer;
mod version;

pub use callback::PluginCallback;
pub use error::{PluginError, PluginRef};
pub use hygiene::TRUST_ANY_VAR;
pub use instance::{CallbackInstance, RegularizerInstance};
pub use kiln_plugin_api::abi::{ABI_VERSION, API_VERSION};
pub use names::{BUILTIN_CALLBACKS, BUILTIN_REGULARIZERS};
pub use registry::{PluginInfo, PluginRegistry, SEARCH_PATH_VAR, with_current};
pub use regularizer::PluginRegularizer;

/// Loads a saved model whose plugin objects bind against `registry` (instead of the
/// global one).
pub fn load_model(
    dir: impl AsRef<std::path::Path>,
    registry: &'static PluginRegistry,
) -> Result<kiln_trainer::Sequential, kiln_trainer::TrainError> {
    with_current(registry, || kiln_trainer::Sequential::load(dir))
}

/// Does nothing; calling it guarantees this crate (and its typetag `Plugin` impls) is
/// linked into the binary, so saved models with plugin objects deserialize.
pub fn link() {}
