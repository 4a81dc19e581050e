//! `cargo xtask reproduce` end to end, in-process, on the bundled data with tiny
//! settings: outputs exist, histories carry Keras' keys, and the same seed gives the
//! same numbers.

use std::path::{Path, PathBuf};

use xtask::reproduce::{ReproduceArgs, run};

/// A fresh empty folder under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-reproduce-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn reproduce(args: &[&str]) -> anyhow::Result<bool> {
    run(&ReproduceArgs::parse(args)?)
}

fn tiny_run(out: &Path, jobs: &str) {
    let out = out.to_str().expect("utf-8 temp path");
    let args = [
        "--jobs",
        jobs,
        "--data",
        "bundled",
        "--epochs",
        "2",
        "--seeds",
        "1",
        "--only",
        "imdb_smaller,imdb_dropout,mnist_logreg",
        "--out",
        out,
    ];
    assert!(reproduce(&args).expect("reproduce runs"));
}

#[test]
fn tiny_run_writes_outputs_and_is_deterministic() {
    // `--jobs 1` twice, then two jobs: the same seeds give the same histories each time.
    let (a, b, c) = (scratch("a"), scratch("b"), scratch("c"));
    for (dir, jobs) in [(&a, "1"), (&b, "1"), (&c, "2")] {
        tiny_run(dir, jobs);
    }

    for exp in ["mnist_logreg", "imdb_smaller", "imdb_dropout"] {
        let file = format!("history/{exp}_seed0.json");
        let text = std::fs::read_to_string(a.join(&file)).expect("history written");
        assert_eq!(text, std::fs::read_to_string(b.join(&file)).unwrap(), "{file} differs between --jobs 1 runs");
        assert_eq!(text, std::fs::read_to_string(c.join(&file)).unwrap(), "{file} differs with --jobs 2");
        let h: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert_eq!(h[key].as_array().map(Vec::len), Some(2), "{file}: {key}");
        }
    }
    for f in ["logreg_val_loss.png", "logreg_val_loss.svg", "dropout_mask.png", "REPORT.md"] {
        assert!(a.join(f).metadata().is_ok_and(|m| m.len() > 0), "{f} missing");
    }
    // Needs imdb_original, which did not run.
    assert!(!a.join("original_vs_smaller.png").exists());
    let report = std::fs::read_to_string(a.join("REPORT.md")).unwrap();
    assert!(report.contains("### `imdb_smaller`") && report.contains("bundled real subset"), "{report}");
    for dir in [a, b, c] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bad_selections_fail_with_a_clear_message() {
    let out = scratch("bad");
    let out = out.to_str().unwrap();
    let err = reproduce(&["--data", "bundled", "--only", "imdb_custom", "--out", out]).unwrap_err();
    assert!(err.to_string().contains("--regularizer"), "{err}");
    let err = reproduce(&["--data", "bundled", "--only", "mnist_nope", "--out", out]).unwrap_err();
    assert!(err.to_string().contains("unknown experiment `mnist_nope`"), "{err}");
}
