//! `summary()` of the notebook's seven models against Keras' own output.

use kiln::prelude::*;

fn dense(units: usize, act: Activation) -> Dense {
    Dense::new(units).activation(act)
}

fn model(input: usize, layers: Vec<Box<dyn Layer>>) -> Sequential {
    let mut m = Sequential::new();
    layers.into_iter().for_each(|l| m.push(l));
    m.build(input).unwrap();
    m
}

fn keras(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras").join(name);
    std::fs::read_to_string(path).unwrap()
}

fn check(fixture: &str, m: &Sequential) {
    let ours = m.summary();
    assert_eq!(ours.trim_end(), keras(fixture).trim_end(), "{fixture}");
    insta::assert_snapshot!(fixture, ours);
}

#[test]
fn notebook_models_match_keras_summaries() {
    use Activation::*;
    check("summary_mnist_512.txt", &model(784, vec![Box::new(dense(512, Relu)), Box::new(dense(10, Softmax))]));
    check("summary_mnist_logreg.txt", &model(784, vec![Box::new(dense(10, Softmax))]));
    check(
        "summary_mnist_96x2.txt",
        &model(784, vec![Box::new(dense(96, Relu)), Box::new(dense(96, Relu)), Box::new(dense(10, Softmax))]),
    );
    for (fixture, width) in
        [("summary_imdb_original.txt", 16), ("summary_imdb_smaller.txt", 4), ("summary_imdb_larger.txt", 512)]
    {
        check(
            fixture,
            &model(
                10_000,
                vec![Box::new(dense(width, Relu)), Box::new(dense(width, Relu)), Box::new(dense(1, Sigmoid))],
            ),
        );
    }
    check(
        "summary_imdb_dropout.txt",
        &model(
            10_000,
            vec![
                Box::new(dense(16, Relu)),
                Box::new(Dropout::new(0.5)),
                Box::new(dense(16, Relu)),
                Box::new(Dropout::new(0.5)),
                Box::new(dense(1, Sigmoid)),
            ],
        ),
    );
}

/// Shaped models: Keras' tuple shapes, wrapped long names
/// (fixtures/keras/generate/make_summaries.py).
#[test]
fn shaped_models_match_keras_summaries() {
    use Activation::*;
    let shaped = |input: &[usize], layers: Vec<Box<dyn Layer>>| {
        let mut m = Sequential::new().input_shape(input.to_vec());
        layers.into_iter().for_each(|l| m.push(l));
        m.build(input.iter().product()).unwrap();
        m
    };
    check(
        "summary_mnist_convnet.txt",
        &shaped(
            &[28, 28, 1],
            vec![
                Box::new(Conv2D::new(32, [3, 3]).activation(Relu)),
                Box::new(MaxPooling2D::new([2, 2])),
                Box::new(Conv2D::new(64, [3, 3]).activation(Relu)),
                Box::new(MaxPooling2D::new([2, 2])),
                Box::new(Conv2D::new(128, [3, 3]).activation(Relu)),
                Box::new(Flatten::new()),
                Box::new(dense(10, Softmax)),
            ],
        ),
    );
    check(
        "summary_weather_conv1d.txt",
        &shaped(
            &[120, 10],
            vec![
                Box::new(Conv1D::new(8, 24).activation(Relu)),
                Box::new(MaxPooling1D::new(2)),
                Box::new(Conv1D::new(8, 12).activation(Relu)),
                Box::new(MaxPooling1D::new(2)),
                Box::new(Conv1D::new(8, 6).activation(Relu)),
                Box::new(GlobalAveragePooling1D::new()),
                Box::new(Dense::new(1)),
            ],
        ),
    );
    check(
        "summary_shapes.txt",
        &shaped(
            &[8, 8, 3],
            vec![
                Box::new(Conv2D::new(4, [3, 3]).strides([2, 2]).padding(Padding::Same)),
                Box::new(AveragePooling2D::new([3, 3]).strides([1, 1]).padding(Padding::Same)),
                Box::new(Reshape::new([-1, 4])),
                Box::new(Dense::new(5)),
                Box::new(Dropout::new(0.5)),
                Box::new(GlobalMaxPooling1D::new().keepdims(true)),
                Box::new(Flatten::new()),
            ],
        ),
    );
    check(
        "summary_normalized.txt",
        &shaped(
            &[6, 6, 2],
            vec![
                Box::new(Conv2D::new(4, [3, 3]).activation(Relu)),
                Box::new(BatchNormalization::new()),
                Box::new(Flatten::new()),
                Box::new(dense(10, Relu)),
                Box::new(BatchNormalization::new().center(false)),
                Box::new(LayerNormalization::new()),
                Box::new(dense(3, Softmax)),
            ],
        ),
    );
    check(
        "summary_sequences.txt",
        &shaped(
            &[10],
            vec![
                Box::new(Embedding::new(50, 8)),
                Box::new(LSTM::new(6).return_sequences(true)),
                Box::new(GRU::new(5).return_sequences(true)),
                Box::new(GRU::new(4).reset_after(false)),
                Box::new(Dense::new(3)),
            ],
        ),
    );
    check(
        "summary_simple_rnn.txt",
        &shaped(
            &[12, 3],
            vec![
                Box::new(SimpleRNN::new(7).return_sequences(true)),
                Box::new(Dense::new(2)),
                Box::new(SimpleRNN::new(4)),
            ],
        ),
    );
    check(
        "summary_pools.txt",
        &shaped(
            &[8, 8, 2],
            vec![
                Box::new(AveragePooling2D::new([2, 2])),
                Box::new(Conv2D::new(3, [1, 1])),
                Box::new(GlobalAveragePooling2D::new().keepdims(true)),
                Box::new(GlobalMaxPooling2D::new()),
                Box::new(Reshape::new([3, 1])),
                Box::new(AveragePooling1D::new(2).padding(Padding::Same)),
                Box::new(GlobalMaxPooling1D::new()),
            ],
        ),
    );
}

