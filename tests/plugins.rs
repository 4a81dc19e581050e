//! Dynamic plugins end to end: the example and fixture plugins under plugins/ are built by
//! cargo from inside the test, loaded with kiln-plugin, trained with, saved, reloaded,
//! and made to fail in every way the loader must refuse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use kiln::prelude::*;
use kiln_plugin::{PluginCallback, PluginError, PluginRegistry, PluginRegularizer};
use kiln_trainer::TrainError;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// Building and finding plugins

/// The workspace's target dir: the test binary lives in `<target>/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// Builds `plugins/<folder>` (once per test process) and returns its library. Builds go
/// to `<target>/plugins` — not the target dir `cargo test` itself holds locked.
fn plugin(folder: &str, lib: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    // The lock also keeps concurrent tests from starting concurrent cargo builds.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(folder) {
        return p.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = target_dir().join("plugins");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("plugins").join(folder).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&out)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building plugins/{folder} failed");
    let path =
        out.join("release").join(format!("{}{lib}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(path.is_file(), "{} was not built", path.display());
    built.insert(folder.to_string(), path.clone());
    path
}

fn l3() -> PathBuf {
    plugin("l3", "kiln_l3")
}

fn csv_logger() -> PathBuf {
    plugin("csv-logger", "kiln_csv_logger")
}

fn panicky() -> PathBuf {
    plugin("test-fixtures/panicky", "kiln_panicky")
}

/// An empty scratch folder under the target dir.
fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("plugins").join("scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// Data and models

/// 96 samples of 8 features in [-1, 1) and a label "sum > 0" (a deterministic LCG).
fn data() -> (Features, Matrix) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let x: Vec<f32> = (0..96 * 8).map(|_| next()).collect();
    let y: Vec<f32> = x.chunks(8).map(|r| f32::from(r.iter().sum::<f32>() > 0.0)).collect();
    (Features::Dense(Matrix::from_vec(96, 8, x).unwrap()), Matrix::from_vec(96, 1, y).unwrap())
}

fn model(reg: PluginRegularizer) -> Sequential {
    let mut m = Sequential::new()
        .seed(7)
        .add(Dense::new(6).activation(Activation::Relu).kernel_regularizer(reg))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.build(8).unwrap();
    m.compile(Optimizer::new(RMSprop::default(), 1e-2), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
    m
}

fn quiet<'a>(epochs: usize) -> FitOptions<'a> {
    FitOptions { verbose: Verbosity::Silent, ..FitOptions::default() }.epochs(epochs).batch_size(16)
}

fn trained_l3_model() -> Sequential {
    PluginRegistry::global().load(l3()).unwrap();
    let mut m = model(PluginRegularizer::new("kiln_l3>L3", json!({"l3": 0.01})).unwrap());
    let (x, y) = data();
    m.fit(&x, &y, quiet(3)).unwrap();
    m
}

// ---------------------------------------------------------------------------------------
// The regularizer plugin

#[test]
fn l3_gradient_matches_finite_differences_through_the_boundary() {
    PluginRegistry::global().load(l3()).unwrap();
    let reg = PluginRegularizer::new("kiln_l3>L3", json!({"l3": 0.5})).unwrap();
    let w = [0.3f32, -1.2, 0.0, 2.0, -0.05];
    let expected: f32 = 0.5 * w.iter().map(|v| v.abs().powi(3)).sum::<f32>();
    assert!((reg.penalty(&w).unwrap() - expected).abs() < 1e-6);

    let mut grad = [0.0f32; 5];
    reg.add_grad(&w, &mut grad, 2.0).unwrap();
    for i in 0..w.len() {
        // Central differences in f64 around f32 evaluations: error O(h²) + rounding/h.
        let h = 1e-2f32;
        let (mut plus, mut minus) = (w, w);
        plus[i] += h;
        minus[i] -= h;
        let numeric =
            2.0 * (reg.penalty(&plus).unwrap() as f64 - reg.penalty(&minus).unwrap() as f64) / (2.0 * h as f64);
        let tol = 1e-3 + 1e-2 * numeric.abs();
        assert!((grad[i] as f64 - numeric).abs() < tol, "w[{i}]: analytic {} numeric {numeric}", grad[i]);
    }
}

#[test]
fn trains_with_the_plugin_regularizer_and_its_penalty_is_in_the_loss() {
    let (x, y) = data();
    let mut plain = Sequential::new()
        .seed(7)
        .add(Dense::new(6).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    plain.build(8).unwrap();
    plain.compile(Optimizer::new(RMSprop::default(), 1e-2), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
    let mut regularized = trained_l3_model();
    let base = plain.evaluate(&x, &y, 32).unwrap();
    let logs = regularized.evaluate(&x, &y, 32).unwrap();
    assert!(logs.get("loss").unwrap().is_finite());

    // Same seed, same init: before training the only difference is the L3 term.
    let mut fresh = model(PluginRegularizer::new("kiln_l3>L3", json!({"l3": 0.01})).unwrap());
    let with_penalty = fresh.evaluate(&x, &y, 32).unwrap().get("loss").unwrap();
    let kernel = fresh.get_weights().0.into_iter().find(|t| t.name.ends_with("kernel")).unwrap();
    let penalty: f64 = 0.01 * kernel.values.iter().map(|v| (v.abs() as f64).powi(3)).sum::<f64>();
    assert!((with_penalty - base.get("loss").unwrap() - penalty).abs() < 1e-4, "penalty not in the loss");

    let history = regularized.fit(&x, &y, quiet(5)).unwrap();
    let loss = history.get("loss").unwrap();
    assert!(loss.last().unwrap() < loss.first().unwrap(), "training with L3 does not learn: {loss:?}");
}

#[test]
fn saved_model_names_the_plugin_and_reloads_to_identical_predictions() {
    let mut m = trained_l3_model();
    let (x, _) = data();
    let before = m.predict(&x, 32).unwrap();
    let dir = scratch("save-l3");
    m.save(&dir).unwrap();

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let reg = &config["layers"][0]["kernel_regularizer"];
    assert_eq!(
        reg,
        &json!({"type": "Plugin", "name": "kiln_l3>L3",
                "plugin": {"name": "kiln-l3", "version": "0.1.0", "abi": 1}, "config": {"l3": 0.01}}),
        "{config:#}"
    );

    let mut loaded = Sequential::load(&dir).unwrap();
    assert_eq!(loaded.predict(&x, 32).unwrap(), before);
}

#[test]
fn a_model_whose_plugin_is_missing_fails_to_load_naming_it() {
    let m = trained_l3_model();
    let dir = scratch("save-missing");
    m.save(&dir).unwrap();
    // Same model, but its regularizer comes from a plugin nobody has loaded.
    let path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).unwrap().replace("kiln_l3>L3", "kiln_gone>L3").replace("kiln-l3", "kiln-gone");
    std::fs::write(&path, text).unwrap();

    let err = Sequential::load(&dir).unwrap_err().to_string();
    assert!(err.contains("config.json"), "names the file: {err}");
    assert!(err.contains("`kiln_gone>L3`") && err.contains("saved from plugin `kiln-gone` 0.1.0"), "{err}");
    assert!(err.contains("not registered") && err.contains("kiln-l3 0.1.0"), "lists loaded plugins: {err}");
}

#[test]
fn a_model_loads_against_the_registry_it_is_given() {
    let m = trained_l3_model();
    let dir = scratch("save-registry");
    m.save(&dir).unwrap();
    // An empty registry of our own: the global one (which has L3) is not consulted.
    static EMPTY: std::sync::OnceLock<PluginRegistry> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(PluginRegistry::new);
    let err = kiln_plugin::load_model(&dir, empty).unwrap_err().to_string();
    assert!(err.contains("kiln_l3>L3") && err.contains("Loaded plugins: none"), "{err}");
    assert!(kiln_plugin::load_model(&dir, PluginRegistry::global()).is_ok());
}

/// Runs `scenario` in a fresh process (this test binary, one test), where no plugin is
/// loaded yet, with `env` set; panics with the child's output if it fails.
fn in_child(scenario: &str, env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_scenario", "--nocapture", "--test-threads=1"]).env("KILN_TEST_SCENARIO", scenario);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("scenario ok"), "child `{scenario}` failed:\n{text}");
    text
}

/// The child side of [`in_child`]: does nothing in a normal test run.
#[test]
fn child_scenario() {
    let Ok(scenario) = std::env::var("KILN_TEST_SCENARIO") else { return };
    if let Some(()) = environment_scenario(&scenario) {
        println!("scenario ok");
        return;
    }
    let dir = PathBuf::from(std::env::var("KILN_TEST_MODEL").unwrap());
    let expected: Vec<f32> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (x, _) = data();
    assert!(PluginRegistry::global().list().is_empty());
    match scenario.as_str() {
        "late-load" => {
            let err = Sequential::load(&dir).unwrap_err().to_string();
            assert!(err.contains("kiln_l3>L3") && err.contains("Loaded plugins: none"), "{err}");
            PluginRegistry::global().load(std::env::var("KILN_TEST_PLUGIN").unwrap()).unwrap();
        }
        "search-path" => {} // KILN_PLUGIN_PATH is read at the first bind that misses
        other => panic!("unknown scenario {other}"),
    }
    let mut loaded = Sequential::load(&dir).unwrap();
    assert_eq!(loaded.predict(&x, 32).unwrap().as_slice(), expected.as_slice());
    println!("scenario ok");
}

/// Child scenarios about the environment itself (no saved model involved); `None` for the
/// others.
fn environment_scenario(scenario: &str) -> Option<()> {
    match scenario {
        "bad-search-path" => {
            // The good entry loads; the bad one is reported, by name, in the miss that follows.
            let reg = PluginRegularizer::new("kiln_l3>L3", json!({"l3": 0.01}));
            assert!(reg.is_ok(), "{:?}", reg.err());
            let err = PluginRegularizer::new("nobody>Nothing", json!({})).unwrap_err().to_string();
            assert!(err.contains("entry /nonexistent/plugins") && err.contains("No such file"), "{err}");
        }
        "trust-any" => {
            let lib = std::env::var("KILN_TEST_PLUGIN").unwrap();
            let info = PluginRegistry::new().load(&lib);
            assert!(info.is_ok(), "KILN_PLUGIN_TRUST_ANY=1 loads a group-writable plugin: {:?}", info.err());
        }
        _ => return None,
    }
    Some(())
}

#[test]
fn a_bad_search_path_entry_is_reported_by_name_and_the_good_ones_load() {
    let list = std::env::join_paths([Path::new("/nonexistent/plugins"), &l3()]).unwrap();
    let text = in_child("bad-search-path", &[("KILN_PLUGIN_PATH", Path::new(&list))]);
    assert!(text.contains("warning: KILN_PLUGIN_PATH: entry /nonexistent/plugins"), "{text}");
}

#[test]
#[cfg(unix)]
fn plugins_others_could_have_written_are_refused_unless_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("insecure");
    let copy = dir.join(l3().file_name().unwrap());
    std::fs::copy(l3(), &copy).unwrap();
    let chmod = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    chmod(&dir, 0o755);
    chmod(&copy, 0o664);
    let err = PluginRegistry::new().load(&copy).unwrap_err();
    assert!(matches!(err, PluginError::Insecure { what: "file", .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("writable by its group") && text.contains("chmod go-w") && text.contains("libkiln_l3"),
        "{text}"
    );

    chmod(&copy, 0o755);
    chmod(&dir, 0o777);
    let err = PluginRegistry::new().load(&copy).unwrap_err();
    assert!(matches!(err, PluginError::Insecure { what: "folder", .. }), "{err:?}");
    assert!(err.to_string().contains("writable by others"), "{err}");
    assert!(PluginRegistry::new().load_dir(&dir).is_err(), "a directory load checks each file the same way");

    in_child("trust-any", &[("KILN_PLUGIN_TRUST_ANY", Path::new("1")), ("KILN_TEST_PLUGIN", &copy)]);
    chmod(&dir, 0o755);
    assert!(PluginRegistry::new().load(&copy).is_ok(), "after `chmod go-w` it loads");
}

#[test]
fn a_plugin_loaded_after_a_failed_load_lets_the_model_load_and_predict_identically() {
    let mut m = trained_l3_model();
    let (x, _) = data();
    let dir = scratch("late-load");
    m.save(&dir).unwrap();
    let expected = m.predict(&x, 32).unwrap().as_slice().to_vec();
    std::fs::write(dir.join("expected.json"), serde_json::to_string(&expected).unwrap()).unwrap();
    in_child("late-load", &[("KILN_TEST_MODEL", &dir), ("KILN_TEST_PLUGIN", &l3())]);
    let search_dir = l3().parent().unwrap().join("search-path-only");
    // A folder with only the L3 library: KILN_PLUGIN_PATH may name folders.
    std::fs::create_dir_all(&search_dir).unwrap();
    std::fs::copy(l3(), search_dir.join(l3().file_name().unwrap())).unwrap();
    in_child("search-path", &[("KILN_TEST_MODEL", &dir), ("KILN_PLUGIN_PATH", &search_dir)]);
}

// ---------------------------------------------------------------------------------------
// Failing plugins

#[test]
fn a_panicking_plugin_is_an_error_and_the_host_lives_on() {
    PluginRegistry::global().load(panicky()).unwrap();
    let bound = |when: &str| PluginRegularizer::new("kiln_panicky>Panicky", json!({ "when": when }));

    let err = bound("create").unwrap_err();
    assert!(matches!(err, PluginError::Panicked { .. }), "{err:?}");
    assert!(err.to_string().contains("panicked: Panicky::validate panicked on purpose (at src/lib.rs:"), "{err}");
    let err = bound("reject").unwrap_err();
    assert!(matches!(err, PluginError::Rejected { .. }) && err.to_string().contains("refuses"), "{err}");

    // Through the trait, a panic is an error value naming the plugin.
    let reg = bound("penalty").unwrap();
    let err = reg.penalty(&[1.0]).unwrap_err();
    assert_eq!(err.regularizer, "kiln_panicky>Panicky");
    assert!(err.to_string().contains("Panicky::penalty panicked on purpose"), "{err}");
    assert!(reg.add_grad(&[1.0], &mut [0.0], 1.0).is_err());

    // Still alive: the same library keeps working.
    assert_eq!(bound("never").unwrap().penalty(&[1.0]).unwrap(), 0.0);

    // A panicking callback stops `fit` with an error, not the process.
    let (x, y) = data();
    let mut m = model(bound("never").unwrap());
    let mut panicky = PluginCallback::new("kiln_panicky>PanickyCallback", json!({"epoch": 1})).unwrap();
    let err = m.fit(&x, &y, quiet(3).callback(&mut panicky)).unwrap_err();
    assert!(matches!(err, TrainError::Callback { .. }), "{err:?}");
    assert!(err.to_string().contains("PanickyCallback panicked on purpose at epoch 1"), "{err}");
    assert!(m.evaluate(&x, &y, 32).is_ok());
    // A callback that panics deciding whether it wants batch hooks is refused up front.
    let err = PluginCallback::new("kiln_panicky>PanickyCallback", json!({"epoch": 0, "panic_wants_batches": true}))
        .unwrap_err();
    assert!(matches!(err, PluginError::Panicked { .. }) && err.to_string().contains("wants_batches"), "{err}");
}

#[test]
fn a_regularizer_failing_mid_training_stops_fit_cleanly_and_keeps_the_history() {
    PluginRegistry::global().load(panicky()).unwrap();
    let (x, y) = data();
    // 96 rows in batches of 16: 6 penalty calls per epoch; the 14th fails, in epoch 3.
    let reg = PluginRegularizer::new("kiln_panicky>Panicky", json!({"when": "error-after", "calls": 13})).unwrap();
    let mut m = model(reg);
    let before = m.get_weights();
    let err = m.fit(&x, &y, quiet(5)).unwrap_err();
    assert!(matches!(err, TrainError::Regularizer { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("kiln_panicky>Panicky") && text.contains("fails on purpose after 13 calls"), "{text}");
    assert!(text.contains("layer `dense`"), "names the layer: {text}");
    assert_eq!(m.history().unwrap().epochs(), 2, "the two finished epochs are kept");
    assert_ne!(m.get_weights(), before, "the finished epochs trained");
    assert!(m.get_weights().0.iter().all(|t| t.values.iter().all(|v| v.is_finite())));
}

#[test]
#[cfg(target_os = "linux")] // the system libraries looked for are Linux paths
fn a_library_that_is_not_a_plugin_is_refused_as_such() {
    let registry = PluginRegistry::new();
    let candidates = ["libz.so.1", "libm.so.6", "libc.so.6"];
    let dirs = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/lib64",
        "/usr/lib",
        "/lib",
    ];
    let system_lib =
        candidates.iter().flat_map(|c| dirs.iter().map(move |d| Path::new(d).join(c))).find(|p| p.is_file());
    let system_lib = system_lib.expect("a system shared library (libz, libm or libc)");
    let err = registry.load(&system_lib).unwrap_err();
    assert!(matches!(err, PluginError::NotAPlugin { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("{}: not a kiln plugin", system_lib.display())), "{err}");

    let missing = registry.load("/nonexistent/libnothing.so").unwrap_err();
    assert!(matches!(missing, PluginError::Open { .. }) && missing.to_string().contains("/nonexistent/libnothing.so"));
    let text = scratch("not-elf").join("libtext.so");
    std::fs::write(&text, "not a library").unwrap();
    let err = registry.load(&text).unwrap_err();
    assert!(matches!(err, PluginError::Open { .. }) && err.to_string().contains("libtext.so"), "{err}");
    // The OS loader's own reason (dlerror) is in the message, not just "cannot load".
    assert!(err.to_string().contains("file too short") || err.to_string().contains("ELF"), "{err}");
    assert!(registry.list().is_empty());
}

#[test]
fn a_plugin_with_another_abi_version_is_refused() {
    let lib = plugin("test-fixtures/lying-abi", "kiln_lying_abi");
    let err = PluginRegistry::new().load(&lib).unwrap_err();
    assert!(matches!(err, PluginError::AbiMismatch { found: 999, expected: 1, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("libkiln_lying_abi") && text.contains("ABI version 999") && text.contains("version 1"),
        "{text}"
    );
}

#[test]
fn a_duplicate_name_is_refused_and_loading_is_idempotent() {
    let registry = PluginRegistry::new();
    let first = registry.load(l3()).unwrap();
    assert_eq!(first.regularizers, ["kiln_l3>L3"]);
    assert_eq!(registry.load(l3()).unwrap(), first, "same file twice is a no-op");

    let copy = scratch("duplicate").join(l3().file_name().unwrap());
    std::fs::copy(l3(), &copy).unwrap();
    let err = registry.load(&copy).unwrap_err();
    assert!(matches!(err, PluginError::DuplicateName { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("regularizer `kiln_l3>L3` is already registered by") && text.contains("duplicate"), "{text}");
    assert_eq!(registry.list().len(), 1);
    assert!(registry.load_dir(copy.parent().unwrap()).is_err());
}

// ---------------------------------------------------------------------------------------
// The callback plugin

#[test]
fn the_callback_plugin_writes_its_csv_and_stops_training() {
    PluginRegistry::global().load(csv_logger()).unwrap();
    let (x, y) = data();
    let csv = scratch("csv").join("log.csv");
    let logger = || PluginCallback::new("kiln_csv_logger>CSVLogger", json!({"filename": csv})).unwrap();

    PluginRegistry::global().load(l3()).unwrap();
    let mut m = model(PluginRegularizer::new("kiln_l3>L3", json!({"l3": 0.001})).unwrap());
    let mut log = logger();
    let history = m.fit(&x, &y, quiet(3).callback(&mut log)).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,accuracy,loss");
    assert_eq!(lines.len(), 4, "{text}");
    let last: Vec<&str> = lines[3].split(',').collect();
    assert_eq!(last[0], "2");
    assert_eq!(last[2].parse::<f64>().unwrap(), history.get("loss").unwrap()[2]);

    // Stop as soon as the loss is below a threshold any model reaches at once.
    let (mut log, mut stop) =
        (logger(), PluginCallback::new("kiln_csv_logger>StopAtThreshold", json!({"threshold": 1e9})).unwrap());
    let history = m.fit(&x, &y, quiet(10).callback(&mut log).callback(&mut stop)).unwrap();
    assert_eq!(history.epochs(), 1, "stop_training from the plugin did not stop fit");
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 2);

    // A bad config is refused when the callback is made, naming it.
    let err = PluginCallback::new("kiln_csv_logger>StopAtThreshold", json!({"threshold": 1, "mode": "sideways"}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("kiln_csv_logger>StopAtThreshold") && err.contains("sideways"), "{err}");
}

#[test]
fn callback_envelopes_round_trip_through_json() {
    PluginRegistry::global().load(csv_logger()).unwrap();
    let cb = PluginCallback::new("kiln_csv_logger>StopAtThreshold", json!({"threshold": 0.5})).unwrap();
    let text = serde_json::to_value(&cb).unwrap();
    // The plugin's own view of its config, defaults included.
    assert_eq!(
        text,
        json!({"name": "kiln_csv_logger>StopAtThreshold",
               "plugin": {"name": "kiln-csv-logger", "version": "0.1.0", "abi": 1},
               "config": {"monitor": "loss", "threshold": 0.5, "mode": "min"}})
    );
    let back: PluginCallback = serde_json::from_value(text.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), text);
}
