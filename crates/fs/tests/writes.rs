//! What a write may and may not replace, the save lock, and stale temporaries.

use std::fs;
use std::path::PathBuf;

use kiln_fs::{FileError, SaveLock, recover_dir, remove_dir_atomic, replace_dir_atomic, write_atomic};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-fs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_file_write_never_replaces_a_directory_and_a_directory_never_a_file() {
    let dir = scratch("kinds");
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let err = write_atomic(&sub, b"x").unwrap_err().to_string();
    assert!(err.contains("is a directory") && err.contains("sub"), "{err}");
    assert!(sub.is_dir());

    let file = dir.join("notes.txt");
    fs::write(&file, "keep me").unwrap();
    let err = replace_dir_atomic(&file, |_| Ok::<(), FileError>(())).unwrap_err().to_string();
    assert!(err.contains("notes.txt") && err.contains("not a directory"), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
    fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn symlinks_are_written_through_and_stay_links() {
    let dir = scratch("links");
    let (real_file, real_dir) = (dir.join("real.txt"), dir.join("real-model"));
    fs::write(&real_file, "old").unwrap();
    fs::create_dir(&real_dir).unwrap();
    std::os::unix::fs::symlink(&real_file, dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(&real_dir, dir.join("link-model")).unwrap();

    write_atomic(&dir.join("link.txt"), b"new").unwrap();
    assert!(fs::symlink_metadata(dir.join("link.txt")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&real_file).unwrap(), "new");

    replace_dir_atomic(&dir.join("link-model"), |staging| write_atomic(&staging.join("a"), b"1")).unwrap();
    assert!(fs::symlink_metadata(dir.join("link-model")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(real_dir.join("a")).unwrap(), b"1");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_second_saver_of_the_same_directory_is_refused_naming_it() {
    let dir = scratch("lock");
    let model = dir.join("model");
    let held = SaveLock::acquire(&model).unwrap();
    let err = replace_dir_atomic(&model, |_| Ok::<(), FileError>(())).unwrap_err().to_string();
    assert!(err.contains("model") && err.contains("being saved by another process"), "{err}");
    assert!(!model.exists(), "nothing was written");
    drop(held);
    replace_dir_atomic(&model, |staging| write_atomic(&staging.join("a"), b"1")).unwrap();
    assert!(model.join("a").exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn temporaries_of_killed_writers_are_removed_by_the_next_write() {
    let dir = scratch("stale");
    let target = dir.join("weights.bin");
    // A PID beyond Linux's maximum (2^22) can never be alive.
    let dead = dir.join(".weights.bin.tmp4999999-0");
    let ours = dir.join(format!(".weights.bin.tmp{}-99", std::process::id()));
    fs::write(&dead, "half").unwrap();
    fs::write(&ours, "ours").unwrap();
    write_atomic(&target, b"whole").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"whole");
    if cfg!(target_os = "linux") {
        assert!(!dead.exists(), "a dead process's temporary survived");
    }
    assert!(ours.exists(), "a live process's temporary was removed");
    fs::remove_dir_all(dir).unwrap();
}

// --- round 3: BackupAndRestore ---

#[test]
fn a_tagged_lock_is_exclusive_and_released_without_leaving_its_file() {
    let dir = scratch("tagged-lock");
    let target = dir.join("backup");
    let held = SaveLock::acquire_tagged(&target, "fit.lock", "is busy").unwrap();
    assert_eq!(held.path(), dir.join(".backup.fit.lock"));
    let err = SaveLock::acquire_tagged(&target, "fit.lock", "is busy").unwrap_err().to_string();
    assert!(err.contains("backup") && err.contains("is busy"), "{err}");
    // Another tag is another lock.
    SaveLock::acquire(&target).unwrap().release_and_remove();
    held.release_and_remove();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "no lock file is left");
    SaveLock::acquire_tagged(&target, "fit.lock", "is busy").unwrap();
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_directory_is_removed_in_one_step_and_a_killed_removal_is_cleaned_up() {
    let dir = scratch("remove");
    let target = dir.join("backup");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("a"), b"1").unwrap();
    remove_dir_atomic(&target).unwrap();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "no folder aside, no lock file");
    remove_dir_atomic(&target).unwrap();

    // What a removal killed between its rename and its deletion leaves.
    let aside = dir.join(".backup.removing");
    fs::create_dir(&aside).unwrap();
    fs::write(aside.join("a"), b"1").unwrap();
    recover_dir(&target).unwrap();
    assert!(!aside.exists());
    fs::remove_dir_all(dir).unwrap();
}
