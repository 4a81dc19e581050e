//! IMDB reviews as sequences of word ids, as `keras.datasets.imdb.load_data(num_words=10000)`
//! and `pad_sequences(maxlen=200)` give them, classified by Embedding → LSTM → Dense: the
//! recurrent model of *Deep Learning with Python*'s text chapter, on the 5,000 bundled
//! reviews (`Source::Auto` takes Keras' full `imdb.npz` when it is at hand).
//!
//! `cargo run --release -p kiln-examples --example text_lstm`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let (num_words, maxlen) = (10_000, 200);
    let imdb = kiln::data::imdb_sequences(&Source::Bundled, num_words, maxlen)?;

    let mut model = Sequential::new()
        .input_shape([maxlen])
        .add(Embedding::new(num_words, 32))
        .add(LSTM::new(32))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    let history = model.fit(&imdb.x, &imdb.y, FitOptions::default().epochs(2).batch_size(128).validation_split(0.2))?;
    println!("val_accuracy per epoch: {:?}", history.get("val_accuracy").unwrap_or_default());
    println!("{}", model.summary());
    Ok(())
}
