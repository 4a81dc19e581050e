//! Frozen layers (Keras `layer.trainable = False`): their weights stay put, leave the
//! optimizer and the weight penalties, pass gradients through, save and load frozen, and
//! a change takes effect at the next `compile`, as in Keras.

mod common;

use common::blobs;
use kiln_layers::{Activation, Dense, Trainable};
use kiln_optimizers::{Optimizer, Sgd};
use kiln_regularizers::L2;
use kiln_tensor::Matrix;
use kiln_trainer::{FitOptions, History, Sequential, Verbosity};

fn model(frozen_penalty: Option<f32>) -> Sequential {
    let mut middle = Dense::new(8).activation(Activation::Tanh).name("middle");
    if let Some(l2) = frozen_penalty {
        middle = middle.kernel_regularizer(L2::new(l2));
    }
    Sequential::new()
        .input_shape([4])
        .seed(5)
        .add(Dense::new(8).activation(Activation::Relu).name("first"))
        .add(middle.trainable(false))
        .add(Dense::new(3).activation(Activation::Softmax).name("head"))
}

fn fit(m: &mut Sequential, x: &Matrix, y: &Matrix) -> History {
    m.fit(x, y, FitOptions::default().epochs(2).batch_size(16).verbose(Verbosity::Silent)).unwrap()
}

fn values(m: &Sequential, layer: &str) -> Vec<Vec<f32>> {
    m.layer(layer).unwrap().params().iter().map(|p| p.value().to_vec()).collect()
}

#[test]
fn a_frozen_layer_keeps_its_weights_and_passes_gradients_through() {
    let (x, y) = blobs(96, 1);
    let mut m = model(None);
    m.compile(Optimizer::new(Sgd::default().momentum(0.9), 0.1), "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    m.build_declared().unwrap();
    let (first, middle, head) = (values(&m, "first"), values(&m, "middle"), values(&m, "head"));
    fit(&mut m, &x, &y);
    assert_eq!(values(&m, "middle"), middle, "the frozen layer moved");
    assert_ne!(values(&m, "first"), first, "no gradient reached the layer before the frozen one");
    assert_ne!(values(&m, "head"), head);
    // 8·3 + 3 of `head` and 4·8 + 8 of `first` are trained; `middle`'s 8·8 + 8 are not.
    assert_eq!(m.trainable_param_count(), 27 + 40);
    assert_eq!(m.param_count(), 27 + 40 + 72);
    let summary = m.summary();
    assert!(summary.contains(" Trainable params: 67 (268.00 B)"), "{summary}");
    assert!(summary.contains(" Non-trainable params: 72 (288.00 B)"), "{summary}");
}

/// Keras sums the regularizers of `trainable_weights` only: a frozen layer's penalty is
/// not in the loss, so the run is the same bits with or without it.
#[test]
fn a_frozen_layers_penalty_is_not_in_the_loss() {
    let (x, y) = blobs(64, 2);
    let run = |penalty: Option<f32>| {
        let mut m = model(penalty);
        m.compile("rmsprop", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
        (fit(&mut m, &x, &y), m.get_weights())
    };
    assert_eq!(run(Some(0.5)), run(None));
}

/// Freezing after the optimizer is built takes effect at the next `compile`; until then
/// `fit` is refused rather than updating the wrong slots.
#[test]
fn freezing_takes_effect_at_the_next_compile() {
    let (x, y) = blobs(64, 3);
    let mut m = model(None);
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    fit(&mut m, &x, &y);
    m.set_trainable("head", false).unwrap();
    let err = m.fit(&x, &y, FitOptions::default().verbose(Verbosity::Silent)).unwrap_err().to_string();
    assert!(err.contains("call `compile` again"), "{err}");
    let unknown = m.set_trainable("nope", false).unwrap_err().to_string();
    assert!(unknown.contains("no layer named `nope` (layers: first, middle, head)"), "{unknown}");
    m.set_trainable("middle", true).unwrap();
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let (middle, head) = (values(&m, "middle"), values(&m, "head"));
    fit(&mut m, &x, &y);
    assert_ne!(values(&m, "middle"), middle, "unfrozen and recompiled, the layer trains");
    assert_eq!(values(&m, "head"), head, "frozen and recompiled, the layer stays");
}

#[test]
fn a_frozen_layer_saves_and_loads_frozen() {
    let dir = std::env::temp_dir().join(format!("kiln-frozen-{}", std::process::id()));
    let mut m = model(None);
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let (x, y) = blobs(32, 4);
    fit(&mut m, &x, &y);
    m.save(&dir).unwrap();
    let back = Sequential::load(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let frozen: Vec<bool> = back.layers().iter().map(|l| l.is_trainable()).collect();
    assert_eq!(frozen, [true, false, true]);
    assert!(back.layer("middle").unwrap().params().iter().all(|p| !p.is_trainable()));
    assert_eq!(back.trainable_param_count(), m.trainable_param_count());
}
