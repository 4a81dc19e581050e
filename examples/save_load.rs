//! Train, save, load, predict: the loaded model predicts exactly what the trained one did,
//! and keeps training from the saved optimizer state.
//!
//! `cargo run --release -p kiln-examples --example save_load`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let mnist = kiln::data::mnist(&Source::Bundled, Split::Train)?;
    let mut model = Sequential::new()
        .seed(7)
        .add(Dense::new(64).activation(Activation::Relu))
        .add(Dropout::new(0.2))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])?;
    model.fit(&mnist.x, &mnist.y, FitOptions::default().epochs(2).batch_size(128).verbose(Verbosity::EpochLine))?;

    let dir = std::env::temp_dir().join(format!("kiln-save-load-{}", std::process::id()));
    model.save(&dir)?;
    let mut loaded = Sequential::load(&dir)?;
    let (before, after) = (model.predict(&mnist.x, 256)?, loaded.predict(&mnist.x, 256)?);
    assert_eq!(before, after, "a loaded model predicts bit for bit what was saved");
    println!("saved to {}; {} predictions identical after loading", dir.display(), after.rows());
    println!("optimizer resumes at iteration {}", loaded.optimizer().expect("compiled").iterations());
    let logs = loaded.evaluate(&mnist.x, &mnist.y, 256)?;
    println!("evaluate: {logs}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
