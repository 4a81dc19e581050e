//! `fit`: the training loop, one screen long; the epoch itself is in `epoch.rs`.

use kiln_tensor::{Matrix, Rng};
use tracing::info_span;

use crate::callbacks::{BatchStats, Callback, Control, LoopState};
use crate::epoch::TrainBuffers;
use crate::evaluate::EvalBuffers;
use crate::fit_settings::FitSettings;
use crate::progress::Progress;
use crate::{FeaturesRef, FitOptions, History, Logs, Sequential, TrainError};

impl Sequential {
    /// Trains the model and returns its [`History`] (also kept as
    /// [`history`](Sequential::history), even when training stops with an error).
    ///
    /// Semantics are Keras': `validation_split` takes the last fraction before shuffling;
    /// the reported `loss` is the batch-size-weighted mean over the epoch of data loss plus
    /// every regularization penalty, each computed with the weights before that batch's
    /// update; `val_loss` includes the penalties too; dropout is off during validation.
    ///
    /// ```
    /// use kiln_layers::{Activation, Dense};
    /// use kiln_optimizers::{Optimizer, RMSprop};
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::{FitOptions, Loss, Metric, Sequential, Verbosity};
    ///
    /// let x = Matrix::from_rows(&[[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]).unwrap();
    /// let y = Matrix::from_rows(&[[1.0], [1.0], [0.0], [0.0]]).unwrap();
    /// let mut model = Sequential::new()
    ///     .add(Dense::new(8).activation(Activation::Tanh))
    ///     .add(Dense::new(1).activation(Activation::Sigmoid));
    /// model.compile(Optimizer::new(RMSprop::default(), 0.05), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    /// let history = model.fit(&x, &y, FitOptions::default().epochs(50).batch_size(4).verbose(Verbosity::Silent))?;
    /// let loss = history.get("loss").unwrap();
    /// assert!(loss.last() < loss.first());
    /// # Ok::<(), kiln_trainer::TrainError>(())
    /// ```
    pub fn fit<'x>(
        &mut self,
        x: impl Into<FeaturesRef<'x>>,
        y: &Matrix,
        opts: FitOptions<'_>,
    ) -> Result<History, TrainError> {
        let x = x.into();
        let _span = info_span!("fit", epochs = opts.epochs, batch_size = opts.batch_size).entered();
        let FitOptions {
            epochs,
            batch_size,
            validation,
            shuffle,
            reshuffle_each_epoch,
            seed,
            verbose,
            mut callbacks,
            sample_weight,
            class_weight,
            initial_epoch,
        } = opts;
        let plan = self.prepare_fit(x, y, batch_size, validation, sample_weight, class_weight.as_ref())?;
        self.history = Some(History::default());
        let mut bufs = TrainBuffers::new(self.layers.len(), plan.x, batch_size, self.nonzeros_only(plan.x));
        let mut val_bufs =
            plan.validation.as_ref().map_or_else(EvalBuffers::default, |v| self.eval_buffers_for(v.x, batch_size));
        let shuffle_seed = seed.unwrap_or(self.seed);
        let shuffle_rng = Rng::stream(shuffle_seed, "shuffle");
        let settings = FitSettings {
            batch_size,
            shuffle,
            reshuffle_each_epoch,
            shuffle_seed,
            train_rows: plan.train_rows,
            validation_rows: plan.validation.as_ref().map_or(0, |v| v.rows.len()),
            input_width: x.width(),
            target_width: y.cols(),
            sample_weight: sample_weight.is_some(),
            class_weight: class_weight.clone(),
        };
        let mut run = LoopState {
            epochs,
            settings,
            next_epoch: initial_epoch,
            before_draw: shuffle_rng.state(),
            shuffle: shuffle_rng,
            order_drawn: false,
            reuse_order: !reshuffle_each_epoch,
        };
        let mut progress = Progress::new(verbose, epochs);
        let mut epoch_logs = Logs::default();

        // Keras' `stop_training`, set by a callback, is read after each batch and each epoch.
        let mut stop = false;
        for cb in callbacks.iter_mut() {
            let mut ctl = Control::with_run(self, &mut run);
            cb.on_train_begin(&mut ctl)?;
            stop |= ctl.stop_requested();
        }
        // Keras' `initial_epoch`: epochs are numbered from 0 and run up to `epochs`; an
        // `initial_epoch` at or past `epochs` trains nothing. A callback may have moved
        // the start (`BackupAndRestore`).
        for epoch in run.next_epoch..epochs {
            let _epoch_span = info_span!("epoch", epoch = epoch + 1).entered();
            stop |= self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_epoch_begin(epoch, ctl))?;
            if !run.order_drawn || reshuffle_each_epoch {
                bufs.order.clear();
                bufs.order.extend(0..plan.train_rows);
                run.before_draw = run.shuffle.state();
                if shuffle {
                    run.shuffle.shuffle(&mut bufs.order);
                }
                run.order_drawn = true;
            }
            // Each epoch runs inside the pool of the model's current parallelism, which a
            // callback may change between epochs (the numbers do not depend on it).
            let par = self.par;
            let (tally, val, stopped) = par.install(|| {
                let (tally, stopped) =
                    self.run_epoch(&plan, epoch, batch_size, &mut bufs, &mut callbacks, &mut progress, stop)?;
                let val = match &plan.validation {
                    Some(held) => {
                        Some(self.evaluate_rows(held.x, held.y, held.weights, &held.rows, batch_size, &mut val_bufs)?)
                    }
                    None => None,
                };
                Ok::<_, TrainError>((tally, val, stopped))
            })?;
            stop |= stopped;
            epoch_logs.clear();
            tally.fill_logs(&mut epoch_logs, "");
            if let Some(val) = val {
                val.fill_logs(&mut epoch_logs, "val_");
            }
            run.next_epoch = epoch + 1;
            stop |= self.run_epoch_end(&mut callbacks, epoch, &mut epoch_logs, &mut run)?;
            progress.epoch_end(epoch, &epoch_logs);
            self.history.as_mut().expect("set above").push(&epoch_logs);
            if stop {
                break;
            }
        }
        self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_train_end(&epoch_logs, ctl))?;
        Ok(self.history.clone().expect("set above"))
    }

    /// Runs every callback's `on_epoch_end` in order; entries a callback adds to the logs
    /// are seen by the callbacks after it, then by the progress line and the history (which
    /// Keras runs last). Returns whether any asked to stop.
    fn run_epoch_end(
        &mut self,
        callbacks: &mut [&mut dyn Callback],
        epoch: usize,
        logs: &mut Logs,
        run: &mut LoopState,
    ) -> Result<bool, TrainError> {
        let mut stop = false;
        for cb in callbacks.iter_mut() {
            let mut ctl = Control::with_run(self, run);
            cb.on_epoch_end(epoch, logs, &mut ctl)?;
            stop |= ctl.stop_requested();
            for (key, value) in ctl.take_added_logs() {
                logs.set(&key, value);
            }
        }
        Ok(stop)
    }

    /// Runs `hook` on every callback; returns whether any asked to stop.
    pub(crate) fn run_callbacks(
        &mut self,
        callbacks: &mut [&mut dyn Callback],
        stats: Option<BatchStats>,
        mut hook: impl FnMut(&mut dyn Callback, &mut Control<'_>) -> Result<(), TrainError>,
    ) -> Result<bool, TrainError> {
        let mut stop = false;
        for cb in callbacks.iter_mut() {
            let mut ctl = Control::new(self, stats);
            hook(&mut **cb, &mut ctl)?;
            stop |= ctl.stop_requested();
        }
        Ok(stop)
    }
}
