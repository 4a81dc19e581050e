//! Keras' spellings where a Keras user types them: string identifiers in `compile`, and
//! `evaluate`/`predict` without a batch size (Keras' 32).

mod common;

use common::blobs;
use kiln_layers::{Activation, Dense};
use kiln_optimizers::RMSprop;
use kiln_tensor::Matrix;
use kiln_trainer::{FitOptions, History, Loss, Metric, Sequential, Verbosity};

fn model() -> Sequential {
    Sequential::new()
        .input_shape([4])
        .seed(3)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid))
}

/// `n` points and a binary label: whether the point is in class 0.
fn data(n: usize, seed: u64) -> (Matrix, Matrix) {
    let (x, y) = blobs(n, seed);
    let binary = y.as_slice().iter().map(|&c| if c == 0.0 { 1.0 } else { 0.0 }).collect();
    (x, Matrix::from_vec(n, 1, binary).unwrap())
}

fn train(m: &mut Sequential) -> History {
    let (x, y) = data(200, 1);
    m.fit(&x, &y, FitOptions::default().epochs(2).batch_size(32).verbose(Verbosity::Silent)).unwrap()
}

/// `compile("rmsprop", "binary_crossentropy", ["accuracy", "mae"])` is the typed compile,
/// to the bit, with the strings as log keys.
#[test]
fn string_identifiers_compile_to_the_typed_values() {
    let mut typed = model();
    typed
        .compile(
            RMSprop::default(),
            Loss::binary_crossentropy(),
            [Metric::Accuracy.named("accuracy"), Metric::MeanAbsoluteError.named("mae")],
        )
        .unwrap();
    let mut named = model();
    named.compile("rmsprop", "binary_crossentropy", ["accuracy", "mae"]).unwrap();
    assert_eq!(named.loss(), typed.loss());
    assert_eq!(train(&mut named), train(&mut typed));
    let keys: Vec<String> = train(&mut named).keys().map(str::to_string).collect();
    assert_eq!(keys, ["accuracy", "loss", "mae"]);
}

/// Unknown identifiers are refused with what kiln knows; a Keras name kiln does not
/// compute says so.
#[test]
fn unknown_identifiers_list_what_is_known() {
    let mut m = model();
    let err = |r: Result<(), kiln_trainer::TrainError>| r.unwrap_err().to_string();
    let opt = err(m.compile("nadam", "mse", ["mae"]));
    assert!(opt.contains("`nadam` is a Keras optimizer kiln does not implement (kiln knows: sgd, rmsprop"), "{opt}");
    let loss = err(m.compile("adam", "huber", ["mae"]));
    assert!(loss.contains("`huber` is a Keras loss kiln does not implement (kiln knows: sparse_categorical"), "{loss}");
    let shaped = err(m.compile("adam", "crossentropy", ["mae"]));
    assert!(shaped.contains("Keras chooses the crossentropy from the labels' shape"), "{shaped}");
    let typo = err(m.compile("adam", "binary_crossentropi", ["mae"]));
    assert!(typo.contains("`binary_crossentropi` is not a loss"), "{typo}");
    let metric = err(m.compile("adam", "mse", ["accuracyy"]));
    assert!(metric.contains("unknown metric `accuracyy` (known: accuracy, acc,"), "{metric}");
    assert!(m.loss().is_none(), "a refused compile leaves the model uncompiled");
}

/// Keras' `evaluate(x, y)` and `predict(x)` batch by 32: `None` is exactly `32`.
#[test]
fn evaluate_and_predict_default_to_keras_batch_size() {
    let (x, y) = data(100, 2);
    let mut m = model();
    m.compile("sgd", "bce", ["acc"]).unwrap();
    assert_eq!(m.predict(&x, None).unwrap(), m.predict(&x, 32).unwrap());
    assert_eq!(m.evaluate(&x, &y, None).unwrap(), m.evaluate(&x, &y, 32).unwrap());
    assert_eq!(kiln_trainer::DEFAULT_BATCH_SIZE, 32);
}
