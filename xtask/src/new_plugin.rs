//! `cargo xtask new-plugin` (stub: replaced by the plugin work).

/// Options of `cargo xtask new-plugin`.
#[derive(clap::Args)]
pub struct NewPluginArgs {}

/// Scaffolds a plugin crate.
pub fn run(_args: &NewPluginArgs) -> anyhow::Result<bool> {
    anyhow::bail!("cargo xtask new-plugin is coming (issue 5)")
}
