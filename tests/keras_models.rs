//! Real Keras 3.15 `.keras` archives (tests/fixtures/keras/generate/make_keras_files.py)
//! imported whole — config and HDF5 weights — predict what Keras predicted.

use std::path::{Path, PathBuf};

use kiln::prelude::*;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/models")
}

/// Every fixture archive that has recorded predictions.
fn fixtures_with_predictions() -> Vec<(PathBuf, serde_json::Value)> {
    let mut out: Vec<_> = std::fs::read_dir(models_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "keras"))
        .filter_map(|p| {
            let record = p.with_extension("predictions.json");
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(record).ok()?).ok()?;
            v.get("predictions").is_some().then_some((p, v))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A nested JSON list `[n, d1, …]` as `n` rows of `d1·…` values (row-major).
fn matrix(v: &serde_json::Value) -> Matrix {
    fn flatten(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
            other => out.push(other.as_f64().expect("a number") as f32),
        }
    }
    let rows = v.as_array().expect("a list of samples");
    let mut values = Vec::new();
    flatten(v, &mut values);
    Matrix::from_vec(rows.len(), values.len() / rows.len(), values).unwrap()
}

/// `got` is Keras' `want` within `1e-6 + 1e-5·|want|`, value by value, same shape.
fn assert_as_keras(what: &str, got: &Matrix, want: &Matrix) {
    assert_eq!((got.rows(), got.cols()), (want.rows(), want.cols()), "{what}");
    for (k, (&g, &w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        assert!((g - w).abs() <= 1e-6 + 1e-5 * w.abs(), "{what}: value {k}: got {g}, Keras {w}");
    }
}

#[test]
fn keras_archives_import_with_their_weights_and_predict_as_keras_did() {
    let fixtures = fixtures_with_predictions();
    let names: Vec<String> = fixtures.iter().map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into()).collect();
    for expected in [
        "seq",
        "chain",
        "nobias_named",
        "binary_head",
        "images",
        "mnist_convnet",
        "text_lstm",
        "weather_gru",
        "branches",
        "residual",
        "two_inputs",
        "resnet_block",
        "normalized_mlp",
        "ops_merges",
    ] {
        assert!(names.iter().any(|n| n == expected), "fixture {expected} missing: {names:?}");
    }
    for (path, record) in fixtures {
        let mut model = kiln_keras::import_keras_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let want = matrix(&record["predictions"]);
        // A model of several inputs records one array per input (`x` is their list).
        let inputs = model.graph().map_or(1, |g| g.inputs.len());
        let xs: Vec<Matrix> = if inputs == 1 {
            vec![matrix(&record["x"])]
        } else {
            record["x"].as_array().unwrap().iter().map(matrix).collect()
        };
        let parts: Vec<FeaturesRef<'_>> = xs.iter().map(FeaturesRef::from).collect();
        let got = if inputs == 1 { model.predict(&xs[0], 32) } else { model.predict(FeaturesRef::list(&parts), 32) };
        let got = got.unwrap();
        assert_as_keras(&path.display().to_string(), &got, &want);
    }
}

