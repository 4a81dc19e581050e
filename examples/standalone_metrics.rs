//! Metrics and losses on their own: score a saved model's predictions with `Precision`,
//! `Recall`, `AUC` and the loss through Keras' `update_state` / `result` and
//! `loss(y_true, y_pred)`, and get the numbers `evaluate` reports.
//!
//! `cargo run --release -p kiln-examples --example standalone_metrics`

use kiln::prelude::*;

fn main() -> Result<(), kiln::Error> {
    let imdb = kiln::data::imdb_multi_hot(&Source::Bundled, 10_000)?;
    let metrics = [Metric::precision(), Metric::recall(), Metric::auc()];
    let mut model = Sequential::new()
        .seed(3)
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(RMSprop::default(), Loss::binary_crossentropy(), &metrics)?;
    model.fit(&imdb.x, &imdb.y, FitOptions::default().epochs(2).batch_size(512).verbose(Verbosity::Silent))?;

    // The predictions could come from anywhere: here, from the model saved and loaded.
    let dir = std::env::temp_dir().join(format!("kiln-standalone-metrics-{}", std::process::id()));
    model.save(&dir)?;
    let mut loaded = Sequential::load(&dir)?;
    std::fs::remove_dir_all(&dir).ok();
    let y_pred = loaded.predict(&imdb.x, 512)?;
    let logs = loaded.evaluate(&imdb.x, &imdb.y, 512)?;

    println!("{:<10} {:>12} {:>12}", "", "standalone", "evaluate");
    for metric in metrics {
        let name = metric.keras_name();
        let mut m = metric.standalone();
        m.update_state(&imdb.y, &y_pred, None)?;
        let from_evaluate = logs.get(name).expect("compiled metric");
        println!("{name:<10} {:>12.6} {:>12.6}", m.result(), from_evaluate);
        // Confusion counts are sums of ones: exact in any batching.
        assert_eq!(f64::from(m.result()), from_evaluate, "{name}");
    }
    let loss = Loss::binary_crossentropy().call(&imdb.y, &y_pred, None)?;
    let from_evaluate = logs.get("loss").expect("loss");
    println!("{:<10} {loss:>12.6} {from_evaluate:>12.6}", "loss");
    // evaluate takes the sigmoid's logits (Keras does too) and means per batch; the
    // standalone loss reads probabilities once: the same number to float32 rounding.
    assert!((f64::from(loss) - from_evaluate).abs() <= 1e-5 * from_evaluate.abs(), "{loss} vs {from_evaluate}");
    Ok(())
}
