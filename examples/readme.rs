//! The README's snippet, as a program: the notebook's L2-regularized IMDB model trained on
//! the bundled 5,000 real reviews (10,000-word multi-hot), then its summary.
//!
//! `cargo run --release -p kiln-examples --example readme`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let imdb = kiln::data::imdb_multi_hot(&Source::Bundled, 10_000)?;

    let mut model = Sequential::new()
        .add(Dense::new(16).activation(Activation::Relu).kernel_regularizer(L2::new(0.002)))
        .add(Dense::new(16).activation(Activation::Relu).kernel_regularizer(L2::new(0.002)))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    let history =
        model.fit(&imdb.x, &imdb.y, FitOptions::default().epochs(20).batch_size(512).validation_split(0.4))?;
    println!("{:?}", history.get("val_loss"));
    println!("{}", model.summary());
    Ok(())
}