#[test]
fn an_archive_without_weights_or_with_unsupported_layers_is_refused_by_name() {
    // seq.keras with its weights file left out.
    let dir = std::env::temp_dir().join(format!("kiln-keras-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stripped = dir.join("no_weights.keras");
    let mut src = zip::ZipArchive::new(std::fs::File::open(models_dir().join("seq.keras")).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(&stripped).unwrap());
    for name in ["config.json", "metadata.json"] {
        let mut member = src.by_name(name).unwrap();
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::copy(&mut member, &mut out).unwrap();
    }
    out.finish().unwrap();
    let err = kiln_keras::import_keras_file(&stripped).unwrap_err().to_string();
    assert!(err.contains("no_weights.keras") && err.contains("model.weights.h5"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn xtask_keras_import_then_predict_writes_keras_predictions() {
    use xtask::models::{ImportArgs, PredictArgs, keras_import, predict};
    let dir = std::env::temp_dir().join(format!("kiln-keras-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models_dir().join("binary_head.predictions.json")).unwrap())
            .unwrap();
    std::fs::write(dir.join("x.json"), record["x"].to_string()).unwrap();
    let model_dir = dir.join("model");
    assert!(
        keras_import(&ImportArgs { file: models_dir().join("binary_head.keras"), out: model_dir.clone() }).unwrap()
    );
    let out = dir.join("p.json");
    assert!(
        predict(&PredictArgs {
            dir: model_dir,
            input: dir.join("x.json"),
            more_inputs: Vec::new(),
            json: Some(out.clone())
        })
        .unwrap()
    );
    let got = matrix(&serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap());
    let want = matrix(&record["predictions"]);
    assert_as_keras("predict", &got, &want);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The two-input archive through the command line: `keras import`, then `predict` with one
/// file per input (`--input`, `--and-input`), as Keras predicted; one file is refused.
#[test]
fn xtask_imports_and_predicts_a_model_of_two_inputs() {
    use xtask::models::{ImportArgs, PredictArgs, keras_import, predict};
    let dir = std::env::temp_dir().join(format!("kiln-keras-cli2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models_dir().join("two_inputs.predictions.json")).unwrap())
            .unwrap();
    let xs = record["x"].as_array().unwrap();
    std::fs::write(dir.join("a.json"), xs[0].to_string()).unwrap();
    std::fs::write(dir.join("b.json"), xs[1].to_string()).unwrap();
    let model_dir = dir.join("model");
    assert!(keras_import(&ImportArgs { file: models_dir().join("two_inputs.keras"), out: model_dir.clone() }).unwrap());
    let out = dir.join("p.json");
    let args = |more: Vec<std::path::PathBuf>| PredictArgs {
        dir: model_dir.clone(),
        input: dir.join("a.json"),
        more_inputs: more,
        json: Some(out.clone()),
    };
    let err = predict(&args(Vec::new())).unwrap_err().to_string();
    assert!(err.contains("takes 2 input(s)"), "{err}");
    assert!(predict(&args(vec![dir.join("b.json")])).unwrap());
    let got = matrix(&serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap());
    let want = matrix(&record["predictions"]);
    assert_as_keras("predict", &got, &want);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model saved by kiln's format version 1 (flat `input_width`, written by the kiln
/// before sample shapes: `xtask keras import` of `binary_head.keras`) loads as input shape
/// `[8]`, predicts as Keras did, and saves again as version 2 with `input_shape`.
#[test]
fn a_format_version_1_save_loads_and_resaves_as_version_2() {
    let saved = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/saved/v1_binary_head");
    let v1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved.join("config.json")).unwrap()).unwrap();
    assert_eq!((v1["format_version"].as_u64(), v1["input_width"].as_u64()), (Some(1), Some(8)));
    let mut model = Sequential::load(&saved).unwrap();
    assert_eq!(model.model_input_shape().map(|s| s.dims().to_vec()), Some(vec![8]));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models_dir().join("binary_head.predictions.json")).unwrap())
            .unwrap();
    let (x, want) = (matrix(&record["x"]), matrix(&record["predictions"]));
    let got = model.predict(&x, 32).unwrap();
    assert_as_keras("v1_binary_head", &got, &want);
    let dir = std::env::temp_dir().join(format!("kiln-v1-resave-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    model.save(&dir).unwrap();
    let v2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v2["format_version"].as_u64(), Some(2));
    assert_eq!(v2["input_shape"], serde_json::json!([8]));
    assert!(v2.get("input_width").is_none(), "{v2}");
    let again = Sequential::load(&dir).unwrap().predict(&x, 32).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(again.as_slice(), got.as_slice());
}

/// Real Keras archives exported to ONNX predict in onnxruntime what Keras predicted: the
/// MNIST convnet (the architecture of docs/progression.md) and the Functional graphs (a
/// residual Add with a projection, two inputs fed by name, a residual convnet block).
/// Without a Python that has onnxruntime (`KILN_ONNX_PYTHON`), only the export is checked,
/// unless `KILN_REQUIRE_ONNXRUNTIME` demands the runtime.
#[test]
fn keras_archives_predict_as_keras_did_through_onnx() {
    let python = std::env::var("KILN_ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_runtime = std::process::Command::new(&python)
        .args(["-c", "import onnxruntime, onnx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_runtime {
        assert!(std::env::var_os("KILN_REQUIRE_ONNXRUNTIME").is_none(), "KILN_REQUIRE_ONNXRUNTIME: no onnxruntime");
        eprintln!("note: no Python with onnxruntime; checking the exports only");
    }
    for name in ["mnist_convnet", "residual", "two_inputs", "resnet_block", "normalized_mlp"] {
        let path = models_dir().join(format!("{name}.keras"));
        let model = kiln_keras::import_keras_file(&path).unwrap();
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("predictions.json")).unwrap()).unwrap();
        let want = matrix(&record["predictions"]);
        let dir = std::env::temp_dir().join(format!("kiln-{name}-onnx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let onnx = dir.join("model.onnx");
        kiln::onnx::export_onnx(&model, &onnx).unwrap();
        if !has_runtime {
            std::fs::remove_dir_all(&dir).unwrap();
            continue;
        }
        // One input: a list of rows; several: an object of rows by input name.
        let rows = |x: &serde_json::Value| {
            serde_json::Value::from(
                matrix(x).as_slice().chunks(matrix(x).cols()).map(|r| r.to_vec()).collect::<Vec<_>>(),
            )
        };
        let feed = match model.graph().filter(|g| g.inputs.len() > 1) {
            None => rows(&record["x"]),
            Some(g) => {
                g.inputs.iter().zip(record["x"].as_array().unwrap()).map(|(i, x)| (i.name.clone(), rows(x))).collect()
            }
        };
        std::fs::write(dir.join("x.json"), feed.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/onnx/tests/run_onnxruntime.py");
        let out = std::process::Command::new(&python).arg(script).arg(&onnx).arg(dir.join("x.json")).output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{name}: onnxruntime failed: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = matrix(&report["output"]);
        assert_as_keras(&format!("{name} through onnxruntime"), &got, &want);
    }
}

/// Keras' `Normalization.adapt` on arrays (fixtures/keras/normalization/
/// normalization_adapt.json, make_normalization_traces.py): kiln's `adapt_shaped` gives
/// Keras' float32 statistics bit for bit (NumPy's float32 sums, in NumPy's order), and
/// `adapt_shaped_f64` its statistics for the same values as float64; the adapted layer's
/// outputs match. Cases kiln refuses (`axis=1`, adapting on a list of batches) are skipped
/// by name, and the float64 run of values that are not float32 numbers (kiln holds f32).
#[test]
fn normalization_adapt_gives_keras_statistics_bit_for_bit() {
    use kiln::prelude::{Layer, LayerInput, Normalization, Parallelism, Rng, Shape};
    let path = models_dir().join("../normalization/normalization_adapt.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // A statistic: a list of numbers, or one number (`axis=None`).
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        match v.as_array() {
            Some(items) => items.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            None => vec![v.as_f64().unwrap() as f32],
        }
    };
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if ["rank3_axis1", "batched_iterable_flat_wild_scales"].contains(&name) {
            continue;
        }
        let dims: Vec<usize> =
            case["input_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let sample = Shape::new(dims[1..].to_vec()).unwrap();
        for run in case["runs"].as_array().unwrap() {
            let x = matrix(&run["x"]);
            let f64_run = run["input_dtype"] == "float64";
            // That case's float64 values are not float32 numbers: kiln cannot hold them.
            if f64_run && name == "float64_native" {
                continue;
            }
            let mut norm = if case["axis_argument"].is_null() {
                Normalization::new().over_all_values()
            } else {
                Normalization::new()
            };
            if f64_run { norm.adapt_shaped_f64(&x, &sample) } else { norm.adapt_shaped(&x, &sample) }.unwrap();
            let (mean, variance) = norm.adapted().unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let what = format!("{name} ({})", run["input_dtype"]);
            assert_eq!(bits(mean), bits(&floats(&run["keras_adapt_mean"])), "{what}: mean");
            assert_eq!(bits(variance), bits(&floats(&run["keras_adapt_variance"])), "{what}: variance");
            // The layer's output on the first rows, as Keras called it.
            let rows = matrix(&run["call"]["output"]);
            let input =
                Matrix::from_vec(rows.rows(), x.cols(), x.as_slice()[..rows.rows() * x.cols()].to_vec()).unwrap();
            norm.build(&sample, &mut kiln::prelude::BuildContext::new(&mut Rng::seed_from_u64(0), 1 << 20)).unwrap();
            norm.forward(LayerInput::Dense(input.view()), false, Parallelism::Sequential);
            assert_as_keras(&what, norm.output(), &rows);
            checked += 1;
        }
    }
    assert_eq!(checked, 11, "adapt runs checked");
}
