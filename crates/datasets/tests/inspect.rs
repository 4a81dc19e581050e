//! `inspect::summarize` and `inspect::vocabulary` (the library side of `cargo xtask data`).

mod common;

use std::fs;

use common::{TempDir, gzip, idx_bytes, imdb_archive, mnist_dir};
use kiln_datasets::inspect::{summarize, vocabulary};
use kiln_datasets::{Error, read_idx_labels};

#[test]
fn summarizes_idx_files_and_directories() {
    let img = summarize(&mnist_dir().join("train-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(img["kind"], "idx-images");
    assert_eq!(img["rows"], 10_000);
    assert_eq!(img["shape"], serde_json::json!([10_000, 28, 28]));
    assert_eq!(img["sha256"], "902e5f3d4052228dee9898fac02bc73a6338b415e0c26208e40cb739158214d0");

    let lab_path = mnist_dir().join("train-labels-idx1-ubyte.gz");
    let lab = summarize(&lab_path).unwrap();
    assert_eq!(lab["kind"], "idx-labels");
    let labels = read_idx_labels(&lab_path).unwrap();
    for d in 0..10u8 {
        let n = labels.iter().filter(|&&l| l == d).count();
        assert_eq!(lab["label_counts"][d.to_string()], n, "digit {d}");
    }

    let dir = summarize(&mnist_dir()).unwrap();
    assert_eq!(dir["kind"], "idx-dir");
    assert_eq!(dir["splits"]["train"]["shape"], serde_json::json!([10_000, 28, 28]));
    assert_eq!(dir["splits"]["train"]["label_counts"], lab["label_counts"]);
    assert!(dir["splits"].get("test").is_none());
}

#[test]
fn summarizes_the_imdb_archive() {
    for path in [imdb_archive(), imdb_archive().parent().unwrap().to_path_buf()] {
        let s = summarize(&path).unwrap();
        assert_eq!(s["kind"], "aclImdb", "{path:?}");
        assert_eq!(s["splits"]["train"]["rows"], 5000);
        assert_eq!(s["splits"]["train"]["label_counts"], serde_json::json!({"neg": 2483, "pos": 2517}));
        assert_eq!(s["splits"]["train"]["lossy_decoded"], 0);
    }
}

#[test]
fn bad_files_give_errors_naming_them() {
    let t = TempDir::new("inspect-bad");
    let truncated = fs::read(mnist_dir().join("train-images-idx3-ubyte.gz")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.gz", vec![], "empty file"),
        ("cut-images-idx3-ubyte.gz", truncated[..truncated.len() / 4].to_vec(), "corrupt or truncated gzip"),
        ("garbage.bin", b"this is not an IDX file at all".to_vec(), "wrong magic number"),
        ("gz-of-nothing.gz", gzip(b""), "decompresses to 0 bytes"),
        ("bad-count-idx1-ubyte.gz", gzip(&idx_bytes(0x0801, &[5], &[1, 2])), "declares 5 = 5 data bytes"),
    ];
    for (name, bytes, problem) in cases {
        let p = t.join(name);
        fs::write(&p, bytes).unwrap();
        let e = summarize(&p).unwrap_err();
        eprintln!("{e}");
        common::assert_names(&e, &p, problem);
    }
    let missing = t.join("missing-file.gz");
    let e = summarize(&missing).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    common::assert_names(&e, &missing, "no such file");
    let empty = t.join("empty-dir");
    fs::create_dir(&empty).unwrap();
    common::assert_names(&summarize(&empty).unwrap_err(), &empty, "empty directory");
}

#[test]
fn vocabulary_output_equals_the_keras_fixture_byte_for_byte() {
    let vocab = vocabulary(&imdb_archive(), 10_000).unwrap();
    let mut out = String::new();
    for token in &vocab {
        out.push_str(token);
        out.push('\n');
    }
    let fixture = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imdb5k_vocab.txt")).unwrap();
    assert!(out == fixture, "vocabulary output differs from the fixture");
    let e = vocabulary(&imdb_archive(), 1).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}
