//! Opening one library and checking, in order, that it is a kiln plugin this host can use.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};

use kiln_plugin_api::abi::{self, CallbackFactory, PluginHeader, RegularizerFactory};
use libloading::Library;

use crate::{PluginError, PluginInfo, PluginRef};

/// A library that passed every check. It is never closed: see [`open`].
pub(crate) struct LoadedPlugin {
    /// Never dropped: unloading a Rust cdylib is unsound in practice (thread-local
    /// destructors and function pointers into unmapped code), so the handle is leaked.
    _lib: ManuallyDrop<Library>,
    /// The plugin's static header; `'static` because the library is never unloaded.
    pub header: &'static PluginHeader,
    /// What the plugin reported, for listings and error messages.
    pub info: PluginInfo,
}

impl LoadedPlugin {
    /// The plugin's regularizer factories.
    pub fn regularizers(&self) -> &'static [RegularizerFactory] {
        // SAFETY: the header passed the ABI and size checks, so the pointer/length pair is
        // the plugin's static array (or empty).
        unsafe { table(self.header.regularizers, self.header.n_regularizers) }
    }

    /// The plugin's callback factories.
    pub fn callbacks(&self) -> &'static [CallbackFactory] {
        // SAFETY: as for `regularizers`.
        unsafe { table(self.header.callbacks, self.header.n_callbacks) }
    }

    /// Which library this is, as recorded in saved models.
    pub fn plugin_ref(&self) -> PluginRef {
        PluginRef { name: self.info.name.clone(), version: self.info.version.clone(), abi: self.header.abi_version }
    }
}

/// # Safety
/// `ptr` must point to `n` valid items that live forever (or `n` must be 0).
unsafe fn table<T>(ptr: *const T, n: usize) -> &'static [T] {
    if n == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: the caller guarantees `n` valid items at `ptr` that live forever.
        unsafe { std::slice::from_raw_parts(ptr, n) }
    }
}

/// Opens `file` (canonical path; `shown` is the path the user gave, for messages) and
/// runs the checks: opens → has the entry symbol → ABI version → header size → API
/// compatibility; a different rustc only warns (only C types cross).
///
/// Loading runs the library's initializers before any check can look at it: plugins are
/// trusted native code, and these checks protect against mistakes, not malice.
pub(crate) fn open(file: &Path, shown: &Path) -> Result<LoadedPlugin, PluginError> {
    let path = || shown.to_path_buf();
    crate::hygiene::check(file, shown)?;
    let lib = open_library(file).map_err(|e| PluginError::Open { path: path(), message: with_sources(&e) })?;
    // SAFETY: the symbol's type is the one `export_plugin!` defines for this name; a library
    // exporting the name with another type is a lie we cannot detect (trusted code only).
    let entry: unsafe extern "C" fn() -> *const PluginHeader = unsafe {
        *lib.get(abi::ENTRY_SYMBOL).map_err(|_| PluginError::NotAPlugin { path: path(), symbol: abi::ENTRY_SYMBOL })?
    };
    // SAFETY: calling the plugin's entry point: it only returns a pointer to static data.
    let ptr = unsafe { entry() };
    if ptr.is_null() {
        return Err(PluginError::NotAPlugin { path: path(), symbol: abi::ENTRY_SYMBOL });
    }
    // Only the first field is read before the ABI version is known to match: it is the one
    // thing every version of the header promises.
    // SAFETY: every ABI's header starts with a `u32` ABI version.
    let found = unsafe { ptr.cast::<u32>().read() };
    if found != abi::ABI_VERSION {
        return Err(PluginError::AbiMismatch { path: path(), found, expected: abi::ABI_VERSION });
    }
    // SAFETY: ABI 1 headers start with two `u32`s: version, then size.
    let size = unsafe { ptr.cast::<u32>().add(1).read() };
    let expected = std::mem::size_of::<PluginHeader>() as u32;
    if size < expected {
        return Err(PluginError::HeaderSize { path: path(), found: size, expected });
    }
    // SAFETY: the header has our ABI and is at least as large as ours; it lives in the
    // plugin's static data, and the library is never unloaded.
    let header: &'static PluginHeader = unsafe { &*ptr };
    // SAFETY: header strings point into the plugin's static data.
    let text = |s: abi::Str| unsafe { s.to_string_lossy() };
    let api = text(header.api_version);
    if !crate::version::compatible(&api, abi::API_VERSION) {
        return Err(PluginError::ApiIncompatible { path: path(), plugin: api, host: abi::API_VERSION.into() });
    }
    let rustc = text(header.rustc_version);
    if rustc != abi::RUSTC_VERSION {
        tracing::warn!(plugin = %shown.display(), plugin_rustc = %rustc, host_rustc = abi::RUSTC_VERSION,
            "plugin built with another rustc (fine: only C types cross the boundary)");
    }
    let mut plugin = LoadedPlugin {
        _lib: ManuallyDrop::new(lib),
        header,
        info: PluginInfo {
            name: text(header.plugin_name),
            version: text(header.plugin_version),
            path: shown.to_path_buf(),
            api_version: api,
            rustc_version: rustc,
            regularizers: Vec::new(),
            callbacks: Vec::new(),
        },
    };
    plugin.info.regularizers = plugin.regularizers().iter().map(|f| text(f.name)).collect();
    plugin.info.callbacks = plugin.callbacks().iter().map(|f| text(f.name)).collect();
    Ok(plugin)
}

/// An error and its `source()` chain: libloading's `Display` says only "dlopen failed", and
/// the OS loader's reason (`dlerror()`) is the source.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

/// `dlopen` with `RTLD_NOW` (unresolved symbols fail here, not mid-training) and
/// `RTLD_LOCAL` (a plugin's symbols never satisfy another library's).
fn open_library(file: &Path) -> Result<Library, libloading::Error> {
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: loading runs the library's initializers; plugins are trusted code (docs).
        unsafe { UnixLibrary::open(Some(file), RTLD_NOW | RTLD_LOCAL) }.map(Library::from)
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as above.
        unsafe { Library::new(file) }
    }
}

/// Shared libraries in `dir` (by the platform's suffix), sorted for a stable load order.
pub(crate) fn libraries_in(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let err = |e: std::io::Error| PluginError::Dir { path: dir.to_path_buf(), message: e.to_string() };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let p = entry.map_err(err)?.path();
        if p.is_file() && p.to_string_lossy().ends_with(std::env::consts::DLL_SUFFIX) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}
