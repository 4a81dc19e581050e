//! `fit`, `evaluate` and `predict`.

use kiln_tensor::{Matrix, Rng};
use tracing::info_span;

use crate::callbacks::{BatchStats, Callback, Control};
use crate::features::{Batch, gather_targets};
use crate::mean::Mean;
use crate::metrics::MetricState;
use crate::progress::Progress;
use crate::step::{backward, forward, total_loss, total_loss_with, weight_penalties};
use crate::{Features, FitOptions, History, Logs, Sequential, TrainError, Validation};

/// Per-call buffers, allocated once and reused by every batch.
#[derive(Default)]
struct Buffers {
    batch: Batch,
    targets: Matrix,
    grads: Vec<Matrix>,
    order: Vec<usize>,
}

impl Sequential {
    /// Trains the model and returns its [`History`].
    ///
    /// Semantics are Keras': `validation_split` takes the last fraction before shuffling;
    /// the reported `loss` is the batch-size-weighted mean over the epoch of data loss plus
    /// every regularization penalty, each computed with the weights before that batch's
    /// update; `val_loss` includes the penalties too; dropout is off during validation.
    ///
    /// ```
    /// use kiln_layers::{Activation, Dense};
    /// use kiln_optimizers::RMSprop;
    /// use kiln_tensor::Matrix;
    /// use kiln_trainer::{FitOptions, Loss, Sequential, Verbosity};
    ///
    /// let x = Matrix::from_rows(&[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]).unwrap();
    /// let y = Matrix::from_rows(&[[0.0], [1.0], [1.0], [1.0]]).unwrap();
    /// let mut model = Sequential::new()
    ///     .add(Dense::new(8).activation(Activation::Relu))
    ///     .add(Dense::new(1).activation(Activation::Sigmoid));
    /// model.compile(RMSprop::new(0.05), Loss::BinaryCrossentropy, &["accuracy"]).unwrap();
    /// let opts = FitOptions::default().epochs(100).batch_size(4).verbose(Verbosity::Silent);
    /// let history = model.fit(&x.clone().into(), &y, opts).unwrap();
    /// assert_eq!(history.get("loss").unwrap().len(), 100);
    /// assert_eq!(*history.get("accuracy").unwrap().last().unwrap(), 1.0);
    /// ```
    pub fn fit(&mut self, x: &Features, y: &Matrix, opts: FitOptions) -> Result<History, TrainError> {
        self.fit_with_callbacks(x, y, opts, &mut [])
    }

