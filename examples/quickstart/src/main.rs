//! kiln from crates.io: the bundled MNIST digits and IMDB reviews (embedded in the
//! `kiln-data` crate), one epoch of a small model on each.

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let mnist = kiln::data::mnist(&Source::Bundled, Split::Train)?;
    let mut digits = Sequential::new()
        .add(Dense::new(512).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    digits.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])?;
    let h = digits.fit(&mnist.x, &mnist.y, FitOptions::default().epochs(1).batch_size(128).validation_split(0.2))?;
    println!("mnist val_accuracy after 1 epoch: {:.3}", h.get("val_accuracy").unwrap()[0]);

    let imdb = kiln::data::imdb_multi_hot(&Source::Bundled, 10_000)?;
    let mut reviews = Sequential::new()
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    reviews.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    let h = reviews.fit(&imdb.x, &imdb.y, FitOptions::default().epochs(1).batch_size(512).validation_split(0.4))?;
    println!("imdb val_accuracy after 1 epoch: {:.3}", h.get("val_accuracy").unwrap()[0]);
    Ok(())
}
