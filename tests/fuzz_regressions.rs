//! The fuzzers' inputs replayed in the ordinary test suite through the same entry points
//! (`tests/fuzz_entry.rs`):
//!
//! - `tests/fixtures/fuzz/<target>/`: inputs that once made a reader misbehave (found by
//!   the fuzzers or the corrupt-input suite); each must now be handled without a panic.
//! - `fuzz/seeds/<target>/`: the seed corpora, real data; each must be accepted (except
//!   the deliberately truncated ones), so the entry points are known to reach the readers.

use std::path::{Path, PathBuf};

use kiln_integration_tests::fuzz_entry;

/// The files of `dir` (relative to the workspace root; none if it does not exist),
/// hidden ones skipped.
fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .map(|f| f.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    out.sort();
    out
}

fn replay(target: &str, entry: fn(&[u8]) -> bool) {
    for path in files(&format!("tests/fixtures/fuzz/{target}")) {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(outcome.is_ok(), "{} panics again", path.display());
    }
    let seeds = files(&format!("fuzz/seeds/{target}"));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for path in seeds {
        // Seeds named `truncated` or `evil` (a pickle calling os.system) must be refused.
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let should_accept = !name.contains("truncated") && !name.contains("evil");
        assert_eq!(entry(&std::fs::read(&path).unwrap()), should_accept, "{}", path.display());
    }
}

#[test]
fn idx_inputs() {
    replay("idx", fuzz_entry::idx);
}

#[test]
fn imdb_tar_inputs() {
    replay("imdb_tar", fuzz_entry::imdb_tar);
}

#[test]
fn textvec_inputs() {
    replay("textvec", fuzz_entry::textvec);
}

#[test]
fn model_config_inputs() {
    replay("model_config", fuzz_entry::model_config);
}

#[test]
fn npz_inputs() {
    replay("npz", fuzz_entry::npz);
}

#[test]
fn pickle_inputs() {
    replay("pickle", fuzz_entry::pickle);
}

#[test]
fn safetensors_inputs() {
    replay("safetensors", fuzz_entry::safetensors);
}
