//! A save killed at any point leaves the previous save intact and loadable.
//!
//! Each case runs a child process (this test binary, in `child_saves_then_dies`) that
//! loads the saved model, trains it further and saves it again with a `fail` crate
//! failpoint (`FAILPOINTS`) that aborts the process mid-save. The parent then loads the
//! directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_trainer::{FitOptions, Sequential, Verbosity};

const CHILD_DIR: &str = "KILN_CRASH_TEST_DIR";
const CHILD_WEIGHTS_ONLY: &str = "KILN_CRASH_TEST_WEIGHTS_ONLY";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn train(model: &mut Sequential, epochs: usize) {
    let (x, y) = common::blobs(120, 1);
    let opts = FitOptions::default().epochs(epochs).batch_size(16).verbose(Verbosity::Silent);
    model.fit(&x, &y, opts).unwrap();
}

fn predictions(model: &mut Sequential) -> Vec<u32> {
    let (x, _) = common::blobs(20, 2);
    model.predict(&x, 32).unwrap().as_slice().iter().map(|v| v.to_bits()).collect()
}

/// Not a test of its own: the child side of the crash tests (does nothing unless the
/// parent set `KILN_CRASH_TEST_DIR`).
#[test]
#[ignore = "run by the crash tests in a child process"]
fn child_saves_then_dies() {
    let Some(target) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else { return };
    // Reads `FAILPOINTS` (kiln-fs is built with its `failpoints` feature for tests).
    let _scenario = fail::FailScenario::setup();
    if std::env::var_os(CHILD_WEIGHTS_ONLY).is_some() {
        let mut model = common::classifier(7);
        model.build(4).unwrap();
        model.load_weights(&target).unwrap();
        train(&mut model, 2);
        let _ = model.save_weights(&target);
    } else {
        let mut model = Sequential::load(&target).unwrap();
        train(&mut model, 2);
        let _ = model.save(&target);
    }
    // Reaching this line means the failpoint did not fire.
    std::process::exit(3);
}

/// Runs the child with the comma-separated `failpoints` active and checks it died (not
/// exited).
fn run_child(target: &Path, failpoints: &str, weights_only: bool) {
    let active: Vec<String> = failpoints.split(',').map(|p| format!("{p}=return")).collect();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_saves_then_dies", "--ignored", "--nocapture"])
        .env(CHILD_DIR, target)
        .env("FAILPOINTS", active.join(";"));
    if weights_only {
        cmd.env(CHILD_WEIGHTS_ONLY, "1");
    }
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success() && out.status.code() != Some(3),
        "the child should have been killed at `{failpoints}`: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Saves a trained model into `dir/model` and returns the path and its predictions.
fn saved_model(dir: &Path) -> (PathBuf, Vec<u32>) {
    let target = dir.join("model");
    let mut model = common::classifier(7);
    train(&mut model, 1);
    model.save(&target).unwrap();
    (target, predictions(&mut model))
}

fn assert_previous_save_survives(failpoint: &str) {
    let dir = scratch(&failpoint.replace([':', ','], "-"));
    let (target, before) = saved_model(&dir);
    run_child(&target, failpoint, false);
    let mut loaded = Sequential::load(&target).expect("the previous save loads");
    assert_eq!(predictions(&mut loaded), before, "the previous save changed");
    // The next save works and replaces it, leaving no temporary directory behind.
    train(&mut loaded, 1);
    loaded.save(&target).unwrap();
    let mut again = Sequential::load(&target).unwrap();
    assert_eq!(predictions(&mut again), predictions(&mut loaded));
    assert_ne!(predictions(&mut again), before);
    // A completed save removes its lock file (after a killed one, the next save's lock
    // takes the dead writer's file over and removes it too): nothing else is left.
    let mut leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    leftovers.sort();
    assert_eq!(leftovers, ["model"], "temporary files left in {}", dir.display());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn killed_while_writing_a_file_of_the_save() {
    assert_previous_save_survives("write:torn");
}

#[test]
fn killed_after_staging_before_the_swap() {
    assert_previous_save_survives("save:before-swap");
}

#[test]
fn killed_between_the_two_renames_of_the_fallback() {
    // Without RENAME_EXCHANGE the old directory is moved aside first; loading restores it.
    assert_previous_save_survives("save:no-exchange,save:between-renames");
}

#[test]
fn killed_while_overwriting_a_weights_file() {
    let dir = scratch("weights");
    let target = dir.join("weights.safetensors");
    let mut model = common::classifier(7);
    train(&mut model, 1);
    model.save_weights(&target).unwrap();
    let before = std::fs::read(&target).unwrap();
    run_child(&target, "write:torn", true);
    assert_eq!(std::fs::read(&target).unwrap(), before, "the weights file changed");
    let mut fresh = common::classifier(7);
    fresh.build(4).unwrap();
    fresh.load_weights(&target).unwrap();
    assert_eq!(predictions(&mut fresh), predictions(&mut model));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn saving_over_a_folder_of_other_files_is_refused() {
    let dir = scratch("foreign");
    std::fs::write(dir.join("notes.txt"), "keep me").unwrap();
    let mut model = common::classifier(7);
    train(&mut model, 1);
    let err = model.save(&dir).unwrap_err().to_string();
    assert!(err.contains("notes.txt") && err.contains(&dir.display().to_string()), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "keep me");
    let _ = std::fs::remove_dir_all(dir);
}

/// The child side of [`a_second_process_saving_the_same_model_is_refused_while_the_first_saves`]:
/// saves with the `save:before-swap` failpoint sleeping, so it holds the lock a while.
#[test]
#[ignore = "run by the lock test in a child process"]
fn child_saves_slowly() {
    let Some(target) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else { return };
    let _scenario = fail::FailScenario::setup();
    let mut model = Sequential::load(&target).unwrap();
    train(&mut model, 1);
    model.save(&target).unwrap();
}

#[test]
fn a_second_process_saving_the_same_model_is_refused_while_the_first_saves() {
    let dir = scratch("two-savers");
    let (target, _) = saved_model(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_saves_slowly", "--ignored", "--nocapture"])
        .env(CHILD_DIR, &target)
        .env("FAILPOINTS", "save:before-swap=sleep(3000)")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (at most 20 s) until the child holds the lock: our own try then fails.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while kiln_fs::SaveLock::acquire(&target).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the child never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut ours = common::classifier(9);
    train(&mut ours, 1);
    let err = ours.save(&target).unwrap_err().to_string();
    assert!(err.contains("being saved by another process") && err.contains("model"), "{err}");
    assert!(child.wait().unwrap().success(), "the first save completes");
    let mut loaded = Sequential::load(&target).unwrap();
    assert_ne!(predictions(&mut loaded), predictions(&mut ours), "the refused save wrote nothing");
    ours.save(&target).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
