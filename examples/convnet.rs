//! The Keras MNIST convnet of *Deep Learning with Python*, chapter 8, in kiln: images as
//! `[28, 28, 1]` samples, convolution and pooling, one epoch on the bundled digits.
//!
//! `cargo run --release -p kiln-examples --example convnet`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let mnist = kiln::data::mnist(&Source::Bundled, Split::Train)?;

    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .add(Conv2D::new(32, [3, 3]).activation(Activation::Relu))
        .add(MaxPooling2D::new([2, 2]))
        .add(Conv2D::new(64, [3, 3]).activation(Activation::Relu))
        .add(MaxPooling2D::new([2, 2]))
        .add(Conv2D::new(128, [3, 3]).activation(Activation::Relu))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])?;
    let history =
        model.fit(&mnist.x, &mnist.y, FitOptions::default().epochs(1).batch_size(64).validation_split(0.2))?;
    println!("val_accuracy after one epoch: {:?}", history.get("val_accuracy"));
    println!("{}", model.summary());
    Ok(())
}
