//! `evaluate` and `predict`, and the evaluation pass `fit` runs on validation data.

use kiln_tensor::Matrix;

use crate::features::{Batch, gather_targets, gather_weights};
use crate::mean::Mean;
use crate::metric_state::MetricState;
use crate::step::{for_each_weight_penalty, forward, logits_source, total_loss};
use crate::validation::{check_batch_size, check_data, check_inputs, check_weights};
use crate::{FeaturesRef, Logs, Sequential, TrainError};

/// Buffers of an evaluation pass, reused across epochs.
#[derive(Default)]
pub(crate) struct EvalBuffers {
    batch: Batch,
    targets: Matrix,
    /// The loss writes a gradient even when nobody reads it.
    unused_grad: Matrix,
    weights: Vec<f32>,
}

impl EvalBuffers {
    /// Buffers for batches of `batch_size` rows of `x`, whose dense rows hold their
    /// non-zero values alone when `nonzeros_only`.
    pub fn for_batches_of(x: FeaturesRef<'_>, batch_size: usize, nonzeros_only: bool) -> Self {
        Self { batch: Batch::for_batches_of(x, batch_size, nonzeros_only), ..Self::default() }
    }
}

/// The running loss and metrics of a pass.
pub(crate) struct Tally {
    pub loss: Mean,
    pub metrics: Vec<MetricState>,
}

impl Tally {
    /// Writes `loss` and every metric into `logs`, keys prefixed with `prefix`.
    pub fn fill_logs(&self, logs: &mut Logs, prefix: &str) {
        if prefix.is_empty() {
            logs.set("loss", self.loss.result() as f64);
            for m in &self.metrics {
                logs.set(&m.name, m.result() as f64);
            }
        } else {
            logs.set(&format!("{prefix}loss"), self.loss.result() as f64);
            for m in &self.metrics {
                logs.set(&format!("{prefix}{}", m.name), m.result() as f64);
            }
        }
    }
}

impl Sequential {
    /// Checks labels against the domain of each crossentropy metric (as its loss checks
    /// them), so a class id out of range is an error naming the metric, not a NaN.
    pub(crate) fn check_metric_labels(&self, y: &Matrix, out_w: usize) -> Result<(), TrainError> {
        for m in self.metrics() {
            if let Some(loss) = m.metric.label_loss() {
                loss.check_targets(y, out_w).map_err(|e| TrainError::Input(format!("metric `{}`: {e}", m.name)))?;
            }
        }
        Ok(())
    }

    /// Fresh running metrics for outputs of `out_w` and labels of `label_w` columns; an
    /// error names a metric those widths do not fit.
    pub(crate) fn metric_states(&self, out_w: usize, label_w: usize) -> Result<Vec<MetricState>, TrainError> {
        self.metrics()
            .iter()
            .map(|m| {
                let metric = m.metric.resolve(out_w, label_w);
                metric
                    .check_widths(out_w, label_w)
                    .map_err(|e| TrainError::Input(format!("metric `{}`: {e}", m.name)))?;
                Ok(MetricState::new(m.name.clone(), metric, m.weighted, out_w))
            })
            .collect()
    }

    /// Loss (with penalties) and metrics over `rows` of `x`, in batches, without dropout.
    pub(crate) fn evaluate_rows(
        &mut self,
        x: FeaturesRef<'_>,
        y: &Matrix,
        weights: Option<&[f32]>,
        rows: &[usize],
        batch_size: usize,
        bufs: &mut EvalBuffers,
    ) -> Result<Tally, TrainError> {
        let loss = self.loss().ok_or(TrainError::NotCompiled("evaluate"))?;
        self.check_output_rank()?;
        let out_w = self.output_width().ok_or(TrainError::NotBuilt("evaluate"))?;
        let mut tally = Tally { loss: Mean::default(), metrics: self.metric_states(out_w, y.cols())? };
        // The weights do not change while evaluating: their penalties are computed once.
        let mut penalties = Vec::new();
        for_each_weight_penalty(&self.layers, |p| penalties.push(p))?;
        for chunk in rows.chunks(batch_size) {
            let input = x.batch_input(chunk, &mut bufs.batch, self.par);
            gather_targets(y, chunk, &mut bufs.targets);
            let w = weights.map(|w| gather_weights(w, chunk, &mut bufs.weights));
            let wiring = &self.built.as_ref().expect("built").wiring;
            forward(&mut self.layers, wiring, input, false, self.par);
            let last = self.layers.last().expect("layers");
            let source = self.layers[logits_source(&self.layers, Some(wiring), false)].as_ref();
            let (data_loss, _) = loss.of_layer(last.as_ref(), source, &bufs.targets, w, &mut bufs.unused_grad);
            tally.metrics.iter_mut().for_each(|m| m.update_from_layer(last.as_ref(), source, &bufs.targets, w));
            tally.loss.add(total_loss(&self.layers, data_loss, Some(&penalties))?, chunk.len() as f32);
        }
        Ok(tally)
    }

    /// Loss and metrics on `x`, `y` (Keras `evaluate`), in batches of `batch_size`
    /// (`None`: Keras' default, [`DEFAULT_BATCH_SIZE`](crate::DEFAULT_BATCH_SIZE) = 32).
    pub fn evaluate<'x>(
        &mut self,
        x: impl Into<FeaturesRef<'x>>,
        y: &Matrix,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Logs, TrainError> {
        let (x, par, batch_size) = (x.into(), self.par, or_default(batch_size));
        par.install(|| self.evaluate_here(x, y, None, batch_size))
    }

