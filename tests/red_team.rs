//! The red-team cases of issue 17, one test each: NaN that must propagate, saves that must
//! not replace a loadable model, Keras files that must be refused, data sets that must stay
//! inside their root, inputs that must be checked, loaded state that must be validated.
//! Each asserts the error text a user now sees;
//! `KILN_PRINT_ERRORS=1 cargo test --release --test red_team -- --nocapture --test-threads 1`
//! prints them all.

use std::path::{Path, PathBuf};

use kiln::prelude::*;
use serde_json::json;

/// A fresh scratch folder. A TempDir: removed when the test ends, even on panic, so keep
/// it bound (`let tmp = scratch(..)`) for as long as its path is used.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("kiln-red-team-{name}-")).tempdir().unwrap()
}

/// 3 classes, 4 features, 32 rows (a deterministic pattern).
fn data() -> (Matrix, Matrix) {
    let x: Vec<f32> = (0..32 * 4).map(|i| ((i * 37 % 17) as f32 / 17.0) - 0.5).collect();
    let y: Vec<f32> = (0..32).map(|i| (i % 3) as f32).collect();
    (Matrix::from_vec(32, 4, x).unwrap(), Matrix::from_vec(32, 1, y).unwrap())
}

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().epochs(1).batch_size(8).verbose(Verbosity::Silent)
}

