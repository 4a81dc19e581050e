//! kiln-plugin: the host side of kiln's plugins.
//!
//! [`PluginRegistry::global`] loads plugin libraries (`cdylib`s built against
//! `kiln-plugin-api`) with [`load`](PluginRegistry::load), [`load_dir`](PluginRegistry::load_dir)
//! or the `KILN_PLUGIN_PATH` search path, checking in order: the file opens, it is a kiln
//! plugin, its ABI version, its header size, its API semver, and its names (no built-in
//! shadowed, no name registered twice) — each failure its own [`PluginError`], naming the
//! file. Libraries are never unloaded.
//!
//! Plugin objects live in models through two built-in typetag variants named `Plugin`:
//! [`PluginRegularizer`] (`dyn Regularizer`) and [`PluginCallback`] (`dyn Callback`). They
//! deserialize without the plugin and bind at compile/fit time, so a saved model loads
//! first and finds its plugin later. typetag only sees these impls in binaries that link
//! this crate: reference it (e.g. call [`link`]) from any binary that loads such models.
//!
//! ```no_run
//! use kiln_plugin::{PluginRegistry, PluginRegularizer};
//! use kiln_regularizers::Regularizer;
//!
//! let info = PluginRegistry::global().load("target/release/libkiln_l3.so")?;
//! println!("{} {}: {:?}", info.name, info.version, info.regularizers);
//! let l3 = PluginRegularizer::bound("kiln_l3>L3", serde_json::json!({"l3": 0.01}))?;
//! assert!(l3.penalty(&[1.0, -2.0]) > 0.0);
//! # Ok::<(), kiln_plugin::PluginError>(())
//! ```

#![warn(missing_docs)]

mod callback;
mod envelope;
mod error;
mod instance;
mod loader;
mod names;
mod registry;
mod regularizer;
mod version;

pub use callback::PluginCallback;
pub use error::{PluginError, PluginRef};
pub use instance::{CallbackInstance, RegularizerInstance};
pub use kiln_plugin_api::abi::{ABI_VERSION, API_VERSION};
pub use names::{BUILTIN_CALLBACKS, BUILTIN_REGULARIZERS};
pub use registry::{PluginInfo, PluginRegistry, SEARCH_PATH_VAR};
pub use regularizer::PluginRegularizer;

/// Does nothing; calling it guarantees this crate (and its typetag `Plugin` impls) is
/// linked into the binary, so saved models with plugin objects deserialize.
pub fn link() {}
