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

// --- round 3: deep pickles ---

#[test]
fn pickle_repeat_inputs() {
    replay("pickle_repeat", fuzz_entry::pickle_repeat);
}

/// The repeated part of a [`fuzz_entry::pickle_repeat`] input.
type Unit = &'static [u8];

/// The deep inputs of issue 23 (a million nested tuples, a million lists chained through
/// an overwritten memo slot or left on the stack, a million lists holding themselves),
/// generated here rather than stored as megabyte files: each is refused, and the process
/// survives.
#[test]
fn deep_pickles_are_refused_without_overflowing_the_stack() {
    let million = 1_000_000;
    let cases: [(&str, &[u8], Unit, &[u8]); 4] = [
        ("nested tuples", b"\x80\x02K\x01", b"\x85", b"0."),
        ("lists chained through the memo", b"\x80\x02]q\x00", b"]h\x00aq\x000", b"."),
        ("nested lists left on the stack", b"\x80\x02]q\x00", b"]h\x00aq\x00", b"."),
        ("lists holding themselves", b"\x80\x02", b"]2a", b"."),
    ];
    for (what, prefix, unit, suffix) in cases {
        let mut input = u32::to_le_bytes(million)[..3].to_vec();
        input.extend([prefix.len() as u8, unit.len() as u8]);
        input.extend(prefix.iter().chain(unit).chain(suffix));
        let stream = fuzz_entry::expand_repeat(&input).unwrap();
        assert!(stream.len() >= million as usize, "{what}: {} bytes", stream.len());
        let outcome = std::panic::catch_unwind(|| fuzz_entry::pickle_repeat(&input));
        assert_eq!(outcome.ok(), Some(false), "{what}");
    }
}