fn model() -> Sequential {
    let mut m = Sequential::new()
        .seed(3)
        .add(Dense::new(5).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    m.build(4).unwrap();
    m
}

/// Sets one value of the first layer's kernel.
fn poison(m: &mut Sequential, value: f32) {
    let mut w = m.get_weights();
    w.0[0].values[0] = value;
    m.set_weights(&w).unwrap();
}

/// The error's text (printed with `KILN_PRINT_ERRORS=1`); panics if `r` is not an error.
fn err_text<T: std::fmt::Debug>(r: Result<T, impl std::fmt::Display>) -> String {
    let text = r.map(|v| panic!("expected an error, got {v:?}")).unwrap_err().to_string();
    if std::env::var_os("KILN_PRINT_ERRORS").is_some() {
        eprintln!("error: {text}");
    }
    text
}

// ---------------------------------------------------------------------------------------
// NaN propagates

#[test]
fn a_nan_weight_gives_nan_in_evaluate_and_predict_and_stops_nothing_silently() {
    let (x, y) = data();
    let mut m = model();
    poison(&mut m, f32::NAN);
    let logs = m.evaluate(&x, &y, 8).unwrap();
    assert!(logs.get("loss").unwrap().is_nan(), "loss {:?} (was ln 3 = 1.0986 before)", logs.get("loss"));
    // As in Keras: TensorFlow's argmax of a row of NaN is 0, so the accuracy is the share
    // of labels 0 (a diverged model scores about that in Keras too).
    let zeros = y.as_slice().iter().filter(|&&c| c == 0.0).count() as f64 / y.rows() as f64;
    assert!(zeros > 0.0 && zeros < 1.0);
    assert_eq!(logs.get("accuracy").map(|a| a as f32), Some(zeros as f32), "NaN rows predict class 0");
    let p = m.predict(&x, 8).unwrap();
    assert!(p.as_slice().iter().all(|v| v.is_nan()), "every probability is NaN, not uniform");

    let mut stop = TerminateOnNaN::default();
    let h = m.fit(&x, &y, quiet().epochs(3).callback(&mut stop)).unwrap();
    assert_eq!(h.get("loss").unwrap().len(), 1, "TerminateOnNaN stops in the first epoch");
    assert!(h.get("loss").unwrap()[0].is_nan());
}

#[test]
fn nan_or_infinite_features_are_refused_naming_row_and_column() {
    let (mut x, y) = data();
    x.as_mut_slice()[2 * 4 + 3] = f32::NAN;
    let mut m = model();
    for text in [err_text(m.fit(&x, &y, quiet())), err_text(m.evaluate(&x, &y, 8)), err_text(m.predict(&x, 8))] {
        assert!(text.contains("row 2") && text.contains("column 3") && text.contains("NaN"), "{text}");
    }
    x.as_mut_slice()[2 * 4 + 3] = 0.0;
    x.as_mut_slice()[5 * 4] = f32::INFINITY;
    let text = err_text(m.fit(&x, &y, quiet()));
    assert!(text.contains("row 5") && text.contains("column 0") && text.contains("inf"), "{text}");
    let mut csr = kiln_tensor::CsrMatrix::with_cols(4);
    for row in x.as_slice().chunks(4) {
        let idx: Vec<u32> = (0..4).filter(|&c| row[c as usize] != 0.0).collect();
        let vals: Vec<f32> = idx.iter().map(|&c| row[c as usize]).collect();
        csr.push_row(&idx, &vals).unwrap();
    }
    let csr = Features::Sparse(csr);
    let text = err_text(m.fit(&csr, &y, quiet()));
    assert!(text.contains("row 5") && text.contains("column 0"), "sparse input is checked too: {text}");
}

// ---------------------------------------------------------------------------------------
// Never replace a loadable model with an unloadable one

#[test]
fn a_diverged_model_is_not_saved_over_a_good_one() {
    let tmp = scratch("diverged");
    let dir = tmp.path().join("model");
    let (x, _) = data();
    let mut good = model();
    good.save(&dir).unwrap();
    let expected = good.predict(&x, 8).unwrap();
    let mut bad = model();
    poison(&mut bad, f32::NAN);
    let text = err_text(bad.save(&dir));
    assert!(text.contains("dense/kernel") && text.contains("NaN"), "{text}");
    let mut back = Sequential::load(&dir).unwrap();
    assert_eq!(back.predict(&x, 8).unwrap(), expected, "the old model is untouched");
}

#[test]
fn model_checkpoint_keeps_the_last_good_checkpoint_of_a_diverging_run() {
    let tmp = scratch("checkpoint");
    let path = tmp.path().join("ckpt");
    let (x, y) = data();
    let mut m = model();
    let mut ckpt = ModelCheckpoint::new(path.to_string_lossy());
    m.fit(&x, &y, quiet().callback(&mut ckpt)).unwrap();
    let saved = Sequential::load(&path).unwrap().get_weights();
    poison(&mut m, f32::NAN);
    let mut ckpt = ModelCheckpoint::new(path.to_string_lossy());
    m.fit(&x, &y, quiet().epochs(2).callback(&mut ckpt)).unwrap();
    assert_eq!(ckpt.skipped(), 2, "both diverged epochs were skipped");
    assert_eq!(Sequential::load(&path).unwrap().get_weights(), saved, "the good checkpoint survives");
}

#[test]
fn save_onto_a_regular_file_is_refused_and_the_file_kept() {
    let tmp = scratch("onto-file");
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "my notes").unwrap();
    let text = err_text(model().save(&file));
    assert!(text.contains("notes.txt") && text.contains("not a directory"), "{text}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "my notes");
}

#[test]
#[cfg(unix)]
fn save_through_a_symlinked_directory_writes_into_its_target() {
    let tmp = scratch("symlink");
    let base = tmp.path();
    let (real, link) = (base.join("real"), base.join("link"));
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (x, _) = data();
    let mut m = model();
    m.save(&link).unwrap();
    m.save(&link).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is still a link");
    assert!(real.join("config.json").is_file(), "the model is in the link's target");
    assert_eq!(Sequential::load(&real).unwrap().predict(&x, 8).unwrap(), m.predict(&x, 8).unwrap());
}

// ---------------------------------------------------------------------------------------
// Duplicate layer names, batch_size 0, label domains

#[test]
fn duplicate_layer_names_are_refused_at_build_and_load_and_save_never_panics() {
    let mut m = Sequential::new().add(Dense::new(3).name("d")).add(Dense::new(2).name("d"));
    let text = err_text(m.build(4));
    assert!(text.contains("two layers are named `d` (layers 0 and 1)"), "{text}");
    let tmp_save = scratch("dup-save");
    let text = err_text(m.save(tmp_save.path().join("m")));
    assert!(text.contains("two layers are named `d`"), "an unloadable config is never written: {text}");

    let tmp_load = scratch("dup-load");
    let dir = tmp_load.path().join("m");
    let mut good = Sequential::new().add(Dense::new(3).name("d")).add(Dense::new(2).name("e"));
    good.build(4).unwrap();
    good.save(&dir).unwrap();
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap().replace("\"e\"", "\"d\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let text = err_text(Sequential::load(&dir));
    assert!(text.contains("config.json") && text.contains("`d`"), "{text}");
}

#[test]
fn batch_size_zero_is_refused_by_fit_evaluate_and_predict_alike() {
    let (x, y) = data();
    let mut m = model();
    for text in
        [err_text(m.fit(&x, &y, quiet().batch_size(0))), err_text(m.evaluate(&x, &y, 0)), err_text(m.predict(&x, 0))]
    {
        assert!(text.contains("batch_size must be at least 1"), "{text}");
    }
}

#[test]
fn labels_outside_the_loss_domain_are_refused() {
    let x = Matrix::from_vec(4, 2, vec![0.1; 8]).unwrap();
    let mut bce = Sequential::new().add(Dense::new(1).activation(Activation::Sigmoid));
    bce.compile(RMSprop::default(), Loss::binary_crossentropy(), NO_METRICS).unwrap();
    for bad in [2.0, -1.0] {
        let y = Matrix::from_vec(4, 1, vec![0.0, 1.0, bad, 0.5]).unwrap();
        let text = err_text(bce.fit(&x, &y, quiet()));
        assert!(text.contains("[0, 1]") && text.contains("row 2"), "{text}");
    }
    let soft = Matrix::from_vec(4, 1, vec![0.0, 1.0, 0.25, 0.5]).unwrap();
    assert!(bce.fit(&x, &soft, quiet()).is_ok(), "soft labels in [0, 1] are Keras' and train");

    let mut cce = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
    cce.compile(RMSprop::default(), Loss::categorical_crossentropy(), NO_METRICS).unwrap();
    let fives = Matrix::from_vec(4, 2, vec![5.0; 8]).unwrap();
    let text = err_text(cce.fit(&x, &fives, quiet()));
    assert!(text.contains("row 0") && text.contains("sum"), "{text}");
    let negative = Matrix::from_vec(4, 2, vec![1.0, 0.0, 1.5, -0.5, 0.0, 1.0, 1.0, 0.0]).unwrap();
    let text = err_text(cce.fit(&x, &negative, quiet()));
    assert!(text.contains("row 1") && text.contains("-0.5"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Memory: the model's total weight budget

#[test]
fn a_model_declaring_more_weights_than_its_budget_is_refused_before_allocating() {
    // Each kernel alone is under the 2^28 default, the total is not (the 212-byte config of
    // the report allocated 4.2 GB this way).
    let mut m = Sequential::new().add(Dense::new(12_000)).add(Dense::new(12_000)).add(Dense::new(12_000));
    let text = err_text(m.build(12_000));
    assert!(text.contains("weights") && text.contains("268435456"), "{text}");
    let mut small = Sequential::new().max_weights(100).add(Dense::new(10)).add(Dense::new(10));
    let text = err_text(small.build(10));
    assert!(text.contains("declare 110 weights, past the 100") && text.contains("max_weights"), "overridable: {text}");
}

// ---------------------------------------------------------------------------------------
// Loaded state is validated

/// A trained model saved in a fresh folder, for editing; the folder lives as long as the TempDir.
fn saved(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = scratch(name);
    let dir = tmp.path().join("m");
    let (x, y) = data();
    let mut m = model();
    m.fit(&x, &y, quiet()).unwrap();
    m.save(&dir).unwrap();
    (tmp, dir)
}

/// Rewrites one tensor of a safetensors file with `f`.
fn edit_tensors(file: &Path, f: impl Fn(&str, &mut Vec<f32>)) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let mut values: Vec<f32> =
            view.data().chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        f(&name, &mut values);
        out.push((name, view.shape().to_vec(), values));
    }
    out
}

fn write_tensors(file: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    write_tensors_with(file, tensors, Some(("iterations", "4")));
}

/// Writes `tensors` with one metadata entry (or none).
fn write_tensors_with(file: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], meta: Option<(&str, &str)>) {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    let meta = meta.map(|(k, v)| std::collections::HashMap::from([(k.to_string(), v.to_string())]));
    std::fs::write(file, safetensors::tensor::serialize(views, meta).unwrap()).unwrap();
}

#[test]
fn negative_second_moments_are_refused_on_load() {
    let (_tmp, dir) = saved("velocity");
    let file = dir.join("optimizer.safetensors");
    let t = edit_tensors(&file, |n, v| {
        if n.ends_with("velocity") {
            v[0] = -1.0
        }
    });
    write_tensors(&file, &t);
    let text = err_text(Sequential::load(&dir));
    assert!(text.contains("optimizer.safetensors") && text.contains("velocity") && text.contains("-1"), "{text}");
}

#[test]
fn iterations_must_be_a_non_negative_integer() {
    let (_tmp, dir) = saved("iterations");
    let file = dir.join("optimizer.safetensors");
    let tensors = edit_tensors(&file, |_, _| {});
    for bad in ["twelve", "-3", "2.5", ""] {
        write_tensors_with(&file, &tensors, Some(("iterations", bad)));
        let text = err_text(Sequential::load(&dir));
        assert!(text.contains("optimizer.safetensors") && text.contains("iterations"), "{bad:?}: {text}");
    }
    write_tensors_with(&file, &tensors, None);
    let text = err_text(Sequential::load(&dir));
    assert!(text.contains("no `iterations` count"), "{text}");
}

#[test]
fn garbage_metadata_and_unknown_format_versions_are_refused() {
    let (_tmp, dir) = saved("metadata");
    std::fs::write(dir.join("metadata.json"), "{not json").unwrap();
    let text = err_text(Sequential::load(&dir));
    assert!(text.contains("metadata.json"), "{text}");
    std::fs::write(dir.join("metadata.json"), r#"{"format_version": 77}"#).unwrap();
    let text = err_text(Sequential::load(&dir));
    assert!(text.contains("metadata.json") && text.contains("77"), "{text}");
}

#[test]
fn tensors_the_config_does_not_name_are_refused() {
    let (_tmp, dir) = saved("extra-tensor");
    let file = dir.join("model.safetensors");
    let mut t = edit_tensors(&file, |_, _| {});
    t.push(("stowaway".into(), vec![1], vec![f32::NAN]));
    write_tensors(&file, &t);
    let text = err_text(Sequential::load(&dir));
    assert!(text.contains("unexpected tensor `stowaway`"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Keras import refuses what it cannot represent

fn keras_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/models").join(name)
}

fn keras_doc(cfg: serde_json::Value) -> String {
    err_text(kiln_keras::model_from_document(&cfg))
}

fn sequential_of(layers: serde_json::Value) -> serde_json::Value {
    json!({"class_name": "Sequential", "config": {"name": "s", "layers": layers}})
}

fn dense(config: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"name": "d", "units": 2, "activation": "linear", "use_bias": true});
    c.as_object_mut().unwrap().extend(config.as_object().unwrap().clone());
    json!({"class_name": "Dense", "config": c})
}

fn input(shape: serde_json::Value) -> serde_json::Value {
    json!({"class_name": "InputLayer", "config": {"batch_shape": shape, "dtype": "float32", "name": "in"}})
}

#[test]
fn real_keras_archives_import_and_a_branching_graph_too() {
    let seq = kiln_keras::model_from_keras_file(&keras_fixture("seq.keras")).unwrap();
    assert_eq!(seq.layers().len(), 3);
    let chain = kiln_keras::model_from_keras_file(&keras_fixture("chain.keras")).unwrap();
    assert_eq!(chain.layers().iter().map(|l| l.name().to_string()).collect::<Vec<_>>(), ["hidden", "out"]);
    // A branching graph imports as a graph model: two Dense layers joined by Concatenate.
    let branches = kiln_keras::model_from_keras_file(&keras_fixture("branches.keras")).unwrap();
    assert_eq!(branches.graph().map(|g| g.inbound.len()), Some(3));
    // Samples of shape [4, 4] into Dense(2): Dense acts on the last axis, as in Keras.
    let images = kiln_keras::model_from_keras_file(&keras_fixture("images.keras")).unwrap();
    assert_eq!(images.model_input_shape().map(|s| s.dims().to_vec()), Some(vec![4, 4]));
    assert_eq!(images.layer_shapes().unwrap()[0].to_string(), "(None, 4, 2)");
}

#[test]
fn keras_configs_kiln_cannot_represent_are_refused_naming_the_field() {
    let text = keras_doc(json!({"class_name": "Dense", "config": {"units": 2}}));
    assert!(text.contains("class_name") && text.contains("Dense"), "not a model: {text}");
    let text = keras_doc(sequential_of(json!([])));
    assert!(text.contains("config.layers") && text.contains("no layers"), "{text}");
    let text = keras_doc(sequential_of(json!([input(json!([null, null, 4])), dense(json!({}))])));
    assert!(text.contains("batch_shape") && text.contains("variable-size"), "{text}");
    let text = keras_doc(sequential_of(json!([input(json!([null, 4, 0])), dense(json!({}))])));
    assert!(text.contains("batch_shape") && text.contains("positive integer"), "{text}");
    let text = keras_doc(sequential_of(json!([dense(json!({"dtype": "mixed_float16"}))])));
    assert!(text.contains("dtype") && text.contains("mixed_float16"), "{text}");
    let init = json!({"class_name": "RandomUniform", "config": {"minval": 1.0, "maxval": -1.0, "seed": null}});
    let text = keras_doc(sequential_of(json!([dense(json!({"kernel_initializer": init}))])));
    assert!(text.contains("kernel_initializer") && text.contains("minval"), "{text}");
    for units in [json!(3.5), json!(-1), json!("16")] {
        let text = keras_doc(sequential_of(json!([dense(json!({ "units": units }))])));
        assert!(text.contains("units") && !text.contains("without"), "units {units}: {text}");
    }
}

#[test]
fn keras_optimizer_arguments_out_of_range_are_refused() {
    // Keras takes any float rate (−0.5 climbs); float32 has no 1e39, nor an integer rate
    // Keras' constructor accepts.
    for lr in [json!(1e39), json!(1)] {
        let opt = json!({"class_name": "RMSprop", "config": {"name": "rmsprop", "learning_rate": lr}});
        let text = err_text(kiln_keras::optimizer_from_keras(&opt));
        assert!(text.contains("learning_rate"), "{lr}: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// Data sets stay inside their root; endless files are refused

#[test]
#[cfg(unix)]
fn an_extracted_aclimdb_review_that_is_a_symlink_is_not_read() {
    let tmp = scratch("aclimdb-link");
    let root = tmp.path().join("aclImdb");
    for class in ["pos", "neg"] {
        std::fs::create_dir_all(root.join("train").join(class)).unwrap();
        std::fs::write(root.join("train").join(class).join("0_1.txt"), format!("a {class} review")).unwrap();
    }
    let secret = root.parent().unwrap().join("secret");
    std::fs::write(&secret, "root:$6$hash").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("train/pos/1_9.txt")).unwrap();
    let reviews = kiln_datasets::read_aclimdb(&root, kiln_datasets::Split::Train).unwrap();
    assert_eq!(reviews.len(), 2, "the link is skipped");
    assert!(reviews.texts.iter().all(|t| !t.contains("root:")));
}

#[test]
#[cfg(unix)]
fn endless_and_special_files_are_refused_by_every_reader_without_blocking() {
    let tmp = scratch("special");
    let dir = tmp.path();
    let zero = dir.join("zero-idx3-ubyte");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.join("fifo.tar.gz");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    let mut paths = vec![zero];
    if made {
        paths.push(fifo);
    }
    for p in &paths {
        let texts = [
            err_text(kiln_datasets::read_idx(p)),
            err_text(kiln_datasets::read_aclimdb(p, kiln_datasets::Split::Train)),
            err_text(kiln_datasets::inspect::summarize(p)),
            err_text(kiln_keras::model_from_keras_file(p)),
            err_text(Sequential::load(p)),
        ];
        for text in texts {
            assert!(
                text.contains(&*p.file_name().unwrap().to_string_lossy())
                    && (text.contains("device") || text.contains("FIFO")),
                "{}: {text}",
                p.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// CLI bounds

#[test]
fn reproduce_refuses_absurd_counts() {
    for args in [
        &["--seeds", "18446744073709551615"][..],
        &["--seeds", "0"],
        &["--jobs", "0"],
        &["--epochs", "0"],
        &["--epochs", "99999999999"],
    ] {
        let err = xtask::reproduce::ReproduceArgs::parse(args).unwrap_err().to_string();
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
    assert!(xtask::reproduce::ReproduceArgs::parse(&["--seeds", "5", "--jobs", "2"]).is_ok());
}

// --- round 3: xtask, reproduce and the byte-feature divisor ---

#[test]
fn a_zero_byte_divisor_is_blamed_on_the_divisor_not_on_a_value() {
    // Issue 23 #16: `divisor: 0` was reported as "the value at row 0, column 0 is 0".
    let (_, y) = data();
    let pixels: Vec<u8> = (0..32 * 4).map(|i| (i * 37 % 251) as u8).collect();
    for divisor in [0.0, f32::NAN, f32::INFINITY, 1e-45] {
        let x = Features::Bytes { values: ByteMatrix::from_vec(32, 4, pixels.clone()).unwrap(), divisor };
        let mut m = model();
        for text in [err_text(m.fit(&x, &y, quiet())), err_text(m.evaluate(&x, &y, 8)), err_text(m.predict(&x, 8))] {
            assert!(text.contains("divisor is") && !text.contains("the value at row"), "{divisor}: {text}");
        }
    }
}

#[test]
#[cfg(unix)]
fn parity_refuses_endless_and_special_trace_files() {
    // Issue 23 #8: `/dev/zero` grew to 17 GB, a FIFO blocked forever.
    let tmp = scratch("parity-special");
    let dir = tmp.path();
    let mut paths = vec![PathBuf::from("/dev/zero")];
    let fifo = dir.join("trace.json");
    if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        paths.push(fifo);
    }
    for p in paths {
        let text = err_text(xtask::parity::run(std::slice::from_ref(&p), 1e-5));
        assert!(
            text.contains(&*p.display().to_string()) && (text.contains("device") || text.contains("FIFO")),
            "{text}"
        );
    }
}

// --- round 3: keras import, save/load, predict and export-onnx outputs (issue 23) ---

/// A `.keras` archive at `path` holding `config` (deflated, so huge names stay small) and,
/// when given, `weights` as its model.weights.h5.
fn keras_zip(path: &Path, config: &str, weights: Option<&[u8]>) -> PathBuf {
    let mut out = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    out.start_file("config.json", deflated).unwrap();
    std::io::Write::write_all(&mut out, config.as_bytes()).unwrap();
    if let Some(w) = weights {
        out.start_file("model.weights.h5", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut out, w).unwrap();
    }
    out.finish().unwrap();
    path.to_path_buf()
}

/// One member of a real Keras fixture archive.
fn fixture_member(archive: &str, member: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(keras_fixture(archive)).unwrap()).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(member).unwrap(), &mut bytes).unwrap();
    bytes
}

/// Issue 23, finding 5: an empty Functional `layers` list indexed out of bounds.
#[test]
fn a_functional_config_with_no_layers_is_refused_not_a_panic() {
    let tmp = scratch("functional-empty");
    let dir = tmp.path();
    let cfg = json!({"class_name": "Functional", "config": {"name": "f", "layers": [],
        "input_layers": [["in", 0, 0]], "output_layers": [["out", 0, 0]]}});
    let text = keras_doc(cfg.clone());
    assert!(text.contains("config.layers") && text.contains("empty"), "{text}");
    let file = keras_zip(&dir.join("empty.keras"), &cfg.to_string(), None);
    let text = err_text(kiln_keras::import_keras_file(&file));
    assert!(text.contains("empty.keras") && text.contains("empty"), "{text}");
}

/// Issue 23, finding 16d: an InputLayer width that disagrees with `build_input_shape`.
#[test]
fn an_input_layer_that_disagrees_with_the_build_shape_is_refused_naming_both() {
    let cfg = json!({"class_name": "Sequential", "config": {"name": "s", "build_input_shape": [null, 5],
        "layers": [input(json!([null, 4])), dense(json!({}))]}});
    let text = keras_doc(cfg);
    assert!(
        text.contains("config.layers[0]")
            && text.contains("`in`")
            && text.contains("shape [4]")
            && text.contains("build_input_shape says [5]"),
        "{text}"
    );
    let agreeing = json!({"class_name": "Sequential", "config": {"name": "s", "build_input_shape": [null, 4],
        "layers": [input(json!([null, 4])), dense(json!({}))]}});
    assert_eq!(kiln_keras::model_from_document(&agreeing).unwrap().input_width(), Some(4));
}

/// Issue 23, finding 9: a layer renamed to "" (or to a name of megabytes) must not replace
/// a loadable save with one `load` refuses.
#[test]
fn saves_that_load_would_refuse_are_refused_and_the_previous_save_kept() {
    let tmp = scratch("save-loadable");
    let dir = tmp.path().join("m");
    let good = model();
    good.save(&dir).unwrap();
    let before = std::fs::read(dir.join("model.safetensors")).unwrap();
    for (name, expect) in [("", "empty name"), (&*"n".repeat(5000), "5000 bytes")] {
        let mut bad = model();
        bad.layers_mut()[1].core_mut().name = name.to_string();
        let text = err_text(bad.save(&dir));
        assert!(text.contains(expect) && text.contains("layer 1"), "{text}");
        let text = err_text(bad.save_weights(dir.join("w.safetensors")));
        assert!(text.contains(expect), "{text}");
    }
    // A config past load's 16 MiB cap (a model name of 17 MB).
    let huge = model().name("m".repeat(17 << 20));
    let mut huge = huge;
    huge.build(4).unwrap();
    let text = err_text(huge.save(&dir));
    assert!(text.contains("config.json") && text.contains("bytes"), "{}", &text[..text.len().min(300)]);
    // A model that was never built has no weights `load` could read.
    let text = err_text(Sequential::new().add(Dense::new(2)).save(&dir));
    assert!(text.contains("never built"), "{text}");
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), before, "the good save is untouched");
    assert_eq!(Sequential::load(&dir).unwrap().get_weights(), good.get_weights());
}

/// Issue 23, finding 9: `keras import` of a 20 MB layer name, refused by name before the
/// good model in `--out` is touched.
#[test]
fn a_keras_layer_name_of_megabytes_is_refused_at_import_and_out_is_kept() {
    let tmp = scratch("keras-long-name");
    let dir = tmp.path();
    let out = dir.join("m");
    model().save(&out).unwrap();
    let before = std::fs::read(out.join("config.json")).unwrap();
    let config_with_name = |bytes: usize| {
        String::from_utf8(fixture_member("seq.keras", "config.json")).unwrap().replacen(
            "\"name\": \"dense\"",
            &format!("\"name\": \"{}\"", "x".repeat(bytes)),
            1,
        )
    };
    let weights = fixture_member("seq.keras", "model.weights.h5");
    // 10 MB: under the config cap, refused by the name rule, naming the field.
    let file = keras_zip(&dir.join("long.keras"), &config_with_name(10 << 20), Some(&weights));
    assert!(std::fs::metadata(&file).unwrap().len() < 100_000, "a small archive");
    let args = xtask::models::ImportArgs { file: file.clone(), out: out.clone() };
    let text = format!("{:#}", xtask::models::keras_import(&args).unwrap_err());
    assert!(text.contains("long.keras") && text.contains("config.layers[1].config.name"), "{text}");
    assert!(text.contains("10485760 bytes"), "{text}");
    // 20 MB: past the config cap, which is load's.
    let file = keras_zip(&dir.join("longer.keras"), &config_with_name(20 << 20), Some(&weights));
    let args = xtask::models::ImportArgs { file, out: out.clone() };
    let text = format!("{:#}", xtask::models::keras_import(&args).unwrap_err());
    assert!(text.contains("longer.keras") && text.contains("config.json") && text.contains("16777216"), "{text}");
    assert_eq!(std::fs::read(out.join("config.json")).unwrap(), before);
}

/// Issue 23, finding 11: 170,000 layers whose names are checked pairwise would take
/// minutes; in linear time the model builds. A Keras config may list at most
/// `MAX_LAYERS` (round 3 re-test: 200,000 Dropouts cost 424 MB), so one at the cap
/// imports, and one of 170,000 is refused by its count.
#[test]
fn a_model_of_170k_layers_checks_its_names_in_linear_time() {
    const N: usize = 170_000;
    let mut m = Sequential::new();
    for _ in 0..N {
        m.push(Box::new(Dropout::new(0.1)));
    }
    m.build(4).unwrap();
    assert_eq!(m.layers()[N - 1].name(), format!("dropout_{}", N - 1));
    let dropouts = |n: usize| {
        let mut layers = vec![input(json!([null, 4]))];
        layers
            .extend((0..n).map(|i| json!({"class_name": "Dropout", "config": {"name": format!("d{i}"), "rate": 0.1}})));
        layers
    };
    let k = kiln_keras::MAX_LAYERS - 2;
    let mut layers = dropouts(k);
    layers.push(json!({"class_name": "Dropout", "config": {"name": "d7", "rate": 0.1}}));
    let text = keras_doc(sequential_of(json!(layers)));
    assert!(text.contains("`d7`") && text.contains(&format!("layers 7 and {k}")), "{text}");
    layers.pop();
    let imported = kiln_keras::model_from_document(&sequential_of(json!(layers))).unwrap();
    assert_eq!(imported.layers().len(), k);
    let text = keras_doc(sequential_of(json!(dropouts(N))));
    assert!(text.contains("170001 layers, more than the 10000"), "{text}");
}

/// A saved model, an input file and a scratch folder for the predict/export cases (the
/// folder is removed when the returned TempDir drops).
fn predict_setup(name: &str, rows: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = scratch(name);
    let m = tmp.path().join("m");
    model().save(&m).unwrap();
    let input = tmp.path().join("x.json");
    std::fs::write(&input, rows).unwrap();
    (tmp, m, input)
}

fn predict_err(dir: &Path, input: &Path, json_out: Option<PathBuf>) -> String {
    let args = xtask::models::PredictArgs {
        dir: dir.to_path_buf(),
        input: input.to_path_buf(),
        more_inputs: Vec::new(),
        json: json_out,
    };
    let text = format!("{:#}", xtask::models::predict(&args).unwrap_err());
    if std::env::var_os("KILN_PRINT_ERRORS").is_some() {
        eprintln!("error: {text}");
    }
    text
}

/// Issue 23, finding 3: rows are checked as they are read, naming the row.
#[test]
fn predict_checks_each_row_as_it_reads_it() {
    let empty_rows = format!("[{}]", vec!["[]"; 100_000].join(","));
    let (_tmp, m, input) = predict_setup("predict-rows", &empty_rows);
    let text = predict_err(&m, &input, None);
    assert!(text.contains("x.json") && text.contains("row 0 has 0 values, the model takes 4"), "{text}");
    for (rows, expect) in [
        ("[[1,2,3,4],[1,2,3,4,5]]", "row 1 has more than 4 values"),
        ("[[1,2,3,4],[1,2,\"a\",4]]", "row 1, column 2"),
        ("[[1,2,3,1e39]]", "row 0, column 3 is 1000000000000000000000000000000000000000, not a finite float32"),
        ("[[1,2,3,4],7]", "row 1"),
        ("[]", "empty"),
        ("[[1,2,3,4]] x", "trailing"),
        ("{\"a\": 1}", "list of rows"),
    ] {
        std::fs::write(&input, rows).unwrap();
        let text = predict_err(&m, &input, None);
        assert!(text.contains("x.json") && text.contains(expect), "{rows}: {text}");
    }
    std::fs::write(&input, "[[1, 2, 3, 4], [0.5, -1, 2e-3, 4]]").unwrap();
    let out = input.with_file_name("y.json");
    let args = xtask::models::PredictArgs { dir: m, input, more_inputs: Vec::new(), json: Some(out.clone()) };
    assert!(xtask::models::predict(&args).unwrap());
    let y: Vec<Vec<f32>> = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!((y.len(), y[0].len()), (2, 3));
}

/// Issue 23, finding 16a: an infinite or NaN prediction is refused (JSON would say `null`),
/// naming the row and output, and nothing is written.
#[test]
fn predict_refuses_non_finite_outputs_and_writes_nothing() {
    let tmp = scratch("predict-inf");
    let dir = tmp.path();
    let m = dir.join("m");
    let mut linear = Sequential::new().add(Dense::new(2));
    linear.build(1).unwrap();
    let mut w = linear.get_weights();
    w.0[0].values = vec![1e30, 1.0];
    linear.set_weights(&w).unwrap();
    linear.save(&m).unwrap();
    let input = dir.join("x.json");
    std::fs::write(&input, "[[1], [1e30], [2]]").unwrap();
    let out = dir.join("y.json");
    let text = predict_err(&m, &input, Some(out.clone()));
    assert!(text.contains("row 1") && text.contains("inf") && text.contains("output 0"), "{text}");
    assert!(!out.exists(), "nothing is written");
}

/// Issue 23, finding 14: no output path may lie inside a model directory or be an input.
#[test]
fn outputs_inside_a_model_directory_or_onto_an_input_are_refused() {
    let (tmp, m, input) = predict_setup("out-paths", "[[1, 2, 3, 4]]");
    let dir = tmp.path();
    let snapshot = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&m);
    for out in [m.join("model.safetensors"), m.join("config.json"), m.clone(), m.join("new.onnx")] {
        let args = xtask::models::ExportOnnxArgs { dir: m.clone(), out: out.clone() };
        let text = format!("{:#}", xtask::models::export_onnx(&args).unwrap_err());
        assert!(text.contains("--out") && text.contains("model directory"), "{}: {text}", out.display());
        let text = predict_err(&m, &input, Some(out.clone()));
        assert!(text.contains("--json") && text.contains("model directory"), "{}: {text}", out.display());
    }
    // Another saved model's directory, reached through `..` and through a symlink.
    let other = dir.join("other");
    model().save(&other).unwrap();
    let text = predict_err(&m, &input, Some(dir.join("m/../other/config.json")));
    assert!(text.contains("model directory"), "{text}");
    #[cfg(unix)]
    {
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(m.join("config.json"), &link).unwrap();
        let text = predict_err(&m, &input, Some(link));
        assert!(text.contains("model directory"), "{text}");
    }
    let text = predict_err(&m, &input, Some(dir.join("./x.json")));
    assert!(text.contains("is the input"), "{text}");
    assert_eq!(snapshot(&m), before, "the model is untouched");
    // keras import: --out may not hold (or be) the archive it reads.
    let archive = other.join("seq.keras");
    std::fs::copy(keras_fixture("seq.keras"), &archive).unwrap();
    let args = xtask::models::ImportArgs { file: archive.clone(), out: other.clone() };
    let text = format!("{:#}", xtask::models::keras_import(&args).unwrap_err());
    assert!(text.contains("--out") && text.contains("seq.keras"), "{text}");
    assert!(archive.exists());
    // data keras-imdb: --json may not be its input.
    let npz = dir.join("imdb.npz");
    std::fs::write(&npz, b"PK").unwrap();
    let args = xtask::data::KerasImdbArgs {
        file: npz.clone(),
        num_words: None,
        skip_top: 0,
        maxlen: None,
        seed: 113,
        start_char: xtask::data::MaybeIndex(Some(1)),
        oov_char: xtask::data::MaybeIndex(Some(2)),
        index_from: xtask::data::MaybeIndex(Some(3)),
        json: npz.clone(),
    };
    let text = format!("{:#}", xtask::data::keras_imdb(&args).unwrap_err());
    assert!(text.contains("is the input"), "{text}");
    // A fresh path beside the model is fine.
    let args = xtask::models::ExportOnnxArgs { dir: m.clone(), out: dir.join("m.onnx") };
    assert!(xtask::models::export_onnx(&args).unwrap());
}

/// Issue 23, finding 10: a stored `model.weights.h5` is read in place from the archive;
/// its CRC is still checked first, so one flipped weight byte is an error, not a silently
/// different model.
#[test]
fn a_flipped_byte_in_stored_keras_weights_fails_the_crc_check() {
    let tmp = scratch("keras-crc");
    let dir = tmp.path();
    let mut bytes = std::fs::read(keras_fixture("seq.keras")).unwrap();
    let start = {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        let member = zip.by_name("model.weights.h5").unwrap();
        assert_eq!(member.compression(), zip::CompressionMethod::Stored, "Keras stores its members");
        member.data_start() as usize
    };
    // The first kernel's data sits at 0x23c8 in seq.keras's HDF5 file.
    bytes[start + 0x23c8 + 5] ^= 0x40;
    let file = dir.join("flipped.keras");
    std::fs::write(&file, &bytes).unwrap();
    let text = err_text(kiln_keras::import_keras_file(&file));
    assert!(text.contains("flipped.keras") && text.contains("model.weights.h5"), "{text}");
    assert!(kiln_keras::import_keras_file(&keras_fixture("seq.keras")).is_ok());
}

// --- round 3: parity traces and bounded error messages (issue 23, round B) ---

/// A shipped Keras trace, as JSON to edit.
fn trace_fixture(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras").join(name));
    serde_json::from_str(&text.unwrap()).unwrap()
}

/// Round B #3: `fit.epochs = 10¹²` in a 12 KB trace ran forever, growing by GBs. The
/// declared length is checked against what the trace records before anything trains.
#[test]
fn parity_refuses_a_trace_declaring_more_training_than_it_records() {
    let tmp = scratch("parity-length");
    let dir = tmp.path();
    let mut t = trace_fixture("keras_trace_ii_l2.json");
    t["fit"]["epochs"] = json!(1_000_000_000_000u64);
    let file = dir.join("endless.json");
    std::fs::write(&file, t.to_string()).unwrap();
    let text = format!("{:#}", xtask::parity::run(std::slice::from_ref(&file), 1e-5).unwrap_err());
    assert!(text.contains("endless.json") && text.contains("fit.epochs") && text.contains("1000000000000"), "{text}");
    assert!(text.contains("records 3"), "{text}");

    // One recorded batch fewer than 3 epochs of 4 steps.
    let mut t = trace_fixture("keras_trace_ii_l2.json");
    t["batches"].as_array_mut().unwrap().pop();
    let text = err_text(kiln_keras::replay(&t, 1e-5));
    assert!(text.starts_with("batches:") && text.contains("11 batches") && text.contains("make 12"), "{text}");

    // A callback that may stop early lets the trace record fewer epochs than declared;
    // the replay then stops one batch past the last recorded one instead of running on.
    let mut t = trace_fixture("keras_trace_ii_l2.json");
    t["fit"]["epochs"] = json!(1_000_000_000_000u64);
    t["fit"]["callbacks"] = json!([{"class_name": "EarlyStopping", "config": {"monitor": "loss", "patience": 1000}}]);
    let report = kiln_keras::replay(&t, 1e-5).unwrap();
    assert!(!report.passed());
    assert!(report.problems.iter().any(|p| p.contains("Keras ran 12 batches, kiln 13")), "{report:#?}");
}

/// Round B #4: a trace whose config declares a model far larger than its
/// `initial_weights` is refused before the model is built, naming both counts.
#[test]
fn parity_refuses_initial_weights_that_do_not_fit_the_config_before_building() {
    let mut t = trace_fixture("keras_trace_ii_l2.json");
    let cfg = &mut t["model"]["config"];
    cfg["build_input_shape"] = json!([null, 2000]);
    cfg["layers"][0]["config"]["batch_shape"] = json!([null, 2000]);
    cfg["layers"][1]["config"]["units"] = json!(2000);
    cfg["layers"][1]["build_config"]["input_shape"] = json!([null, 2000]);
    let text = err_text(kiln_keras::replay(&t, 1e-5));
    assert!(text.starts_with("initial_weights:") && text.contains("75") && text.contains("4008003"), "{text}");

    // A tensor whose shape does not hold its values is named.
    let mut t = trace_fixture("keras_trace_ii_l2.json");
    t["initial_weights"]["sequential/dense/bias"]["shape"] = json!([1u64 << 40, 1u64 << 40]);
    let text = err_text(kiln_keras::replay(&t, 1e-5));
    assert!(text.starts_with("initial_weights.sequential/dense/bias:") && text.contains("8 values"), "{text}");
}

/// Round B #12: errors quoting a value (a 1 MB unknown option, a 10 KB `--config`) quote
/// its start and its length, not all of it.
#[test]
fn errors_quote_an_excerpt_of_huge_values() {
    let cfg = sequential_of(json!([
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 2]}},
        {"class_name": "Dense", "config": {"units": 1, "bogus": "x".repeat(1 << 20)}}
    ]));
    let text = err_text(kiln_keras::model_from_keras(&cfg));
    assert!(text.contains("bogus") && text.contains("(1048578 bytes)") && text.len() < 1000, "{}", text.len());

    let deep = "[".repeat(5000);
    let tmp = scratch("deep-config");
    let args = xtask::reproduce::ReproduceArgs::parse(&[
        "--only",
        "imdb_custom",
        "--regularizer",
        "pkg>Name",
        "--config",
        &deep,
        "--out",
        &tmp.path().join("out").display().to_string(),
    ])
    .unwrap();
    let text = format!("{:#}", xtask::reproduce::run(&args).unwrap_err());
    assert!(text.contains("--config [[[") && text.contains("(5000 bytes)") && text.len() < 1000, "{text}");
}