    /// [`evaluate`](Sequential::evaluate) with one weight per row (Keras'
    /// `evaluate(sample_weight=…)`): each batch's loss is `Σ wᵢ·lossᵢ / batch size`, and the
    /// metrics are weighted means.
    pub fn evaluate_weighted<'x>(
        &mut self,
        x: impl Into<FeaturesRef<'x>>,
        y: &Matrix,
        sample_weight: &[f32],
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Logs, TrainError> {
        let (x, par, batch_size) = (x.into(), self.par, or_default(batch_size));
        par.install(|| self.evaluate_here(x, y, Some(sample_weight), batch_size))
    }

    fn evaluate_here(
        &mut self,
        x: FeaturesRef<'_>,
        y: &Matrix,
        weights: Option<&[f32]>,
        batch_size: usize,
    ) -> Result<Logs, TrainError> {
        let n = check_data(x, y, "evaluation")?;
        check_batch_size(batch_size)?;
        if let Some(w) = weights {
            check_weights(w, n, "evaluation")?;
        }
        self.ready_for(x, batch_size, "evaluation")?;
        let loss = self.loss().ok_or(TrainError::NotCompiled("evaluate"))?;
        self.check_output_rank()?;
        loss.check_targets(y, self.output_width().expect("built"))?;
        self.check_metric_labels(y, self.output_width().expect("built"))?;
        let rows: Vec<usize> = (0..n).collect();
        let tally = self.evaluate_rows(x, y, weights, &rows, batch_size, &mut self.eval_buffers_for(x, batch_size))?;
        let mut logs = Logs::default();
        tally.fill_logs(&mut logs, "");
        Ok(logs)
    }

    /// The model's outputs for `x` (inference mode: no dropout), in batches of `batch_size`
    /// (`None`: Keras' default, 32).
    pub fn predict<'x>(
        &mut self,
        x: impl Into<FeaturesRef<'x>>,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Matrix, TrainError> {
        let (x, par, batch_size) = (x.into(), self.par, or_default(batch_size));
        par.install(|| self.predict_here(x, batch_size))
    }

    fn predict_here(&mut self, x: FeaturesRef<'_>, batch_size: usize) -> Result<Matrix, TrainError> {
        check_inputs(x, "prediction")?;
        check_batch_size(batch_size)?;
        self.ready_for(x, batch_size, "prediction")?;
        let out_w = self.output_width().expect("built");
        let mut out = Matrix::zeros(x.len(), out_w);
        let mut batch = Batch::for_batches_of(x, batch_size, self.nonzeros_only(x));
        let rows: Vec<usize> = (0..x.len()).collect();
        for (c, chunk) in rows.chunks(batch_size).enumerate() {
            let input = x.batch_input(chunk, &mut batch, self.par);
            forward(&mut self.layers, &self.built.as_ref().expect("built").wiring, input, false, self.par);
            let y = self.layers.last().expect("layers").output();
            let start = c * batch_size * out_w;
            out.as_mut_slice()[start..start + y.as_slice().len()].copy_from_slice(y.as_slice());
        }
        Ok(out)
    }
}

/// Keras' batch size for `evaluate` and `predict` when none is given.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The batch size asked for, or Keras' default.
fn or_default(batch_size: impl Into<Option<usize>>) -> usize {
    batch_size.into().unwrap_or(DEFAULT_BATCH_SIZE)
}

#[cfg(test)]
mod tests {
    use kiln_layers::{Activation, Dense};
    use kiln_tensor::{Matrix, Parallelism, Rng};

    use crate::Sequential;
    use crate::features::{Batch, FeaturesRef};
    use crate::step::forward;

    /// Reading consecutive rows in place (at an unaligned offset) gives the layers the same
    /// bits as gathering a copy, so evaluation and prediction do not depend on which is used.
    #[test]
    fn consecutive_rows_in_place_match_a_gathered_copy() {
        let mut rng = Rng::seed_from_u64(3);
        let x = Matrix::from_vec(301, 37, (0..301 * 37).map(|_| rng.uniform() - 0.5).collect()).unwrap();
        let mut model = Sequential::new().add(Dense::new(130).activation(Activation::Relu)).add(Dense::new(5));
        model.build(37).unwrap();
        let rows: Vec<usize> = (1..=200).collect();
        let features = FeaturesRef::Dense(&x);

        let mut batch = Batch::default();
        features.gather(&rows, &mut batch, Parallelism::Sequential);
        let wiring = model.built.as_ref().unwrap().wiring.clone();
        forward(&mut model.layers, &wiring, batch.inputs(), false, Parallelism::Sequential);
        let gathered = model.layers.last().unwrap().output().clone();

        let mut unused = Batch::default();
        let input = features.batch_input(&rows, &mut unused, Parallelism::Sequential);
        forward(&mut model.layers, &wiring, input, false, Parallelism::Sequential);
        assert_eq!(unused.dense.rows(), 0, "consecutive rows must not be copied");
        let in_place = model.layers.last().unwrap().output();
        assert_eq!(in_place.shape(), (200, 5));
        let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(in_place), bits(&gathered));

        // Out of order, the rows are gathered.
        let shuffled = [5, 4, 6];
        let mut batch = Batch::default();
        features.batch_input(&shuffled, &mut batch, Parallelism::Sequential);
        assert_eq!(batch.dense.row(0), x.row(5));
    }
}
