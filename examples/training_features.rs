//! Keras' training features on the bundled IMDB reviews: a warm-up-then-cosine learning
//! rate with AdamW and global gradient clipping, class weights, epoch-stateful
//! Precision/Recall/AUC, and the callbacks a long run wants (a CSV log, TensorBoard event
//! files and BackupAndRestore; `ReduceLrOnPlateau` needs a constant rate instead of a
//! schedule).
//!
//! `cargo run --release -p kiln-examples --example training_features`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let imdb = kiln::data::imdb_multi_hot(&Source::Bundled, 10_000)?;
    let out = std::env::temp_dir().join(format!("kiln-training-features-{}", std::process::id()));

    let mut model = Sequential::new()
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dropout::new(0.5))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    // 0 → 2e-3 over 10 steps, then cosine decay to 0.1 · 2e-3 over 40 steps (Keras' CosineDecay).
    let schedule = LearningRateSchedule::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 40.0,
        alpha: 0.1,
        warmup_target: Some(2e-3),
        warmup_steps: 10.0,
    };
    let optimizer = Optimizer::new(AdamW::default(), schedule).global_clipnorm(1.0);
    model.compile(
        optimizer,
        Loss::binary_crossentropy(),
        [Metric::Accuracy, Metric::precision(), Metric::recall(), Metric::auc()],
    )?;

    let mut csv = CsvLogger::new(out.join("log.csv"));
    let mut board = TensorBoard::new(out.join("tensorboard"));
    let mut backup = BackupAndRestore::new(out.join("backup"));
    let opts = FitOptions::default()
        .epochs(4)
        .batch_size(512)
        .validation_split(0.4)
        .class_weight([(0, 1.0), (1, 1.5)])
        .callback(&mut csv)
        .callback(&mut board)
        .callback(&mut backup);
    let history = model.fit(&imdb.x, &imdb.y, opts)?;
    for key in ["val_loss", "val_precision", "val_recall", "val_auc"] {
        println!("{key}: {:?}", history.get(key).unwrap_or_default());
    }
    println!("CSV log and TensorBoard files in {}", out.display());
    Ok(())
}
