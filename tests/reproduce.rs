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

// --- round 3: merges that mean what they say, early output checks, failed runs (issue 23) ---

/// `reproduce --merge DIRS… --out OUT`'s error text (panics if it succeeds).
fn merge_err(dirs: &[&Path], out: &Path) -> String {
    let mut args = vec!["--merge".to_string()];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap().to_string()));
    args.extend(["--out".into(), out.to_str().unwrap().into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = reproduce(&args).map(|ok| panic!("merge succeeded ({ok})")).unwrap_err();
    format!("{err:#}")
}

/// Rewrites shard `dir`'s history `file` with `edit` and records the new file's SHA-256 in
/// its manifest (as a run with those numbers would have), so only the content is at fault.
fn forge_history(dir: &Path, file: &str, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("history").join(file);
    let mut h: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut h);
    let bytes = serde_json::to_vec(&h).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let sha = xtask::reproduce::identity::sha256_hex(&bytes);
    let manifest = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    for r in m["runs"].as_array_mut().unwrap() {
        if format!("{}_seed{}.json", r["experiment"].as_str().unwrap(), r["seed"]) == file {
            r["sha256"] = sha.clone().into();
        }
    }
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
}

/// Copies a shard folder (manifest and histories).
fn copy_shard(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("history")).unwrap();
    std::fs::copy(from.join("manifest.json"), to.join("manifest.json")).unwrap();
    for e in std::fs::read_dir(from.join("history")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("history").join(e.file_name())).unwrap();
    }
}

