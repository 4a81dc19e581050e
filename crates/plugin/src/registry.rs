//! The process-wide registry: every loaded plugin, and which names they provide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use kiln_plugin_api::abi::{CallbackFactory, RegularizerFactory};
use serde::Serialize;

use crate::PluginError;
use crate::loader::{self, LoadedPlugin};
use crate::names::{self, BUILTIN_CALLBACKS, BUILTIN_REGULARIZERS, NameProblem};

/// The environment variable listing plugin files and directories (`:`-separated on Unix).
pub const SEARCH_PATH_VAR: &str = "KILN_PLUGIN_PATH";

/// What a loaded plugin reported about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// The plugin crate's name.
    pub name: String,
    /// The plugin crate's version.
    pub version: String,
    /// The file it was loaded from (as given).
    pub path: PathBuf,
    /// The `kiln-plugin-api` version it was built against.
    pub api_version: String,
    /// The rustc that built it.
    pub rustc_version: String,
    /// The regularizer names it registers.
    pub regularizers: Vec<String>,
    /// The callback names it registers.
    pub callbacks: Vec<String>,
}

/// A name's implementation: the library (kept alive by the `Arc`) and its factory.
pub(crate) struct Entry<F: 'static> {
    pub plugin: Arc<LoadedPlugin>,
    pub factory: &'static F,
}

impl<F> Clone for Entry<F> {
    fn clone(&self) -> Self {
        Self { plugin: self.plugin.clone(), factory: self.factory }
    }
}

/// Loaded plugins and their names. Libraries are never unloaded, so nothing is ever
/// removed; [`PluginRegistry::global`] is the one the `Plugin` envelopes bind against.
#[derive(Default)]
pub struct PluginRegistry {
    inner: RwLock<Inner>,
    /// Set once the search path was read: what failed in it, if anything.
    search_path: OnceLock<Option<String>>,
}

#[derive(Default)]
struct Inner {
    /// Canonical path → plugin, which makes `load` idempotent per file.
    plugins: BTreeMap<PathBuf, Arc<LoadedPlugin>>,
    regularizers: BTreeMap<String, Entry<RegularizerFactory>>,
    callbacks: BTreeMap<String, Entry<CallbackFactory>>,
}

impl PluginRegistry {
    /// An empty registry (tests; the trainer uses [`global`](PluginRegistry::global)).
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static PluginRegistry {
        static GLOBAL: OnceLock<PluginRegistry> = OnceLock::new();
        GLOBAL.get_or_init(PluginRegistry::new)
    }

