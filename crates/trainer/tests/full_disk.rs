//! A full disk during `save`: the `write:enospc` failpoint makes the k-th file write of a
//! save fail with ENOSPC, for every k. Each time the error names the path and says "No
//! space left", and the previous model still loads with identical predictions.
//!
//! Its own test binary: failpoints configured in-process are global to it.

mod common;

use std::path::PathBuf;

use kiln_trainer::{FitOptions, Sequential, Verbosity};

fn predictions(model: &mut Sequential) -> Vec<u32> {
    let (x, _) = common::blobs(20, 2);
    model.predict(&x, 32).unwrap().as_slice().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_save_that_hits_enospc_at_any_write_keeps_the_previous_model() {
    let _scenario = fail::FailScenario::setup();
    let dir: PathBuf = std::env::temp_dir().join(format!("kiln-enospc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let target = dir.join("model");
    let (x, y) = common::blobs(120, 1);
    let opts = || FitOptions::default().epochs(1).batch_size(16).verbose(Verbosity::Silent);
    let mut model = common::classifier(7);
    model.fit(&x, &y, opts()).unwrap();
    model.save(&target).unwrap();
    let before = predictions(&mut model);

    let mut failed_at = Vec::new();
    for k in 0.. {
        model.fit(&x, &y, opts()).unwrap();
        // Off for the first k writes of this save, ENOSPC from the next one on.
        fail::cfg("write:enospc", &format!("{k}*off->return")).unwrap();
        let result = model.save(&target);
        fail::remove("write:enospc");
        match result {
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("No space left") && text.contains(&*dir.to_string_lossy()), "write {k}: {text}");
                let mut loaded = Sequential::load(&target).expect("the previous model loads");
                assert_eq!(predictions(&mut loaded), before, "write {k}: the previous model changed");
                failed_at.push(k);
            }
            Ok(()) => break, // k is past the last write: the save went through.
        }
    }
    assert!(failed_at.len() >= 4, "config, weights, optimizer state and metadata each failed once: {failed_at:?}");
    let mut loaded = Sequential::load(&target).unwrap();
    assert_eq!(predictions(&mut loaded), predictions(&mut model), "the save that fit on the disk is the one loaded");
    let _ = std::fs::remove_dir_all(dir);
}