/// Functional models: their inputs as `InputLayer` rows and Keras' "Connected to" column
/// (fixtures from make_summaries.py, the models of the f1 and f3 traces), built in Rust
/// in an order other than Keras' to show that the rows follow Keras' depth order.
/// Keras' Normalization (adapted: mean, variance and an int64 count of 8 bytes; constant:
/// no weights) and frozen layers (their weights, a frozen BatchNormalization's γ and β
/// too, count as non-trainable).
#[test]
fn normalization_and_frozen_layers_match_keras_summaries() {
    check(
        "summary_normalization.txt",
        &model(
            6,
            vec![
                Box::new(Normalization::new()),
                Box::new(Dense::new(4)),
                Box::new(Normalization::new().with_stats(vec![0.5], vec![2.0])),
            ],
        ),
    );
    check(
        "summary_frozen.txt",
        &model(
            8,
            vec![
                Box::new(dense(16, Activation::Relu).trainable(false)),
                Box::new(BatchNormalization::new().trainable(false)),
                Box::new(dense(4, Activation::Relu)),
                Box::new(Dense::new(1)),
            ],
        ),
    );
}

#[test]
fn functional_models_match_keras_summaries() {
    use Activation::*;
    let mut g = Functional::new();
    let x = g.input([10]);
    let projection = g.apply(Dense::new(16).use_bias(false).name("projection"), x);
    let hidden = g.apply(dense(16, Relu).name("hidden"), x);
    let h = g.apply(dense(16, Relu), hidden);
    let sum = g.merge(Add::new(), &[h, projection]);
    let out = g.apply(dense(3, Softmax).name("head"), sum);
    check("summary_functional_residual.txt", &g.model(out).unwrap());

    let mut g = Functional::new();
    let a = g.named_input("input_a", [8]);
    let b = g.named_input("input_b", [5]);
    let db = g.apply(dense(6, Linear), b);
    let da = g.apply(dense(6, Linear).name("proj_a"), a);
    let diff = g.merge(Subtract::new(), &[da, db]);
    let prod = g.merge(Multiply::new(), &[da, db]);
    let joined = g.merge(Concatenate::new(), &[diff, prod]);
    let out = g.apply(dense(1, Linear).name("regression"), joined);
    check("summary_functional_two_inputs.txt", &g.model(out).unwrap());
}

/// After `fit`, Keras' summary counts the optimizer's variables: `iteration` (int64), the
/// learning rate unless a schedule gives it, and one float32 slot per trainable weight and
/// state (none for BatchNormalization's moving statistics).
#[test]
fn trained_models_count_their_optimizer_variables_as_keras_does() {
    use Activation::*;
    let x = Matrix::from_vec(4, 6, (0..24).map(|k| -1.0 + 2.0 * k as f32 / 23.0).collect()).unwrap();
    let y = Matrix::from_vec(4, 1, vec![0.0, 1.0, 2.0, 1.0]).unwrap();
    let schedule = LearningRateSchedule::ExponentialDecay {
        initial_learning_rate: 1e-3,
        decay_steps: 10.0,
        decay_rate: 0.9,
        staircase: false,
    };
    let optimizers = [
        ("summary_trained_rmsprop.txt", Optimizer::new(RMSprop::default(), 1e-3)),
        ("summary_trained_adam_schedule.txt", Optimizer::new(Adam::default().amsgrad(true), schedule)),
        ("summary_trained_sgd.txt", Optimizer::new(Sgd::default(), 1e-2)),
    ];
    for (fixture, optimizer) in optimizers {
        let mut m =
            model(6, vec![Box::new(dense(8, Relu)), Box::new(BatchNormalization::new()), Box::new(dense(3, Softmax))]);
        m.compile(optimizer, Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
        // Before the first step the optimizer is not built: no optimizer line.
        assert!(!m.summary().contains("Optimizer params"), "{fixture}");
        m.fit(&x, &y, FitOptions::default().epochs(1).batch_size(4).verbose(Verbosity::Silent)).unwrap();
        check(fixture, &m);
    }
}

/// Cells longer than their column are cut with "…" as `rich` does, and an unnamed input
/// after a named one is `input_layer` (Keras' `uniquify` counts only unnamed inputs).
#[test]
fn long_cells_are_cut_as_keras_cuts_them() {
    let mut g = Functional::new();
    let first = g.named_input("features", [4]);
    let second = g.input([4]);
    let normalized = g.apply(BatchNormalization::new(), first);
    let scaled = g.apply(LayerNormalization::new(), second);
    let joined = g.merge(Add::new(), &[normalized, scaled]);
    let out = g.apply(Dense::new(2).name("a_rather_long_layer_name"), joined);
    check("summary_functional_long_cells.txt", &g.model(out).unwrap());
}
