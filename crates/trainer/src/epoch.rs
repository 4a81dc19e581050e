//! One training epoch: batches gathered, stepped and reported.

use kiln_tensor::Matrix;

use crate::callbacks::{BatchStats, Callback};
use crate::evaluate::Tally;
use crate::features::{Batch, gather_targets, gather_weights};
use crate::mean::Mean;
use crate::metric_state::MetricState;
use crate::progress::Progress;
use crate::step::{Grads, backward, forward, logits_source, total_loss};
use crate::validation::Plan;
use crate::{FeaturesRef, Logs, Sequential, TrainError};

/// Per-`fit` buffers, allocated once and reused by every batch.
pub(crate) struct TrainBuffers {
    batch: Batch,
    targets: Matrix,
    grads: Grads,
    /// The training rows in this epoch's order.
    pub order: Vec<usize>,
    batch_logs: Logs,
    weights: Vec<f32>,
}

impl TrainBuffers {
    /// Buffers for a model of `layers` layers trained on `x` in batches of `batch_size`,
    /// gathering dense rows as their non-zero values when `nonzeros_only`.
    pub fn new(layers: usize, x: FeaturesRef<'_>, batch_size: usize, nonzeros_only: bool) -> Self {
        let mut batch = Batch::new(nonzeros_only);
        x.reserve(batch_size, &mut batch);
        Self {
            batch,
            targets: Matrix::default(),
            grads: Grads::new(layers),
            order: Vec::new(),
            batch_logs: Logs::default(),
            weights: Vec::new(),
        }
    }
}

impl Sequential {
    /// Trains one epoch over `bufs.order`; returns its running loss and metrics, and
    /// whether a callback asked to stop. `stop` is a request made before the epoch (in
    /// `on_train_begin` or `on_epoch_begin`): Keras reads `stop_training` only after each
    /// batch, so one batch still runs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_epoch(
        &mut self,
        plan: &Plan<'_>,
        epoch: usize,
        batch_size: usize,
        bufs: &mut TrainBuffers,
        callbacks: &mut [&mut dyn Callback],
        progress: &mut Progress,
        mut stop: bool,
    ) -> Result<(Tally, bool), TrainError> {
        let out_w = self.output_width().expect("built");
        let mut tally = Tally { loss: Mean::default(), metrics: self.metric_states(out_w, plan.y.cols())? };
        let steps = plan.train_rows.div_ceil(batch_size);
        progress.epoch_begin(epoch, steps);
        for b in 0..steps {
            let idx = &bufs.order[b * batch_size..((b + 1) * batch_size).min(plan.train_rows)];
            // Every callback's batch hooks run, as Keras calls them: one that does nothing
            // there costs a call.
            stop |= self.run_callbacks(callbacks, None, |cb, ctl| cb.on_train_batch_begin(b, ctl))?;
            plan.x.gather(idx, &mut bufs.batch, self.par);
            gather_targets(plan.y, idx, &mut bufs.targets);
            let w = plan.weights.as_deref().map(|w| gather_weights(w, idx, &mut bufs.weights));
            let stats = self.train_step(&bufs.batch, &bufs.targets, w, &mut bufs.grads, &mut tally.metrics)?;
            tally.loss.add(stats.loss, stats.size as f32);
            tally.fill_logs(&mut bufs.batch_logs, "");
            progress.batch_end(&bufs.batch_logs);
            let logs = &bufs.batch_logs;
            stop |= self.run_callbacks(callbacks, Some(stats), |cb, ctl| cb.on_train_batch_end(b, logs, ctl))?;
            if stop {
                break;
            }
        }
        Ok((tally, stop))
    }

    /// One gradient step on a gathered batch: forward, loss, penalties, backward, update.
    /// A failing regularizer stops the step before any weight changes.
    fn train_step(
        &mut self,
        batch: &Batch,
        targets: &Matrix,
        weights: Option<&[f32]>,
        grads: &mut Grads,
        metrics: &mut [MetricState],
    ) -> Result<BatchStats, TrainError> {
        let par = self.par;
        let compiled = self.compiled.as_mut().expect("compiled");
        let layers = &mut self.layers;
        let wiring = &self.built.as_ref().expect("built").wiring;
        forward(layers, wiring, batch.inputs(), true, par);
        let (last, src) = (layers.last().expect("layers"), logits_source(layers, Some(wiring), true));
        let source = layers[src].as_ref();
        let (data_loss, grad_of) = compiled.loss.of_layer(last.as_ref(), source, targets, weights, grads.last());
        metrics.iter_mut().for_each(|m| m.update_from_layer(last.as_ref(), source, targets, weights));
        let loss = total_loss(layers, data_loss, None)?;
        backward(layers, wiring, batch.inputs(), grads, (src, grad_of), par)?;
        let (opt, threads) = (&mut compiled.optimizer, par.thread_count());
        // The optimizer, clipping and weight decay see the trainable parameters only.
        opt.begin_step(layers.iter().flat_map(|l| l.params().iter().filter(|p| p.is_trainable()).map(|p| p.grad())));
        let mut k = 0;
        for layer in layers.iter_mut() {
            for p in layer.params_mut().iter_mut().filter(|p| p.is_trainable()) {
                let (value, grad, squares) = p.step_parts();
                opt.update_parallel(k, value, grad, squares, threads);
                k += 1;
            }
        }
        opt.finish_step();
        Ok(BatchStats { size: targets.rows(), loss, data_loss })
    }
}