#[test]
fn merges_refuse_empty_ragged_stale_and_foreign_histories_and_shard_outputs_before_writing() {
    let shards: Vec<PathBuf> = (0..2).map(|i| scratch(&format!("r3-shard-{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let spec = format!("{i}/2");
        let args =
            ["--data", "bundled", "--epochs", "2", "--seeds", "2", "--only", "mnist_logreg", "--shard", &spec, "--out"];
        let mut args = args.to_vec();
        args.push(dir.to_str().unwrap());
        assert!(reproduce(&args).unwrap());
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shards[0].join("manifest.json")).unwrap()).unwrap();
    for field in ["data_sha256", "data_source", "imdb", "plugins", "config", "regularizer", "kiln_version"] {
        assert!(m.get(field).is_some(), "the manifest records {field}: {m}");
    }
    assert_eq!(m["runs"][0]["sha256"].as_str().map(str::len), Some(64), "{m}");
    let (s0, s1) = (shards[0].as_path(), shards[1].as_path());
    // The out folder holds a report from before: a refused merge must leave it untouched.
    let out = scratch("r3-out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("REPORT.md"), "my old report").unwrap();
    let untouched = |what: &str| {
        assert_eq!(std::fs::read_to_string(out.join("REPORT.md")).unwrap(), "my old report", "{what}");
        assert!(!out.join("history").exists() && !out.join("manifest.json").exists(), "{what}");
    };

    // --out is a shard folder (the shard's manifest would be replaced), or holds a run's manifest.
    let err = merge_err(&[s0, s1], s1);
    assert!(err.contains("also a --merge folder"), "{err}");
    let single = scratch("r3-single");
    copy_shard(s0, &single);
    let err = merge_err(&[s0, s1], &single);
    assert!(err.contains("holds") && err.contains("of a training run"), "{err}");
    assert_eq!(std::fs::read(single.join("manifest.json")).unwrap(), std::fs::read(s0.join("manifest.json")).unwrap());

    // Each bad history is refused naming its file.
    let bad = scratch("r3-bad");
    let file_of = |dir: &Path| -> String {
        let name = std::fs::read_dir(dir.join("history")).unwrap().next().unwrap().unwrap().file_name();
        name.to_string_lossy().into_owned()
    };
    let file = file_of(s1);
    type Case = (&'static str, fn(&Path, &str), &'static str);
    let cases: [Case; 5] = [
        (
            "empty",
            |d, f| {
                forge_history(d, f, |h| {
                    h.as_object_mut().unwrap().values_mut().for_each(|v| *v = serde_json::json!([]))
                })
            },
            "has 0 values",
        ),
        (
            "ragged",
            |d, f| {
                forge_history(d, f, |h| {
                    h["loss"].as_array_mut().unwrap().pop();
                })
            },
            "`loss` has 1 values",
        ),
        (
            "no val_loss",
            |d, f| {
                forge_history(d, f, |h| {
                    h.as_object_mut().unwrap().remove("val_loss");
                })
            },
            "no `val_loss`",
        ),
        ("edited", |d, f| std::fs::write(d.join("history").join(f), b"{\"loss\": [1, 2]}").unwrap(), "SHA-256 differs"),
        (
            "stale",
            |d, _| std::fs::write(d.join("history/mnist_logreg_seed7.json"), b"{}").unwrap(),
            "mnist_logreg_seed7.json: not a history this shard's manifest lists",
        ),
    ];
    for (what, spoil, expect) in cases {
        copy_shard(s1, &bad);
        spoil(&bad, &file);
        let err = merge_err(&[s0, &bad], &out);
        assert!(err.contains(expect), "{what}: {err}");
        if what != "stale" {
            assert!(err.contains(&file), "{what} names the file: {err}");
        }
        untouched(what);
    }

    // Shards of runs with other settings (here other epochs) are refused by field and folders.
    let other = scratch("r3-other");
    let args = ["--data", "bundled", "--epochs", "1", "--seeds", "2", "--only", "mnist_logreg", "--shard", "1/2"];
    let mut args = args.to_vec();
    args.extend(["--out", other.to_str().unwrap()]);
    assert!(reproduce(&args).unwrap());
    let err = merge_err(&[s0, &other], &out);
    assert!(
        err.contains("`epochs`") && err.contains(s0.to_str().unwrap()) && err.contains(other.to_str().unwrap()),
        "{err}"
    );
    untouched("other epochs");

    // A good merge replaces the report; merging again into its own output is allowed.
    let mut args = vec!["--merge", s0.to_str().unwrap(), s1.to_str().unwrap(), "--out", out.to_str().unwrap()];
    assert!(reproduce(&args).unwrap());
    assert!(std::fs::read_to_string(out.join("REPORT.md")).unwrap().contains("### `mnist_logreg`"));
    std::fs::write(out.join("history/mnist_logreg_seed9.json"), "{}").unwrap();
    assert!(reproduce(&args).unwrap());
    assert!(!out.join("history/mnist_logreg_seed9.json").exists(), "a merge's history folder holds exactly its runs");
    args[1] = out.to_str().unwrap();
    args.truncate(2);
    args.extend(["--out", bad.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&bad);
    assert!(reproduce(&args).unwrap(), "a merge's output is itself a complete run");
    for d in shards.iter().chain([&out, &single, &bad, &other]) {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn outputs_are_checked_before_training_and_a_failed_run_keeps_the_finished_ones() {
    let (out, board) = (scratch("r3-fail-out"), scratch("r3-fail-tb"));
    let base =
        ["--data", "bundled", "--epochs", "1", "--seeds", "2", "--jobs", "1", "--only", "mnist_logreg,imdb_smaller"];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run_with = |extra: &[&str]| {
        let args = with(extra);
        reproduce(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // A file where a folder goes: refused naming the option, before any run.
    let file = scratch("r3-a-file");
    std::fs::write(&file, "x").unwrap();
    let err = format!("{:#}", run_with(&["--out", file.to_str().unwrap()]).unwrap_err());
    assert!(err.contains("--out") && err.contains("not a folder"), "{err}");
    let err = format!(
        "{:#}",
        run_with(&["--out", out.to_str().unwrap(), "--tensorboard", file.to_str().unwrap()]).unwrap_err()
    );
    assert!(err.contains("--tensorboard") && err.contains("not a folder"), "{err}");
    assert!(std::fs::read_dir(out.join("history")).map_or(true, |mut d| d.next().is_none()), "nothing trained");

    // mnist_logreg seed 1 cannot write its TensorBoard folder: that run fails, the others finish.
    std::fs::create_dir_all(board.join("mnist_logreg")).unwrap();
    std::fs::write(board.join("mnist_logreg/seed1"), "in the way").unwrap();
    let err = run_with(&["--out", out.to_str().unwrap(), "--tensorboard", board.to_str().unwrap()]).unwrap_err();
    let err = format!("{err:#}");
    assert_eq!(err.matches("mnist_logreg seed 1").count(), 1, "reported once: {err}");
    assert!(err.contains("1 of 4 runs did not finish"), "{err}");
    for f in ["mnist_logreg_seed0.json", "imdb_smaller_seed0.json", "imdb_smaller_seed1.json"] {
        assert!(out.join("history").join(f).is_file(), "{f} kept");
    }
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(
        report.contains("## Failed runs") && report.contains("mnist_logreg seed 1") && report.contains("**failed**")
    );
    assert!(!out.join("logreg_val_loss.png").exists(), "no figure from an incomplete experiment");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["failed"].as_array().map(Vec::len), Some(1), "{m}");
    for d in [out, board, file] {
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&d);
    }
}

// --- round 3 (hostile re-test): nothing that is not ours is deleted or written through (issue 23 #1, #2, #10, #11) ---

/// Every file under `dir` with its bytes (links as their target's name), to check a folder
/// is left exactly as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            all.push((p.clone(), std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
        } else if meta.is_dir() {
            all.extend(snapshot(&p));
        } else {
            all.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    all.sort();
    all
}

#[test]
fn merges_and_runs_refuse_foreign_history_folders_symlinked_outputs_model_folders_and_outs_in_shards() {
    use std::os::unix::fs::symlink;
    let shards: Vec<PathBuf> = (0..2).map(|i| scratch(&format!("r3h-shard-{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        let spec = format!("{i}/2");
        let args = ["--data", "bundled", "--epochs", "1", "--seeds", "1", "--only", "mnist_logreg,imdb_smaller"];
        let mut args = args.to_vec();
        args.extend(["--shard", &spec, "--out", dir.to_str().unwrap()]);
        assert!(reproduce(&args).unwrap());
    }
    let (s0, s1) = (shards[0].as_path(), shards[1].as_path());
    let shard0 = snapshot(s0);
    let base = scratch("r3h-base");
    std::fs::create_dir_all(&base).unwrap();

    // #1: a user's file in --out/history is not deleted; a symlinked history/ is not written through.
    let proj = base.join("proj");
    std::fs::create_dir_all(proj.join("history")).unwrap();
    std::fs::write(proj.join("history/my_notes.txt"), "mine").unwrap();
    let err = merge_err(&[s0, s1], &proj);
    assert!(err.contains("my_notes.txt") && err.contains("refusing"), "{err}");
    assert_eq!(std::fs::read_to_string(proj.join("history/my_notes.txt")).unwrap(), "mine");
    let precious = base.join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "years of work").unwrap();
    std::fs::remove_dir_all(proj.join("history")).unwrap();
    symlink(&precious, proj.join("history")).unwrap();
    let before = snapshot(&base);
    let err = merge_err(&[s0, s1], &proj);
    assert!(err.contains("is a symlink") && err.contains("history"), "{err}");
    assert_eq!(snapshot(&base), before, "nothing written, no lock beside the link's target");
    std::fs::remove_file(proj.join("history")).unwrap();
    symlink(s0.join("history"), proj.join("history")).unwrap();
    assert!(merge_err(&[s0, s1], &proj).contains("is a symlink"));
    std::fs::remove_file(proj.join("history")).unwrap();

    // #2: REPORT.md linked to a shard's manifest: refused before anything is written.
    symlink(s0.join("manifest.json"), proj.join("REPORT.md")).unwrap();
    let err = merge_err(&[s0, s1], &proj);
    assert!(err.contains("REPORT.md") && err.contains("symlink"), "{err}");
    assert!(!proj.join("history").exists() && !proj.join("manifest.json").exists());
    std::fs::remove_file(proj.join("REPORT.md")).unwrap();

    // #11: --out inside a shard (or holding one) is refused.
    let err = merge_err(&[s0, s1], &s0.join("history"));
    assert!(err.contains("is inside a --merge folder"), "{err}");
    let err = merge_err(&[s0, s1], s0.parent().unwrap());
    assert!(err.contains("holds a --merge folder"), "{err}");

    // #10: --out or --tensorboard that is, or is inside, a saved model folder.
    let mm = base.join("mm");
    std::fs::create_dir_all(&mm).unwrap();
    for f in ["model.safetensors", "metadata.json"] {
        std::fs::write(mm.join(f), "x").unwrap();
    }
    let err = merge_err(&[s0, s1], &mm);
    assert!(err.contains("is the saved kiln model directory"), "{err}");
    let plain = |out: &Path, extra: &[&str]| {
        let mut args = vec!["--data", "bundled", "--epochs", "1", "--seeds", "1", "--only", "mnist_logreg"];
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        format!("{:#}", reproduce(&args).map(|ok| panic!("run succeeded ({ok})")).unwrap_err())
    };
    let tb = mm.join("tb");
    let err = plain(&base.join("run"), &["--tensorboard", tb.to_str().unwrap()]);
    assert!(err.contains("--tensorboard") && err.contains("inside the saved kiln model directory"), "{err}");
    let err = plain(&mm.join("sub"), &[]);
    assert!(err.contains("--out") && err.contains("inside the saved kiln model directory"), "{err}");
    assert_eq!(std::fs::read_dir(&mm).unwrap().count(), 2, "nothing created in the model folder");

    // A plain run: REPORT.md linked to the user's notes, or a user's file in history/, refused before training.
    let run = base.join("run");
    std::fs::create_dir_all(run.join("history")).unwrap();
    std::fs::write(base.join("notes.md"), "my notes").unwrap();
    symlink(base.join("notes.md"), run.join("REPORT.md")).unwrap();
    let err = plain(&run, &[]);
    assert!(err.contains("REPORT.md") && err.contains("symlink"), "{err}");
    std::fs::remove_file(run.join("REPORT.md")).unwrap();
    std::fs::write(run.join("history/keep.csv"), "mine").unwrap();
    let err = plain(&run, &[]);
    assert!(err.contains("keep.csv"), "{err}");
    assert_eq!(std::fs::read_to_string(base.join("notes.md")).unwrap(), "my notes");
    assert_eq!(std::fs::read_dir(run.join("history")).unwrap().count(), 1, "nothing trained or written");

    assert_eq!(snapshot(s0), shard0, "the shard is untouched by every refused merge");
    assert!(
        reproduce(&["--merge", s0.to_str().unwrap(), s1.to_str().unwrap(), "--out", proj.to_str().unwrap()]).unwrap()
    );
    for d in shards.iter().chain([&base]) {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The timeseries runs of `docs/progression.md` on the bundled weather series: the
/// baseline's history, a model's MAE curves with the test MAE of every epoch, the figure,
/// the MAE table and the verdict against the baseline.
#[test]
fn weather_runs_write_mae_histories_the_baseline_figure_and_verdict() {
    let out = scratch("weather");
    let dir = out.to_str().unwrap();
    let args = [
        "--data",
        "bundled",
        "--epochs",
        "2",
        "--seeds",
        "1",
        "--only",
        "weather_baseline,weather_dense",
        "--out",
        dir,
    ];
    assert!(reproduce(&args).expect("reproduce runs"));
    let history = |exp: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("history/{exp}_seed0.json"))).unwrap()).unwrap()
    };
    let (baseline, dense) = (history("weather_baseline"), history("weather_dense"));
    // The last hour's temperature against the temperature 24 hours later (docs/progression.md: 2.49 / 2.69 °C).
    let val = baseline["val_mae"][0].as_f64().unwrap();
    let test = baseline["test_mae"][1].as_f64().unwrap();
    assert!((val - 2.49).abs() < 0.005 && (test - 2.69).abs() < 0.005, "baseline {val} / {test}");
    for key in ["loss", "mae", "val_loss", "val_mae", "test_mae"] {
        let values = dense[key].as_array().unwrap_or_else(|| panic!("weather_dense has no {key}"));
        assert!(values.len() == 2 && values.iter().all(|v| v.as_f64().is_some_and(f64::is_finite)), "{key}");
    }
    assert!(out.join("weather_dense_mae.png").metadata().is_ok_and(|m| m.len() > 0));
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(report.contains("### Weather: validation and test MAE"), "{report}");
    assert!(report.contains("the densely connected model does not beat it"), "{report}");
    assert!(report.contains("CC BY 4.0"), "the data section names the weather data's license");
    let _ = std::fs::remove_dir_all(&out);
}

/// Shards of the weather runs merge like the others: the baseline's history has its own
/// keys (no `loss`), and the merged histories are the unsharded run's, byte for byte.
#[test]
fn weather_shards_merge_into_the_unsharded_histories() {
    let (whole, s0, s1, merged) = (scratch("w-whole"), scratch("w-s0"), scratch("w-s1"), scratch("w-merged"));
    let base = ["--data", "bundled", "--epochs", "1", "--seeds", "1", "--only", "weather_baseline,weather_dense"];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run_args = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(reproduce(&args).expect("reproduce runs"));
    };
    run_args(with(&["--out", whole.to_str().unwrap()]));
    run_args(with(&["--shard", "0/2", "--out", s0.to_str().unwrap()]));
    run_args(with(&["--shard", "1/2", "--out", s1.to_str().unwrap()]));
    let merge = ["--merge", s0.to_str().unwrap(), s1.to_str().unwrap(), "--out", merged.to_str().unwrap()];
    assert!(reproduce(&merge).expect("the weather shards merge"));
    for exp in ["weather_baseline", "weather_dense"] {
        let file = format!("history/{exp}_seed0.json");
        assert_eq!(std::fs::read(whole.join(&file)).unwrap(), std::fs::read(merged.join(&file)).unwrap(), "{file}");
    }
    assert!(merged.join("weather_dense_mae.svg").exists());
    for dir in [whole, s0, s1, merged] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
