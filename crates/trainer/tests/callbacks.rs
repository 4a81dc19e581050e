//! EarlyStopping, TerminateOnNaN and ModelCheckpoint.

mod common;

use common::{blobs, classifier};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_trainer::callbacks::{EarlyStopping, ModelCheckpoint, TerminateOnNaN};
use kiln_trainer::{FitOptions, Loss, NO_METRICS, Sequential, Verbosity};

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(Verbosity::Silent)
}

#[test]
fn early_stopping_stops_after_patience_and_restores_best() {
    let (x, y) = blobs(120, 11);
    let mut m = classifier(3);
    // Monitoring training loss with an impossible min_delta: no epoch after the first
    // counts as an improvement, so training stops after `patience` more epochs.
    let mut es = EarlyStopping::new("loss").patience(2).min_delta(10.0).restore_best_weights(true);
    let mut best = None;
    #[derive(Debug, Default)]
    struct Snap {
        first: Option<kiln_trainer::Weights>,
    }
    impl kiln_trainer::callbacks::Callback for Snap {
        fn on_epoch_end(
            &mut self,
            _e: usize,
            _l: &kiln_trainer::Logs,
            c: &mut kiln_trainer::callbacks::Control<'_>,
        ) -> Result<(), kiln_trainer::TrainError> {
            self.first.get_or_insert_with(|| c.model().get_weights());
            Ok(())
        }
    }
    let mut snap = Snap::default();
    let h = m.fit(&x, &y, quiet().epochs(20).callback(&mut snap).callback(&mut es)).unwrap();
    assert_eq!(h.epochs(), 3, "epoch 0 is best, epochs 1 and 2 exhaust patience 2");
    assert_eq!(es.stopped_epoch(), Some(2));
    assert_eq!(es.best_epoch(), Some(0));
    best.get_or_insert(snap.first.unwrap());
    assert_eq!(m.get_weights(), best.unwrap(), "weights restored to epoch 0's");
}

#[test]
fn early_stopping_on_accuracy_maximizes() {
    let (x, y) = blobs(200, 12);
    let mut m = classifier(4);
    let mut es = EarlyStopping::new("val_accuracy").patience(100);
    let h = m.fit(&x, &y, quiet().epochs(5).validation_split(0.2).callback(&mut es)).unwrap();
    let acc = h.get("val_accuracy").unwrap();
    let best = acc.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(acc[es.best_epoch().unwrap()], best);
}

#[test]
fn terminate_on_nan_stops_a_diverging_run() {
    let (x, y) = blobs(64, 13);
    let mut m = Sequential::new().add(kiln_layers::Dense::new(3));
    m.compile(Optimizer::new(RMSprop::default(), 1e30), Loss::MeanSquaredError, NO_METRICS).unwrap();
    let y3 = kiln_tensor::Matrix::from_vec(64, 3, y.as_slice().iter().flat_map(|&c| [c, c, c]).collect()).unwrap();
    let mut t = TerminateOnNaN::default();
    let h = m.fit(&x, &y3, quiet().epochs(50).batch_size(8).callback(&mut t)).unwrap();
    assert!(t.stopped_at_batch.is_some());
    assert!(h.epochs() < 50);
}

#[test]
fn model_checkpoint_saves_only_improvements() {
    let dir = std::env::temp_dir().join(format!("kiln-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (x, y) = blobs(100, 14);
    let mut m = classifier(5);
    let path = dir.join("best-{epoch:02}.safetensors").to_string_lossy().into_owned();
    let mut cb = ModelCheckpoint::new(path).save_best_only("loss").save_weights_only(true);
    let h = m.fit(&x, &y, quiet().epochs(4).callback(&mut cb)).unwrap();
    let loss = h.get("loss").unwrap();
    let mut best = f64::INFINITY;
    for (e, l) in loss.iter().enumerate() {
        let file = dir.join(format!("best-{:02}.safetensors", e + 1));
        assert_eq!(file.exists(), *l < best, "epoch {e}");
        best = best.min(*l);
    }
    let mut fresh = classifier(99);
    fresh.build(4).unwrap();
    let last = (1..=4).rev().map(|e| dir.join(format!("best-{e:02}.safetensors"))).find(|p| p.exists()).unwrap();
    fresh.load_weights(&last).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
