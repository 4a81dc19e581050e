//! `cargo xtask reproduce` (stub: replaced by the reproduce work).

/// Options of `cargo xtask reproduce`.
#[derive(clap::Args)]
pub struct ReproduceArgs {}

/// Runs the experiments.
pub fn run(_args: &ReproduceArgs) -> anyhow::Result<bool> {
    anyhow::bail!("cargo xtask reproduce is coming (issue 4)")
}
