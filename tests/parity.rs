//! The Keras training traces, replayed number for number (the `cargo xtask parity` check).

use std::path::PathBuf;

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras").join(name);
    // Python's json.dump writes NaN and Infinity (a diverging run's numbers).
    kiln_keras::parse_trace(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn assert_parity(name: &str, rtol: f64) {
    let report = kiln_keras::replay(&fixture(name), rtol).unwrap();
    // A floor that catches a replay comparing (almost) nothing; the smallest trace, a
    // Normalization and one Dense over 2 epochs (n5), holds 114 numbers.
    assert!(report.compared() > 100, "{name}: only {} numbers compared", report.compared());
    assert!(report.passed(), "{name}: {report:#?}");
}

#[test]
fn trace_i_relu_softmax_rmsprop001() {
    assert_parity("keras_trace_i_relu_softmax_rmsprop001.json", 1e-5);
}

#[test]
fn trace_ii_l2() {
    assert_parity("keras_trace_ii_l2.json", 1e-5);
}

#[test]
fn trace_iii_binary() {
    assert_parity("keras_trace_iii_binary.json", 1e-5);
}

#[test]
fn trace_iv_rmsprop_lr1_diverging() {
    // A diverging run amplifies float32 rounding: an independent float32 NumPy replay
    // differs from Keras by 7.5e-5 relative, hence the looser tolerance that
    // fixtures/keras/tolerances.json documents (and `kiln parity` reads).
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras");
    let tolerances = xtask::parity::Tolerances::read(&dir).unwrap();
    let name = "keras_trace_iv_rmsprop_lr1.json";
    assert_eq!(tolerances.of(std::path::Path::new(name)), 1e-3);
    assert_eq!(tolerances.traces.len(), 1, "every other trace replays at the default");
    assert_eq!(tolerances.default_rtol, 1e-5);
    assert_parity(name, 1e-3);
}

#[test]
fn trace_v_l1_l1l2_activity() {
    assert_parity("keras_trace_v_l1_l1l2_activity.json", 1e-5);
}

#[test]
fn ce_path_probe_matches_keras_evaluate() {
    use kiln::prelude::*;
    let probe = fixture("keras_ce_path_probe.json");
    // Dense(3, softmax) on x = 1 with logits [50, 0, -50] (zero kernel, bias = logits).
    let mut m = Sequential::new().add(Dense::new(3).activation(Activation::Softmax));
    m.build(1).unwrap();
    m.layers_mut()[0].set_param("kernel", &[0.0, 0.0, 0.0]).unwrap();
    m.layers_mut()[0].set_param("bias", &[50.0, 0.0, -50.0]).unwrap();
    m.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
    let x = Matrix::from_rows(&[[1.0]]).unwrap();
    let logs = m.evaluate(&x, &Matrix::from_rows(&[[2.0]]).unwrap(), 1).unwrap();
    let want = probe["probe"]["softmax"]["model.evaluate (tf.function)"].as_f64().unwrap();
    assert_eq!(logs.get("loss").unwrap(), want);

    let mut m = Sequential::new().add(Dense::new(1).activation(Activation::Sigmoid));
    m.build(1).unwrap();
    m.layers_mut()[0].set_param("kernel", &[0.0]).unwrap();
    m.layers_mut()[0].set_param("bias", &[-50.0]).unwrap();
    m.compile(RMSprop::default(), Loss::binary_crossentropy(), NO_METRICS).unwrap();
    let logs = m.evaluate(&x, &Matrix::from_rows(&[[1.0]]).unwrap(), 1).unwrap();
    let want = probe["probe"]["sigmoid"]["model.evaluate (tf.function)"].as_f64().unwrap();
    assert_eq!(logs.get("loss").unwrap(), want);
}

#[test]
fn extra_traces_from_real_keras() {
    // More traces made with the same Keras/TensorFlow versions by
    // fixtures/keras/generate/make_traces.py: SGD (Nesterov), Adam (AMSGrad), centered
    // RMSprop with momentum, categorical CE, MSE/MAE, multi-label sigmoid, validation_split,
    // smaller last batches, bias and activity regularizers, Dropout(0), no bias,
    // from_logits=True losses on linear outputs (x1–x10); then the five schedules,
    // clipnorm/clipvalue/global_clipnorm, weight decay and AdamW, class and sample weights
    // (weighted and unweighted metrics), Precision/Recall/AUC/F1/top-k metrics and
    // ReduceLROnPlateau (x11–x21).
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/extra");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 21);
    for f in files {
        let name = format!("extra/{}", f.file_name().unwrap().to_string_lossy());
        assert_parity(&name, 1e-5);
    }
}

/// The shaped-input traces (fixtures/keras/generate/make_shaped_traces.py, real Keras
/// 3.15.1 on one thread; fixtures/keras/shaped/README.md says what each exercises), at the
/// default tolerance, BatchNormalization's moving statistics compared after every batch.
#[test]
fn shaped_traces_from_real_keras() {
    replay_folder("shaped", 14);
}

/// The sequence traces (fixtures/keras/generate/make_sequence_traces.py; README.md beside
/// them): Embedding, SimpleRNN, stacked LSTM, both GRU variants, Dense on every step,
/// `go_backwards`.
#[test]
fn sequence_traces_from_real_keras() {
    replay_folder("sequences", 14);
}

/// The Functional traces (fixtures/keras/generate/make_functional_traces.py; README.md
/// beside them): a residual Add with a projection, a Concatenate of a fan-out, a model of
/// two inputs (Subtract, Multiply), a residual convnet with BatchNormalization,
/// Average/Maximum/Minimum with a Concatenate on the time axis, Activation layers, and
/// recurrent layers with a Dropout (whose nodes record `training: false`).
#[test]
fn functional_traces_from_real_keras() {
    replay_folder("functional", 7);
}

/// The activation traces (fixtures/keras/generate/make_activation_traces.py; README.md
/// beside them): relu6, elu, selu, leaky_relu, softplus, silu, gelu, hard_sigmoid,
/// softsign, mish and exponential, in Dense layers and as Activation layers.
#[test]
fn activation_traces_from_real_keras() {
    replay_folder("activations", 5);
}

/// The frozen-layer traces (fixtures/keras/generate/make_frozen_traces.py; README.md
/// beside them): a frozen Dense with an L2 penalty under Adam with global_clipnorm (the
/// penalty and the frozen gradients stay out of the loss and the norm), a frozen
/// BatchNormalization in inference mode under RMSprop with clipnorm, and a frozen middle
/// layer passing gradients to the first under SGD with momentum.
#[test]
fn frozen_layer_traces_from_real_keras() {
    replay_folder("frozen", 3);
}

/// The Normalization traces (fixtures/keras/generate/make_normalization_traces.py;
/// README.md beside them): adapted per feature and per image channel, constant statistics
/// with a zero variance (the 1e-7 guard), `invert`, and `axis=None`.
#[test]
fn normalization_traces_from_real_keras() {
    replay_folder("normalization", 5);
}

/// Cases of a review against Keras 3.15.1 (generate/make_review_traces.py): crossentropies
/// reading a softmax's or sigmoid's logits, also through `Dropout(0)`; ignore_class with
/// class weights; AdamW with a piecewise schedule and global clipping; a cosine warm-up;
/// EarlyStopping with ReduceLROnPlateau; a diverging run stopped by TerminateOnNaN, its
/// NaN and infinite numbers written as Python writes them; GlobalMaxPooling1D's tied maxima
/// under an Embedding (generate/make_review_traces_layers.py); an LSTM on windows.
#[test]
fn review_traces_from_real_keras() {
    replay_folder("review", 13);
}

/// Replays every `keras_trace_*.json` of `fixtures/keras/<folder>` (there must be `count`)
/// at the default tolerance.
fn replay_folder(folder: &str, count: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras").join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("keras_trace_")))
        .collect();
    files.sort();
    assert_eq!(files.len(), count, "{folder}");
    for f in files {
        assert_parity(&format!("{folder}/{}", f.file_name().unwrap().to_string_lossy()), 1e-5);
    }
}
