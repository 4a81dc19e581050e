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
fn tensorboard_gets_one_run_folder_per_experiment_and_seed() {
    let (out, board) = (scratch("tb-out"), scratch("tb-logs"));
    let args = [
        "--data",
        "bundled",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--only",
        "mnist_logreg",
        "--out",
        out.to_str().unwrap(),
        "--tensorboard",
        board.to_str().unwrap(),
    ];
    assert!(reproduce(&args).expect("reproduce runs"));
    for seed in ["seed0", "seed1"] {
        for split in ["train", "validation"] {
            let dir = board.join("mnist_logreg").join(seed).join(split);
            let events: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("events.out.tfevents."))
                .collect();
            assert_eq!(events.len(), 1, "{}", dir.display());
            let bytes = std::fs::read(events[0].path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("epoch_loss") && text.contains("epoch_accuracy"), "{}", dir.display());
        }
    }
    for dir in [out, board] {
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

#[test]
fn three_shards_merge_to_the_single_runs_histories_and_report() {
    let base =
        ["--data", "bundled", "--epochs", "1", "--seeds", "2", "--only", "mnist_logreg,imdb_smaller,imdb_dropout"];
    let one = scratch("shard-one");
    let mut args: Vec<&str> = base.to_vec();
    let one_s = one.to_str().unwrap().to_string();
    args.extend(["--out", &one_s]);
    assert!(reproduce(&args).unwrap());
    let shards: Vec<PathBuf> = (0..3).map(|i| scratch(&format!("shard-{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let (spec, out) = (format!("{i}/3"), dir.to_str().unwrap().to_string());
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--shard", &spec, "--out", &out]);
        assert!(reproduce(&args).unwrap());
        assert!(!dir.join("REPORT.md").exists(), "a shard writes histories and its manifest only");
    }
    let merged = scratch("shard-merged");
    let (m, dirs) = (
        merged.to_str().unwrap().to_string(),
        shards.iter().map(|d| d.to_str().unwrap().to_string()).collect::<Vec<_>>(),
    );
    let mut args = vec!["--merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", &m]);
    assert!(reproduce(&args).unwrap());
    for exp in ["mnist_logreg", "imdb_smaller", "imdb_dropout"] {
        for seed in 0..2 {
            let file = format!("history/{exp}_seed{seed}.json");
            assert_eq!(std::fs::read(one.join(&file)).unwrap(), std::fs::read(merged.join(&file)).unwrap(), "{file}");
        }
    }
    // The same report, apart from the timings.
    let untimed = |dir: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
        text.lines().filter(|l| !l.contains(" s ") && !l.contains("training done")).map(str::to_string).collect()
    };
    assert_eq!(untimed(&one), untimed(&merged));

    // Two of three shards, or one twice, are refused naming the problem.
    let mut args = vec!["--merge", &dirs[0], &dirs[1], "--out", &m];
    let err = reproduce(&args).unwrap_err().to_string();
    assert!(err.contains("missing shards: 2/3"), "{err}");
    args = vec!["--merge", &dirs[0], &dirs[0], &dirs[1], &dirs[2], "--out", &m];
    let err = reproduce(&args).unwrap_err().to_string();
    assert!(err.contains("shard 0/3 is given twice"), "{err}");
    for d in shards.iter().chain([&one, &merged]) {
        let _ = std::fs::remove_dir_all(d);
    }
}
