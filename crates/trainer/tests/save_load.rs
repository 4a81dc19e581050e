//! Save → load round trips, the config format, and bad files.

mod common;

use common::{blobs, classifier};
use kiln_layers::{Activation, Dense, Dropout};
use kiln_optimizers::{Adam, Optimizer};
use kiln_regularizers::{L1L2, L2};
use kiln_trainer::{FitOptions, Loss, Metric, Sequential, Verbosity};

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn save_then_load_predicts_identically() {
    let (x, y) = blobs(80, 21);
    let mut m = classifier(2);
    m.fit(&x, &y, FitOptions::default().epochs(2).verbose(Verbosity::Silent)).unwrap();
    let dir = temp("roundtrip");
    m.save(&dir).unwrap();
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["config.json", "metadata.json", "model.safetensors", "optimizer.safetensors"],
        "no temporary files left"
    );
    let mut back = Sequential::load(&dir).unwrap();
    assert_eq!(back.predict(&x, 32).unwrap(), m.predict(&x, 32).unwrap());
    assert_eq!(back.get_weights(), m.get_weights());
    assert_eq!(back.to_config_json(), m.to_config_json());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_json_snapshot() {
    let mut m = Sequential::new()
        .seed(42)
        .add(Dense::new(16).activation(Activation::Relu).kernel_regularizer(L2::new(0.002)))
        .add(Dropout::new(0.5))
        .add(Dense::new(1).activation(Activation::Sigmoid).activity_regularizer(L1L2::new(0.001, 0.001)));
    m.build(100).unwrap();
    m.compile(Adam::default(), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
    insta::assert_snapshot!(m.to_config_json());
}

#[test]
fn weight_files_use_keras_names() {
    let mut m = classifier(0);
    m.build(4).unwrap();
    let names: Vec<String> = m.get_weights().0.into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]);
}

