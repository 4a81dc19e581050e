//! placeholder
use clap::Args;
/// Bench options.
#[derive(Args)]
pub struct BenchArgs {}
pub fn run(_a: &BenchArgs) -> anyhow::Result<bool> { Ok(true) }
