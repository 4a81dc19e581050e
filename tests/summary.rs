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