    /// Loads the plugin library at `path` and registers its names; loading the same file
    /// again returns the same info. Errors name the file and say which check failed.
    ///
    /// This runs native code from `path`: load trusted plugins only.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<PluginInfo, PluginError> {
        let shown = path.as_ref();
        let file = std::fs::canonicalize(shown)
            .map_err(|e| PluginError::Open { path: shown.to_path_buf(), message: e.to_string() })?;
        // One writer at a time: two threads loading the same file must not both register it.
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = inner.plugins.get(&file) {
            return Ok(p.info.clone());
        }
        let plugin = Arc::new(loader::open(&file, shown)?);
        inner.check_names(&plugin)?;
        for f in plugin.regularizers() {
            let entry = Entry { plugin: plugin.clone(), factory: f };
            inner.regularizers.insert(name_of(f.name), entry);
        }
        for f in plugin.callbacks() {
            inner.callbacks.insert(name_of(f.name), Entry { plugin: plugin.clone(), factory: f });
        }
        let info = plugin.info.clone();
        tracing::info!(plugin = %info.name, version = %info.version, path = %shown.display(), "plugin loaded");
        inner.plugins.insert(file, plugin);
        Ok(info)
    }

    /// Loads every shared library in `dir` (sorted by name); stops at the first error.
    pub fn load_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<PluginInfo>, PluginError> {
        loader::libraries_in(dir.as_ref())?.iter().map(|f| self.load(f)).collect()
    }

    /// Loads every file and directory listed in `KILN_PLUGIN_PATH` (nothing if unset).
    ///
    /// Every entry is tried; entries that fail (missing, unreadable, not a plugin, insecure)
    /// are all reported in one [`PluginError::SearchPath`], and the others stay loaded.
    pub fn load_search_path(&self) -> Result<Vec<PluginInfo>, PluginError> {
        let Some(list) = std::env::var_os(SEARCH_PATH_VAR) else { return Ok(Vec::new()) };
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        for p in std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()) {
            let loaded = if p.is_dir() { self.load_dir(&p) } else { self.load(&p).map(|i| vec![i]) };
            match loaded {
                Ok(infos) => out.extend(infos),
                Err(e) => problems.push(format!("entry {}: {e}", p.display())),
            }
        }
        if problems.is_empty() { Ok(out) } else { Err(PluginError::SearchPath { problems }) }
    }

    /// What failed when `KILN_PLUGIN_PATH` was read, if it was read and anything did.
    pub(crate) fn search_path_problem(&self) -> Option<String> {
        self.search_path.get().cloned().flatten()
    }

    /// Every loaded plugin, in load-path order.
    pub fn list(&self) -> Vec<PluginInfo> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.plugins.values().map(|p| p.info.clone()).collect()
    }

    /// The regularizer `name`, searching `KILN_PLUGIN_PATH` once if it is not loaded yet.
    pub(crate) fn regularizer(&self, name: &str) -> Option<Entry<RegularizerFactory>> {
        self.find(|inner| inner.regularizers.get(name).cloned())
    }

    /// The callback `name`, searching `KILN_PLUGIN_PATH` once if it is not loaded yet.
    pub(crate) fn callback(&self, name: &str) -> Option<Entry<CallbackFactory>> {
        self.find(|inner| inner.callbacks.get(name).cloned())
    }

    /// `name version` of every loaded plugin, for "not registered" messages.
    pub(crate) fn loaded_names(&self) -> Vec<String> {
        self.list().into_iter().map(|p| format!("{} {}", p.name, p.version)).collect()
    }

    fn find<T>(&self, get: impl Fn(&Inner) -> Option<T>) -> Option<T> {
        let found = get(&self.inner.read().unwrap_or_else(|e| e.into_inner()));
        if found.is_some() {
            return found;
        }
        // The search path is read lazily, at the first miss, so a saved model whose plugin
        // sits on KILN_PLUGIN_PATH binds without anyone calling a load function.
        // A failing entry is printed (tracing may have no subscriber) and kept for the
        // "not registered" error, which is where its consequence shows.
        self.search_path.get_or_init(|| match self.load_search_path() {
            Ok(_) => None,
            Err(e) => {
                eprintln!("warning: {e}");
                tracing::error!("{e}");
                Some(e.to_string())
            }
        });
        get(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Inner {
    /// Refuses the whole plugin if any of its names is malformed, a built-in's, or taken.
    fn check_names(&self, plugin: &LoadedPlugin) -> Result<(), PluginError> {
        let path = &plugin.info.path;
        let regs = plugin.info.regularizers.iter().map(|n| ("regularizer", n, BUILTIN_REGULARIZERS));
        let cbs = plugin.info.callbacks.iter().map(|n| ("callback", n, BUILTIN_CALLBACKS));
        let mut seen: Vec<(&str, &String)> = Vec::new();
        for (kind, name, builtins) in regs.chain(cbs) {
            let bad = |kind, name: &String| (path.clone(), kind, name.clone());
            match names::check(name, builtins) {
                Err(NameProblem::Builtin) => {
                    let (path, kind, name) = bad(kind, name);
                    return Err(PluginError::ShadowsBuiltin { path, kind, name });
                }
                Err(NameProblem::Malformed) => {
                    let (path, kind, name) = bad(kind, name);
                    return Err(PluginError::BadName { path, kind, name });
                }
                Ok(()) => {}
            }
            let first = match kind {
                "regularizer" => self.regularizers.get(name).map(|e| e.plugin.info.path.clone()),
                _ => self.callbacks.get(name).map(|e| e.plugin.info.path.clone()),
            };
            let first = first.or_else(|| seen.contains(&(kind, name)).then(|| path.clone()));
            if let Some(first) = first {
                return Err(PluginError::DuplicateName { kind, name: name.clone(), first, second: path.clone() });
            }
            seen.push((kind, name));
        }
        Ok(())
    }
}

thread_local! {
    /// The registry plugin envelopes bind against while deserializing on this thread.
    static CURRENT: std::cell::Cell<Option<&'static PluginRegistry>> = const { std::cell::Cell::new(None) };
}

/// The registry envelopes deserialized now bind against: the one [`with_current`]
/// set on this thread, else the global one.
pub(crate) fn current() -> &'static PluginRegistry {
    CURRENT.get().unwrap_or_else(PluginRegistry::global)
}

/// Runs `f` with `registry` as the one plugin envelopes bind against on this thread
/// (restored afterwards, even if `f` panics).
pub fn with_current<T>(registry: &'static PluginRegistry, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<&'static PluginRegistry>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.set(self.0);
        }
    }
    let _restore = Restore(CURRENT.replace(Some(registry)));
    f()
}

fn name_of(s: kiln_plugin_api::abi::Str) -> String {
    // SAFETY: factory names point into the plugin's static data, never unloaded.
    unsafe { s.to_string_lossy() }
}