#[test]
fn bad_files_are_named_errors() {
    let dir = temp("bad");
    let err = Sequential::load(&dir).unwrap_err().to_string();
    assert!(err.contains(&*dir.to_string_lossy()) && err.contains("No such file"), "{err}");
    std::fs::create_dir_all(&dir).unwrap();
    let err = Sequential::load(&dir).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
    let mut m = classifier(0);
    m.build(4).unwrap();
    m.save(&dir).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"garbage").unwrap();
    let err = Sequential::load(&dir).unwrap_err().to_string();
    assert!(err.contains("model.safetensors") && err.contains("safetensors"), "{err}");
    // A model whose layer is wider than the saved one: the error names tensor and shapes.
    let mut other = Sequential::new().add(Dense::new(17)).add(Dense::new(3));
    other.build(4).unwrap();
    other.save_weights(dir.join("other.safetensors")).unwrap();
    let err = m.load_weights(dir.join("other.safetensors")).unwrap_err().to_string();
    assert!(err.contains("dense/kernel") && err.contains("[4, 16]") && err.contains("[4, 17]"), "{err}");
    std::fs::write(dir.join("config.json"), r#"{"format_version": 99}"#).unwrap();
    assert!(Sequential::load(&dir).unwrap_err().to_string().contains("config.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn training_resumes_exactly_from_a_saved_model() {
    // Two epochs, save, load, one more epoch == three epochs in one go: the optimizer's
    // slots and iteration count travel with the model.
    let (x, y) = blobs(60, 22);
    let opts = |epochs| FitOptions::default().epochs(epochs).batch_size(16).shuffle(false).verbose(Verbosity::Silent);
    let mut straight = Sequential::new()
        .seed(3)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    straight
        .compile(Optimizer::new(Adam::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    let mut first = Sequential::new()
        .seed(3)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Softmax));
    first
        .compile(Optimizer::new(Adam::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
        .unwrap();
    straight.fit(&x, &y, opts(3)).unwrap();
    first.fit(&x, &y, opts(2)).unwrap();
    let dir = temp("resume");
    first.save(&dir).unwrap();
    let mut resumed = Sequential::load(&dir).unwrap();
    assert_eq!(resumed.optimizer().unwrap().iterations(), 8);
    resumed.fit(&x, &y, opts(1)).unwrap();
    assert_eq!(resumed.get_weights(), straight.get_weights());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shaped model with BatchNormalization: the input shape, the layers' arguments and the
/// moving statistics (non-trainable, absent from the optimizer's state) survive a save,
/// and training resumed from the load takes the same steps as uninterrupted training.
#[test]
fn a_convnet_with_batch_normalization_round_trips_and_resumes_exactly() {
    use kiln_layers::{BatchNormalization, Conv2D, Flatten, LayerNormalization, MaxPooling2D};
    use kiln_tensor::{Matrix, Padding, Rng};
    let mut rng = Rng::seed_from_u64(4);
    let x = Matrix::from_vec(24, 6 * 6 * 2, (0..24 * 72).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap();
    let y = Matrix::from_vec(24, 1, (0..24).map(|i| (i % 3) as f32).collect()).unwrap();
    let make = || {
        let mut m = Sequential::new()
            .seed(3)
            .input_shape([6, 6, 2])
            .add(Conv2D::new(4, [3, 3]).padding(Padding::Same).activation(Activation::Relu))
            .add(BatchNormalization::new().momentum(0.8))
            .add(MaxPooling2D::new([2, 2]))
            .add(Flatten::new())
            .add(LayerNormalization::new().center(false))
            .add(Dense::new(3).activation(Activation::Softmax));
        m.compile(Optimizer::new(Adam::default(), 0.01), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])
            .unwrap();
        m
    };
    let opts = || FitOptions::default().epochs(1).batch_size(8).shuffle(false).verbose(Verbosity::Silent);
    let mut m = make();
    m.fit(&x, &y, opts()).unwrap();
    let moving = m.layer("batch_normalization").unwrap().params()[2].value().to_vec();
    assert!(moving.iter().any(|&v| v != 0.0), "training moved the statistics");
    let dir = temp("bn-roundtrip");
    m.save(&dir).unwrap();
    let mut back = Sequential::load(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(back.model_input_shape().unwrap().dims(), &[6, 6, 2]);
    assert_eq!(back.layer("batch_normalization").unwrap().params()[2].value(), &moving[..]);
    assert_eq!(back.predict(&x, 8).unwrap(), m.predict(&x, 8).unwrap());
    assert_eq!(back.trainable_param_count() + 8, back.param_count(), "4 moving means + 4 moving variances");
    m.fit(&x, &y, opts()).unwrap();
    back.fit(&x, &y, opts()).unwrap();
    assert_eq!(back.get_weights(), m.get_weights(), "resumed training takes the same steps");
}

/// `save("model.keras")` and `save_weights("x.weights.h5")` are refused, naming the calls
/// that do what the names suggest, and write nothing.
#[test]
fn keras_file_names_are_refused_with_the_right_call() {
    let mut m = kiln_trainer::Sequential::new().add(kiln_layers::Dense::new(2));
    m.build(3).unwrap();
    let dir = std::env::temp_dir().join(format!("kiln-keras-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["model.keras", "model.h5", "MODEL.HDF5"] {
        let err = m.save(dir.join(name)).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("import_keras_file") && err.contains("export_onnx"), "{err}");
    }
    let err = m.save_weights(dir.join("x.weights.h5")).unwrap_err().to_string();
    assert!(err.contains("safetensors"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing written");
    m.save_weights(dir.join("x.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A save leaves nothing beside its directory: no `.NAME.lock`, no staging folder, also
/// after saving over a previous save.
#[test]
fn saving_leaves_no_lock_file_behind() {
    let mut m = kiln_trainer::Sequential::new().add(kiln_layers::Dense::new(2));
    m.build(3).unwrap();
    let parent = std::env::temp_dir().join(format!("kiln-no-lock-{}", std::process::id()));
    std::fs::create_dir_all(&parent).unwrap();
    m.save(parent.join("model")).unwrap();
    m.save(parent.join("model")).unwrap();
    let names: Vec<String> =
        std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["model"], "only the model directory remains");
    std::fs::remove_dir_all(&parent).unwrap();
}

/// A saved model with a layer type this program does not define (a custom layer) is
/// refused with the way out, not only serde's "unknown variant".
#[test]
fn a_custom_layer_unknown_here_is_refused_with_the_way_out() {
    let json = classifier(1).to_config_json().replacen("\"type\": \"Dense\"", "\"type\": \"Scale\"", 1);
    assert!(json.contains("\"Scale\""), "{json}");
    let err = Sequential::from_config_json(&json).unwrap_err().to_string();
    assert!(err.contains("unknown variant `Scale`"), "{err}");
    assert!(err.contains("`Scale` is not a layer this program defines"), "{err}");
}
