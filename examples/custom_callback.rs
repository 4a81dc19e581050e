//! A callback of your own: it records the best validation accuracy and stops training
//! once it reaches a target — and because `fit` borrows callbacks, you read its state
//! afterwards.
//!
//! `cargo run --release -p kiln-examples --example custom_callback`

use kiln::prelude::*;
use kiln::trainer::TrainError;

/// Stops when `val_accuracy` reaches `target`; remembers the best epoch.
struct StopAtAccuracy {
    target: f64,
    best: Option<(usize, f64)>,
}

impl Callback for StopAtAccuracy {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let acc = logs.get("val_accuracy").ok_or_else(|| TrainError::Callback {
            callback: "StopAtAccuracy".into(),
            message: "needs validation data (no `val_accuracy` in the logs)".into(),
        })?;
        if self.best.is_none_or(|(_, b)| acc > b) {
            self.best = Some((epoch, acc));
        }
        if acc >= self.target {
            ctl.stop_training();
        }
        Ok(())
    }
}

fn main() -> Result<(), kiln::Error> {
    let mnist = kiln::data::mnist(&Source::Bundled, Split::Train)?;
    let mut model = Sequential::new()
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(
        Optimizer::new(RMSprop::default(), 1e-3),
        Loss::sparse_categorical_crossentropy(),
        [Metric::Accuracy],
    )?;
    let mut stop = StopAtAccuracy { target: 0.93, best: None };
    let opts = FitOptions::default().epochs(30).batch_size(128).validation_split(0.2).callback(&mut stop);
    let history = model.fit(&mnist.x, &mnist.y, opts)?;
    let (epoch, acc) = stop.best.expect("at least one epoch ran");
    println!("stopped after {} epochs; best val_accuracy {acc:.4} at epoch {}", history.epochs(), epoch + 1);
    Ok(())
}
