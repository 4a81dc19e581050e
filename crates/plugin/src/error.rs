//! Every way loading or using a plugin can fail; each names the file or the plugin.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which library produced a plugin object (kept in saved models, for error messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    /// The plugin crate's name.
    pub name: String,
    /// The plugin crate's version.
    pub version: String,
    /// The plugin ABI it was built for.
    pub abi: u32,
}

/// A plugin library that could not be loaded, or a plugin object that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be opened as a shared library (missing, wrong architecture…).
    #[error("{path}: cannot load as a shared library: {message}", path = .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A shared library without kiln's entry symbol.
    #[error("{path}: not a kiln plugin (no `{symbol}` symbol)", path = .path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// A plugin built for another plugin ABI.
    #[error(
        "{path}: plugin ABI version {found}, but this kiln speaks ABI version {expected}; \
         rebuild the plugin against this kiln's kiln-plugin-api",
        path = .path.display()
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's ABI version.
        found: u32,
        /// The host's.
        expected: u32,
    },
    /// A header smaller than the host's (a corrupt or hand-made plugin).
    #[error("{path}: plugin header is {found} bytes, this kiln needs at least {expected}", path = .path.display())]
    HeaderSize {
        /// The file.
        path: PathBuf,
        /// The plugin's header size.
        found: u32,
        /// The host's.
        expected: u32,
    },
    /// A plugin built against an incompatible `kiln-plugin-api`.
    #[error(
        "{path}: plugin built against kiln-plugin-api {plugin}, not compatible with this kiln's {host}",
        path = .path.display()
    )]
    ApiIncompatible {
        /// The file.
        path: PathBuf,
        /// The plugin's API version.
        plugin: String,
        /// The host's.
        host: String,
    },
    /// A registered name that is not `package>Name`.
    #[error("{path}: {kind} name `{name}` is not of the form `package>Name`", path = .path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// `regularizer` or `callback`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A name that a built-in already uses.
    #[error("{path}: {kind} `{name}` would shadow kiln's built-in {kind} of that name", path = .path.display())]
    ShadowsBuiltin {
        /// The file.
        path: PathBuf,
        /// `regularizer` or `callback`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A name registered twice (by two plugins, or twice by one).
    #[error(
        "{second}: {kind} `{name}` is already registered by {first}",
        first = .first.display(),
        second = .second.display()
    )]
    DuplicateName {
        /// `regularizer` or `callback`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The library that registered it first.
        first: PathBuf,
        /// The library that tried again.
        second: PathBuf,
    },
    /// A name no loaded plugin provides.
    #[error(
        "{kind} `{name}`{saved} is not registered; load its plugin first (`--plugin path/to/lib….so` \
         or the KILN_PLUGIN_PATH search path). Loaded plugins: {loaded}{search}",
        saved = saved_note(.saved_from),
        loaded = list(.loaded),
        search = .search_path.as_ref().map_or(String::new(), |p| format!(". {p}"))
    )]
    NotRegistered {
        /// `regularizer` or `callback`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The plugin a saved model says it came from.
        saved_from: Option<Box<PluginRef>>,
        /// The plugins loaded now (`name version`).
        loaded: Vec<String>,
        /// What failed in `KILN_PLUGIN_PATH`, which may be why.
        search_path: Option<String>,
    },
    /// The plugin refused a call (a bad config, a failing hook…).
    #[error("plugin {kind} `{name}`: {message}")]
    Rejected {
        /// `regularizer` or `callback`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin panicked; the panic was caught on its side.
    #[error("plugin {kind} `{name}` panicked: {message}")]
    Panicked {
        /// `regularizer` or `callback`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The panic message.
        message: String,
    },
    /// A plugin file or folder that someone else could have written (see `hygiene`).
    #[error(
        "{path}: refusing to load a plugin whose {what} {problem} (or set KILN_PLUGIN_TRUST_ANY=1 to load it anyway)",
        path = .path.display()
    )]
    Insecure {
        /// The file or folder.
        path: PathBuf,
        /// `file` or `folder`.
        what: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// Entries of `KILN_PLUGIN_PATH` that could not be loaded (the others were).
    #[error("KILN_PLUGIN_PATH: {}", .problems.join("; "))]
    SearchPath {
        /// One message per failing entry, each naming it.
        problems: Vec<String>,
    },
    /// A plugin directory or search path entry could not be read.
    #[error("{path}: cannot read plugin directory: {message}", path = .path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS message.
        message: String,
    },
}

fn saved_note(saved: &Option<Box<PluginRef>>) -> String {
    saved.as_ref().map_or(String::new(), |p| format!(" (saved from plugin `{}` {})", p.name, p.version))
}

fn list(loaded: &[String]) -> String {
    if loaded.is_empty() { "none".to_string() } else { loaded.join(", ") }
}
