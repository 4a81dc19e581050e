//! Keras' crossentropies on a sigmoid or softmax output read the logits that activation
//! attached (`_get_logits`, backend/tensorflow/nn.py): whichever of the two made the
//! output, even under `from_logits=True`, and in the crossentropy metrics too; not under
//! `ignore_class`. Every expected number below is what Keras 3.15.1 (TensorFlow 2.21)
//! printed for the same model: `Dense(units, activation)` on one input, bias 0.

use kiln_layers::{Activation, Dense};
use kiln_optimizers::{Optimizer, Sgd};
use kiln_tensor::Matrix;
use kiln_trainer::{FitOptions, Loss, Metric, NamedMetric, Sequential, Verbosity};

/// A 1→`kernel.len()` Dense with `activation`, kernel `kernel`, bias 0, compiled with
/// `loss`, `metrics` and SGD(0.1).
fn model(activation: Activation, kernel: &[f32], loss: Loss, metrics: Vec<NamedMetric>) -> Sequential {
    let mut m = Sequential::new().add(Dense::new(kernel.len()).activation(activation));
    m.build(1).unwrap();
    let mut w = m.get_weights();
    w.0[0].values = kernel.to_vec();
    m.set_weights(&w).unwrap();
    m.compile(Optimizer::new(Sgd::default(), 0.1), loss, metrics).unwrap();
    m
}

fn rows(rows: &[&[f32]]) -> Matrix {
    Matrix::from_rows(rows).unwrap()
}

fn close(a: f64, keras: f64) -> bool {
    (a - keras).abs() <= 1e-6 + 1e-5 * keras.abs()
}

#[test]
fn a_crossentropy_reads_the_logits_of_either_activation() {
    let x = rows(&[&[1.0], &[2.0]]);
    let y2 = rows(&[&[1.0, 0.0], &[0.0, 1.0]]);
    let y3 = rows(&[&[0.0, 0.0, 1.0], &[0.0, 1.0, 0.0]]);
    let cce_logits = Loss::categorical_crossentropy().with_from_logits(true);
    let bce_logits = Loss::binary_crossentropy().with_from_logits(true);
    for (activation, kernel, loss, y, keras) in [
        (Activation::Softmax, &[3.0, -2.0][..], Loss::binary_crossentropy(), &y2, 2.5490353107452393),
        (Activation::Sigmoid, &[2.0, -1.0, 0.5][..], Loss::categorical_crossentropy(), &y3, 3.8961286544799805),
        (Activation::Softmax, &[3.0, -2.0][..], cce_logits, &y2, 5.00338077545166),
        (Activation::Sigmoid, &[3.0, -2.0][..], bce_logits, &y2, 2.5490353107452393),
    ] {
        let mut m = model(activation, kernel, loss, Vec::new());
        let loss_value = m.evaluate(&x, y, None).unwrap().get("loss").unwrap();
        assert!(close(loss_value, keras), "{activation:?} {loss:?}: {loss_value} vs Keras {keras}");
    }
    let mut m = model(Activation::Sigmoid, &[2.0, -1.0, 0.5], Loss::sparse_categorical_crossentropy(), Vec::new());
    let loss_value = m.evaluate(&x, &rows(&[&[2.0], &[1.0]]), None).unwrap().get("loss").unwrap();
    assert!(close(loss_value, 3.8961286544799805), "{loss_value}");
}

#[test]
fn the_step_follows_the_logits_gradient() {
    // Softmax + binary crossentropy, one SGD(0.1) step on both rows: Keras' weights after.
    let mut m = model(Activation::Softmax, &[3.0, -2.0], Loss::binary_crossentropy(), Vec::new());
    let (x, y) = (rows(&[&[1.0], &[2.0]]), rows(&[&[1.0, 0.0], &[0.0, 1.0]]));
    m.fit(&x, &y, FitOptions::default().batch_size(2).epochs(1).shuffle(false).verbose(Verbosity::Silent)).unwrap();
    let w = m.get_weights();
    let keras = [2.9513092041015625, -1.9538793563842773, -0.023752538487315178, 0.021570270881056786];
    let kiln: Vec<f32> = w.0.iter().flat_map(|t| t.values.iter().copied()).collect();
    for (k, e) in kiln.iter().zip(keras) {
        assert!(close(f64::from(*k), e), "{kiln:?} vs Keras {keras:?}");
    }
}

