//! Plugin loading for xtask commands (`reproduce --plugin PATH`, `--regularizer 'pkg>Name'`).

use std::path::PathBuf;

use anyhow::Context;
use kiln_plugin::{PluginRegistry, PluginRegularizer};
use kiln_regularizers::Regularizer;

/// Loads every plugin library (or directory of libraries) in `paths`, then the
/// `KILN_PLUGIN_PATH` search path; errors name the file and the failed check.
pub fn load_all(paths: &[PathBuf]) -> anyhow::Result<()> {
    let registry = PluginRegistry::global();
    for path in paths {
        let loaded = if path.is_dir() { registry.load_dir(path)? } else { vec![registry.load(path)?] };
        for p in loaded {
            let names: Vec<_> = p.regularizers.iter().chain(&p.callbacks).map(String::as_str).collect();
            eprintln!("plugin: {} {} from {} ({})", p.name, p.version, p.path.display(), names.join(", "));
        }
    }
    registry.load_search_path().context(kiln_plugin::SEARCH_PATH_VAR)?;
    Ok(())
}

/// A regularizer implemented by a loaded plugin, by its `pkg>Name` and JSON config; bound
/// now, so an unknown name or a config the plugin refuses fails before any training.
pub fn regularizer(name: &str, config: &str) -> anyhow::Result<Box<dyn Regularizer>> {
    let config: serde_json::Value = serde_json::from_str(config)
        .with_context(|| format!("the config of `{}` is not JSON", kiln_fs::excerpt(name)))?;
    Ok(Box::new(PluginRegularizer::new(name, config)?))
}
