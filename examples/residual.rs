//! A residual block (Conv2D → BatchNormalization → Add) on the bundled MNIST digits, as a
//! Keras Functional model: `keras.Model(inputs, outputs)` built node by node, with the
//! block's input added back to its output.
//!
//! `cargo run --release -p kiln-examples --example residual`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let mnist = kiln::data::mnist(&Source::Bundled, Split::Train)?;

    let mut g = Functional::new();
    let inputs = g.input([28, 28, 1]);
    let x = g.apply(Conv2D::new(16, [3, 3]).padding(Padding::Same).activation(Activation::Relu), inputs);
    let y = g.apply(Conv2D::new(16, [3, 3]).padding(Padding::Same), x);
    let y = g.apply(BatchNormalization::new(), y);
    let x = g.merge(Add::new(), &[x, y]);
    let x = g.apply(MaxPooling2D::new([2, 2]), x);
    let x = g.apply(Flatten::new(), x);
    let outputs = g.apply(Dense::new(10).activation(Activation::Softmax), x);
    let mut model = g.model(outputs)?;

    model.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])?;
    let history =
        model.fit(&mnist.x, &mnist.y, FitOptions::default().epochs(1).batch_size(64).validation_split(0.2))?;
    println!("val_accuracy after one epoch: {:?}", history.get("val_accuracy"));
    println!("{}", model.summary());
    Ok(())
}