#[test]
fn crossentropy_metrics_read_the_logits_too() {
    // A sigmoid at −30: the loss and both metrics are 30, not the clipped −ln(1e-7).
    let metrics = vec![
        Metric::from_keras("binary_crossentropy").unwrap(),
        Metric::from_keras_class("BinaryCrossentropy").unwrap(),
    ];
    let mut m = model(Activation::Sigmoid, &[-30.0], Loss::binary_crossentropy(), metrics);
    let logs = m.evaluate(&rows(&[&[1.0]]), &rows(&[&[1.0]]), None).unwrap();
    let values: Vec<f64> = logs.iter().map(|(_, v)| v).collect();
    assert!(values.len() >= 3, "the loss and two metrics: {logs:?}");
    assert!(values.iter().all(|&v| close(v, 30.0)), "{logs:?}");
    let metrics = vec![Metric::from_keras("sparse_categorical_crossentropy").unwrap()];
    let mut m = model(Activation::Softmax, &[50.0, 0.0, -50.0], Loss::sparse_categorical_crossentropy(), metrics);
    let logs = m.evaluate(&rows(&[&[1.0]]), &rows(&[&[2.0]]), None).unwrap();
    assert!(logs.iter().all(|(_, v)| close(v, 100.0)), "{logs:?}");
}

#[test]
fn ignore_class_reads_the_clipped_probabilities() {
    // Keras masks the output into a new tensor without logits: −ln(1e-7) for the one
    // valid row, not the logits' 100.
    let loss = Loss::sparse_categorical_crossentropy().with_ignore_class(Some(-1)).unwrap();
    let mut m = model(Activation::Softmax, &[50.0, 0.0, -50.0], loss, Vec::new());
    let logs = m.evaluate(&rows(&[&[1.0], &[1.0]]), &rows(&[&[2.0], &[-1.0]]), None).unwrap();
    let loss_value = logs.get("loss").unwrap();
    assert!(close(loss_value, 16.11809539794922), "{loss_value}");
}

/// Keras' Dropout at inference or at rate 0, and `Activation("linear")`, return their input
/// tensor itself, logits attached: after a softmax they change nothing of the above (Keras
/// 3.15.1 gave the same numbers with each of them appended).
#[test]
fn layers_that_hand_their_input_back_keep_the_logits() {
    use kiln_layers::{ActivationLayer, Dropout, Layer};
    let tails: [fn() -> Box<dyn Layer>; 3] = [
        || Box::new(Dropout::new(0.0)),
        || Box::new(ActivationLayer::new(Activation::Linear)),
        || Box::new(Dropout::new(0.5).seed(1)),
    ];
    let (x, y) = (rows(&[&[1.0], &[2.0]]), rows(&[&[1.0, 0.0], &[0.0, 1.0]]));
    for (k, tail) in tails.iter().enumerate() {
        let with = |kernel: &[f32], loss: Loss| {
            let mut m = Sequential::new().add(Dense::new(kernel.len()).activation(Activation::Softmax));
            m.push(tail());
            m.build(1).unwrap();
            let mut w = m.get_weights();
            w.0[0].values = kernel.to_vec();
            m.set_weights(&w).unwrap();
            m.compile(Optimizer::new(Sgd::default(), 0.1), loss, Vec::<NamedMetric>::new()).unwrap();
            m
        };
        let mut m = with(&[3.0, -2.0], Loss::binary_crossentropy());
        let loss_value = m.evaluate(&x, &y, None).unwrap().get("loss").unwrap();
        assert!(close(loss_value, 2.5490353107452393), "tail {k}: {loss_value}");
        let mut m = with(&[50.0, 0.0, -50.0], Loss::sparse_categorical_crossentropy());
        let loss_value = m.evaluate(&rows(&[&[1.0]]), &rows(&[&[2.0]]), None).unwrap().get("loss").unwrap();
        assert!(close(loss_value, 100.0), "tail {k}: {loss_value}");
        if k < 2 {
            // Training through them: the same step as without them.
            let mut m = with(&[3.0, -2.0], Loss::binary_crossentropy());
            let opts = FitOptions::default().batch_size(2).epochs(1).shuffle(false).verbose(Verbosity::Silent);
            m.fit(&x, &y, opts).unwrap();
            let kiln: Vec<f32> = m.get_weights().0.iter().flat_map(|t| t.values.iter().copied()).collect();
            let keras = [2.9513092041015625, -1.9538793563842773, -0.023752538487315178, 0.021570270881056786];
            for (g, e) in kiln.iter().zip(keras) {
                assert!(close(f64::from(*g), e), "tail {k}: {kiln:?} vs Keras {keras:?}");
            }
        }
    }
}
