//! A model of two inputs: IMDB reviews as multi-hot words, and beside them one number per
//! review (its count of distinct known words, scaled), joined by Concatenate — Keras'
//! `keras.Model([text, meta], outputs)`, fitted on the list `[text, meta]`.
//!
//! `cargo run --release -p kiln-examples --example two_inputs`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let imdb = kiln::data::imdb_multi_hot(&Source::Bundled, 10_000)?;
    let Features::Sparse(words) = &imdb.x else { unreachable!("multi-hot rows are sparse") };
    let distinct: Vec<f32> = (0..words.rows()).map(|i| words.row(i).0.len() as f32 / 100.0).collect();
    let meta = Matrix::from_vec(words.rows(), 1, distinct)?;

    let mut g = Functional::new();
    let text = g.named_input("text", [10_000]);
    let length = g.named_input("meta", [1]);
    let h = g.apply(Dense::new(16).activation(Activation::Relu), text);
    let m = g.apply(Dense::new(4).activation(Activation::Relu), length);
    let joined = g.merge(Concatenate::new(), &[h, m]);
    let outputs = g.apply(Dense::new(1).activation(Activation::Sigmoid), joined);
    let mut model = g.model(outputs)?;

    model.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    let inputs = [FeaturesRef::from(words), FeaturesRef::from(&meta)];
    let opts = FitOptions::default().epochs(4).batch_size(512).validation_split(0.2);
    let history = model.fit(FeaturesRef::list(&inputs), &imdb.y, opts)?;
    println!("val_accuracy per epoch: {:?}", history.get("val_accuracy").unwrap_or_default());
    println!("{}", model.summary());
    Ok(())
}
