//! The installed `kiln` binary on the shipped fixtures: a Keras archive imported,
//! predicted (as Keras predicted) and exported; data files inspected by content; every
//! shipped trace replayed at its documented tolerance.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kiln(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).current_dir(root()).output().unwrap();
    assert!(
        out.status.success(),
        "kiln {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn imports_predicts_as_keras_did_and_exports_onnx() {
    let dir = std::env::temp_dir().join(format!("kiln-cli-{}", std::process::id()));
    let (model, preds, onnx) = (dir.join("seq"), dir.join("preds.json"), dir.join("seq.onnx"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    kiln(&["keras", "import", "tests/fixtures/keras/models/seq.keras", "--out", &s(&model)]);
    kiln(&["predict", &s(&model), "--input", "tests/fixtures/keras/models/seq.rows.json", "--json", &s(&preds)]);
    kiln(&["export-onnx", &s(&model), "--out", &s(&onnx)]);

    let ours: Vec<Vec<f64>> = serde_json::from_slice(&std::fs::read(&preds).unwrap()).unwrap();
    let keras: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/keras/models/seq.predictions.json")).unwrap(),
    )
    .unwrap();
    let keras: Vec<Vec<f64>> = serde_json::from_value(keras["predictions"].clone()).unwrap();
    assert_eq!(ours.len(), keras.len());
    for (a, b) in ours.iter().flatten().zip(keras.iter().flatten()) {
        assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "kiln {a} vs keras {b}");
    }
    let bytes = std::fs::read(&onnx).unwrap();
    // An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    assert_eq!(bytes.first(), Some(&0x08), "not an ONNX model");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn data_inspect_recognizes_npz_and_csv() {
    let npz = kiln(&["data", "inspect", "crates/datasets/tests/fixtures/keras-datasets/mnist_tiny.npz"]);
    let npz: serde_json::Value = serde_json::from_slice(&npz.stdout).unwrap();
    assert_eq!(npz["kind"], "npz");
    assert_eq!(npz["arrays"]["x_train"]["shape"], serde_json::json!([6, 28, 28]));
    let csv = kiln(&["data", "inspect", "data/beijing-pm25/hourly_beijing_pm.csv.gz"]);
    let csv: serde_json::Value = serde_json::from_slice(&csv.stdout).unwrap();
    assert_eq!((csv["kind"].as_str(), csv["rows"].as_u64()), (Some("csv"), Some(43_824)));
    let wind = csv["columns"].as_array().unwrap().iter().find(|c| c["name"] == "cbwd").unwrap();
    assert_eq!(wind["kind"], "text");
    assert_eq!(wind["values"], serde_json::json!(["NE", "NW", "SE", "cv"]));
    let pm = csv["columns"].as_array().unwrap().iter().find(|c| c["name"] == "pm2.5").unwrap();
    assert!(pm["missing"].as_u64().unwrap() > 0, "{pm}");
}

/// `kiln parity` with no file replays every shipped trace, each at the tolerance
/// tests/fixtures/keras/tolerances.json documents (the diverging lr-1 trace at 1e-3).
#[test]
fn parity_without_files_replays_every_shipped_trace() {
    let out = kiln(&["parity"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap();
    let n = kiln_cli::parity::shipped_traces(&root().join("tests/fixtures/keras")).unwrap().len();
    assert!(n >= 66, "{n} traces");
    assert_eq!(last, format!("{n} of {n} shipped traces passed at their documented tolerances"));
    assert!(text.contains("keras_trace_iv_rmsprop_lr1.json: ") && text.contains("(rtol 1e-3)"), "{text}");
}
