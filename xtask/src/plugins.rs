//! Plugin loading for xtask commands (stub: replaced by the plugin work).

#![allow(dead_code)]

use std::path::PathBuf;

use kiln_regularizers::Regularizer;

/// Loads every plugin library in `paths`; errors name the file and the problem.
pub fn load_all(paths: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(p) = paths.first() {
        anyhow::bail!("{}: plugins are not supported yet", p.display());
    }
    Ok(())
}

/// A regularizer implemented by a loaded plugin, by its `pkg>Name` and JSON config.
pub fn regularizer(name: &str, _config: &str) -> anyhow::Result<Box<dyn Regularizer>> {
    anyhow::bail!("no plugin regularizer `{name}`: plugins are not supported yet")
}
