//! Crash injection for tests: `KILN_FAILPOINT=NAME` makes the named point of a save
//! abort the process (or change course), so tests can prove that a killed save loses
//! nothing. Unset, each point costs one environment lookup per save.
//!
//! Points: `write:torn` (a file half written), `save:before-swap` (a model directory fully
//! staged, not yet swapped in), `save:no-exchange` (pretend `RENAME_EXCHANGE` is missing),
//! `save:between-renames` (old directory moved aside, new one not yet in place).

/// The environment variable naming the active failpoint.
pub const FAILPOINT_ENV: &str = "KILN_FAILPOINT";

/// Whether `name` is the active failpoint (`KILN_FAILPOINT` may list several, comma-separated).
pub(crate) fn failpoint(name: &str) -> bool {
    std::env::var(FAILPOINT_ENV).is_ok_and(|v| v.split(',').any(|p| p.trim() == name))
}