    /// [`fit`](Sequential::fit) with extra callbacks that stay borrowed, so the caller can
    /// read their state afterwards (they run after those in `opts.callbacks`).
    pub fn fit_with_callbacks(
        &mut self,
        x: &Features,
        y: &Matrix,
        mut opts: FitOptions,
        extra: &mut [&mut dyn Callback],
    ) -> Result<History, TrainError> {
        let _span = info_span!("fit", epochs = opts.epochs, batch_size = opts.batch_size).entered();
        let n = check_data(x, y, "training")?;
        if opts.batch_size == 0 {
            return Err(TrainError::Input("batch_size must be at least 1".into()));
        }
        self.ensure_built(x.width())?;
        self.ensure_optimizer()?;
        self.bind_regularizers()?;
        let out_w = self.output_width().expect("built");
        let loss = self.compiled.as_ref().expect("compiled").loss;
        loss.check_targets(y, out_w)?;

        let (train_end, validation) = match &opts.validation {
            Validation::None => (n, None),
            Validation::Split(f) => {
                if !(*f > 0.0 && *f < 1.0) {
                    return Err(TrainError::Input(format!("validation_split must be in (0, 1), got {f}")));
                }
                let split_at = (n as f64 * (1.0 - f)).floor() as usize;
                if split_at == 0 || split_at == n {
                    return Err(TrainError::Input(format!(
                        "validation_split {f} of {n} samples leaves an empty training or validation set"
                    )));
                }
                (split_at, Some((x, y, (split_at..n).collect::<Vec<_>>())))
            }
            Validation::Data(xv, yv) => {
                let nv = check_data(xv, yv, "validation")?;
                if xv.width() != x.width() {
                    return Err(TrainError::Input(format!(
                        "validation data has {} features, training data {}",
                        xv.width(),
                        x.width()
                    )));
                }
                loss.check_targets(yv, out_w)?;
                (n, Some((xv, yv, (0..nv).collect())))
            }
        };

        let mut metrics = self.metric_states(out_w, y.cols());
        let mut history = History::default();
        let mut shuffle_rng = Rng::stream(opts.seed.unwrap_or(self.seed), "shuffle");
        let mut bufs = Buffers { grads: vec![Matrix::default(); self.layers.len()], ..Buffers::default() };
        x.reserve(opts.batch_size, &mut bufs.batch);
        let mut val_bufs = Buffers::default();
        let mut owned = std::mem::take(&mut opts.callbacks);
        let mut callbacks: Vec<&mut dyn Callback> = owned.iter_mut().map(|c| c.as_mut() as &mut dyn Callback).collect();
        callbacks.extend(extra.iter_mut().map(|c| &mut **c as &mut dyn Callback));
        for cb in callbacks.iter_mut() {
            cb.bind()?;
        }
        let wants_batches = callbacks.iter().any(|c| c.wants_batches());
        let mut progress = Progress::new(opts.verbose, opts.epochs);
        let steps = train_end.div_ceil(opts.batch_size);
        let mut epoch_logs = Logs::default();
        let mut batch_logs = Logs::default();

        // TensorFlow trains with flush-to-zero; so do we (speed, and Keras' numerics).
        let _ftz = kiln_tensor::FlushDenormals::new();
        self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_train_begin(ctl))?;
        for epoch in 0..opts.epochs {
            let _epoch_span = info_span!("epoch", epoch = epoch + 1).entered();
            let mut stop = self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_epoch_begin(epoch, ctl))?;
            progress.epoch_begin(epoch, steps);
            if epoch == 0 || opts.reshuffle_each_epoch {
                bufs.order.clear();
                bufs.order.extend(0..train_end);
                if opts.shuffle {
                    shuffle_rng.shuffle(&mut bufs.order);
                }
            }
            let mut loss_mean = Mean::default();
            metrics.iter_mut().for_each(|m| m.mean = Mean::default());
            for b in 0..steps {
                let idx = &bufs.order[b * opts.batch_size..((b + 1) * opts.batch_size).min(train_end)];
                if wants_batches {
                    stop |= self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_train_batch_begin(b, ctl))?;
                }
                x.gather(idx, &mut bufs.batch);
                gather_targets(y, idx, &mut bufs.targets);
                let stats = self.train_step(&bufs.batch, &bufs.targets, &mut bufs.grads, &mut metrics);
                loss_mean.add(stats.loss, stats.size as f32);
                fill_logs(&mut batch_logs, "", &loss_mean, &metrics);
                progress.batch_end(&batch_logs);
                if wants_batches {
                    stop |= self.run_callbacks(&mut callbacks, Some(stats), |cb, ctl| {
                        cb.on_train_batch_end(b, &batch_logs, ctl)
                    })?;
                }
                if stop {
                    break;
                }
            }
            epoch_logs.clear();
            fill_logs(&mut epoch_logs, "", &loss_mean, &metrics);
            if let Some((xv, yv, idx)) = &validation {
                let (vloss, vmetrics) =
                    self.evaluate_indices(xv, yv, idx, opts.batch_size, &mut val_bufs, loss, out_w)?;
                fill_logs(&mut epoch_logs, "val_", &vloss, &vmetrics);
            }
            progress.epoch_end(epoch, &epoch_logs);
            stop |= self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_epoch_end(epoch, &epoch_logs, ctl))?;
            history.push(&epoch_logs);
            if stop {
                break;
            }
        }
        self.run_callbacks(&mut callbacks, None, |cb, ctl| cb.on_train_end(&epoch_logs, ctl))?;
        Ok(history)
    }

    /// Runs `hook` on every callback; returns whether any asked to stop.
    fn run_callbacks(
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

    fn metric_states(&self, out_w: usize, label_w: usize) -> Vec<MetricState> {
        self.metrics()
            .iter()
            .map(|m| MetricState { name: m.name.clone(), kind: m.resolve(out_w, label_w), mean: Mean::default() })
            .collect()
    }

    /// One gradient step on a gathered batch.
    fn train_step(
        &mut self,
        batch: &Batch,
        targets: &Matrix,
        grads: &mut [Matrix],
        metrics: &mut [MetricState],
    ) -> BatchStats {
        let par = self.par;
        let compiled = self.compiled.as_mut().expect("compiled");
        let layers = &mut self.layers;
        forward(layers, batch.input(), true, par);
        let last = layers.last().expect("layers");
        let (data_loss, grad_of) =
            compiled.loss.of_layer(last.as_ref(), compiled.from_logits, targets, grads.last_mut().expect("grads"));
        metrics.iter_mut().for_each(|m| m.update(last.output(), targets));
        let loss = total_loss(layers, data_loss);
        backward(layers, batch.input(), grads, grad_of, par);
        let opt = &mut compiled.optimizer;
        let mut k = 0;
        for layer in layers.iter_mut() {
            layer.visit_params_mut(&mut |_, value, grad| {
                opt.update(k, value, grad);
                k += 1;
            });
        }
        opt.finish_step();
        BatchStats { size: targets.rows(), loss, data_loss }
    }

    /// Loss (with penalties) and metrics over rows `idx`, in batches, without dropout.
    #[allow(clippy::too_many_arguments)]
    fn evaluate_indices(
        &mut self,
        x: &Features,
        y: &Matrix,
        idx: &[usize],
        batch_size: usize,
        bufs: &mut Buffers,
        loss: crate::Loss,
        out_w: usize,
    ) -> Result<(Mean, Vec<MetricState>), TrainError> {
        let mut metrics = self.metric_states(out_w, y.cols());
        let from_logits = self.from_logits();
        let penalties = weight_penalties(&self.layers);
        let mut loss_mean = Mean::default();
        let mut grad = std::mem::take(&mut bufs.targets);
        let mut targets = Matrix::default();
        for chunk in idx.chunks(batch_size.max(1)) {
            x.gather(chunk, &mut bufs.batch);
            gather_targets(y, chunk, &mut targets);
            forward(&mut self.layers, bufs.batch.input(), false, self.par);
            let last = self.layers.last().expect("layers");
            let (data_loss, _) = loss.of_layer(last.as_ref(), from_logits, &targets, &mut grad);
            metrics.iter_mut().for_each(|m| m.update(last.output(), &targets));
            loss_mean.add(total_loss_with(&self.layers, data_loss, &penalties), chunk.len() as f32);
        }
        bufs.targets = grad;
        Ok((loss_mean, metrics))
    }

    /// Loss and metrics on `x`, `y` (Keras `evaluate`), in batches of `batch_size`.
    pub fn evaluate(&mut self, x: &Features, y: &Matrix, batch_size: usize) -> Result<Logs, TrainError> {
        let n = check_data(x, y, "evaluation")?;
        self.ensure_built(x.width())?;
        let loss = self.loss().ok_or_else(|| TrainError::State("compile the model before evaluate".into()))?;
        self.bind_regularizers()?;
        let out_w = self.output_width().expect("built");
        loss.check_targets(y, out_w)?;
        let idx: Vec<usize> = (0..n).collect();
        let (l, m) = self.evaluate_indices(x, y, &idx, batch_size, &mut Buffers::default(), loss, out_w)?;
        let mut logs = Logs::default();
        fill_logs(&mut logs, "", &l, &m);
        Ok(logs)
    }

    /// The model's outputs for `x` (inference mode: no dropout), in batches.
    pub fn predict(&mut self, x: &Features, batch_size: usize) -> Result<Matrix, TrainError> {
        if x.is_empty() {
            return Err(TrainError::Input("no samples to predict".into()));
        }
        self.ensure_built(x.width())?;
        self.bind_regularizers()?;
        let out_w = self.output_width().expect("built");
        let mut out = Matrix::zeros(x.len(), out_w);
        let mut batch = Batch::default();
        let idx: Vec<usize> = (0..x.len()).collect();
        for (c, chunk) in idx.chunks(batch_size.max(1)).enumerate() {
            x.gather(chunk, &mut batch);
            forward(&mut self.layers, batch.input(), false, self.par);
            let y = self.layers.last().expect("layers").output();
            let start = c * batch_size.max(1) * out_w;
            out.as_mut_slice()[start..start + y.as_slice().len()].copy_from_slice(y.as_slice());
        }
        Ok(out)
    }
}

/// Checks that inputs and labels agree and are not empty; returns the sample count.
fn check_data(x: &Features, y: &Matrix, what: &str) -> Result<usize, TrainError> {
    if x.len() != y.rows() {
        return Err(TrainError::Input(format!("{what} data has {} samples but {} labels", x.len(), y.rows())));
    }
    if x.is_empty() {
        return Err(TrainError::Input(format!("{what} data is empty")));
    }
    Ok(x.len())
}

/// Writes `loss` and every metric into `logs`, keys prefixed with `prefix`.
fn fill_logs(logs: &mut Logs, prefix: &str, loss: &Mean, metrics: &[MetricState]) {
    if prefix.is_empty() {
        logs.set("loss", loss.result() as f64);
        for m in metrics {
            logs.set(&m.name, m.mean.result() as f64);
        }
    } else {
        logs.set(&format!("{prefix}loss"), loss.result() as f64);
        for m in metrics {
            logs.set(&format!("{prefix}{}", m.name), m.mean.result() as f64);
        }
    }
}
