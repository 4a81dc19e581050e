//! Every input the fuzzers (`fuzz/run.sh`) ever turned up, replayed through the same
//! entry points: `tests/fixtures/fuzz/<target>/<file>`. A finding is added there when it
//! is fixed, so it can never come back unnoticed.

use std::path::Path;

use kiln_integration_tests::fuzz_entry;

/// Runs `entry` on every file of `tests/fixtures/fuzz/<target>/`; returns how many.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz").join(target);
    let mut count = 0;
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "{target}: {} panics again", path.display());
        count += 1;
    }
    count
}

#[test]
fn idx_findings() {
    replay("idx", fuzz_entry::idx);
}

#[test]
fn imdb_tar_findings() {
    replay("imdb_tar", fuzz_entry::imdb_tar);
}

#[test]
fn textvec_findings() {
    replay("textvec", fuzz_entry::textvec);
}

#[test]
fn model_config_findings() {
    replay("model_config", fuzz_entry::model_config);
}

#[test]
fn safetensors_findings() {
    replay("safetensors", fuzz_entry::safetensors);
}
