//! One forward/backward pass over the model's layers (a stack or a graph), with every
//! penalty of every layer.

use kiln_layers::{GradOf, Layer, LayerInput, penalties};
use kiln_regularizers::RegularizerError;
use kiln_tensor::{Matrix, Parallelism, View};

use crate::TrainError;
use crate::features::BatchInputs;
use crate::graph::Source;

/// Gradient buffers for one pass: one per layer output, plus scratch for activity terms
/// and for the second and later gradients sent to a layer read more than once.
#[derive(Debug, Default)]
pub(crate) struct Grads {
    pub per_layer: Vec<Matrix>,
    scratch: Matrix,
    fan_in: Matrix,
    /// Whether a layer's gradient has had its first contribution in this pass.
    filled: Vec<bool>,
}

impl Grads {
    /// Buffers for `layers` layers (sized by the first batch, then reused).
    pub fn new(layers: usize) -> Self {
        Self {
            per_layer: vec![Matrix::default(); layers],
            scratch: Matrix::default(),
            fan_in: Matrix::default(),
            filled: vec![false; layers],
        }
    }

    /// The gradient w.r.t. the last layer's output, which the loss writes.
    pub fn last(&mut self) -> &mut Matrix {
        self.per_layer.last_mut().expect("at least one layer")
    }
}

/// A regularizer error of `layer`'s `target` as a trainer error (built only on failure:
/// the happy path of a training step allocates nothing).
fn penalty_error<'a>(layer: &'a dyn Layer, target: &'a str) -> impl FnOnce(RegularizerError) -> TrainError + 'a {
    move |source| TrainError::Regularizer { layer: layer.name().to_string(), target: target.to_string(), source }
}

/// What `source` holds for the current batch: a model input, or an earlier layer's output.
fn read<'a>(earlier: &'a [Box<dyn Layer>], inputs: BatchInputs<'a>, source: Source) -> LayerInput<'a> {
    match source {
        Source::Input(k) => inputs.get(k),
        Source::Layer(j) => LayerInput::Dense(earlier[j].output().view()),
    }
}

/// [`read`] for a merge layer, which reads values only (`ready_for` refused the rest).
fn read_values<'a>(earlier: &'a [Box<dyn Layer>], inputs: BatchInputs<'a>, source: Source) -> View<'a> {
    match read(earlier, inputs, source) {
        LayerInput::Dense(v) => v,
        _ => unreachable!("ready_for refuses sparse rows and ids into a merge layer"),
    }
}

/// Runs every layer's `forward` in order, each fed what `wiring` says it reads.
pub(crate) fn forward(
    layers: &mut [Box<dyn Layer>],
    wiring: &[Vec<Source>],
    inputs: BatchInputs<'_>,
    training: bool,
    par: Parallelism,
) {
    for (i, sources) in wiring.iter().enumerate() {
        let (earlier, rest) = layers.split_at_mut(i);
        let earlier: &[Box<dyn Layer>] = earlier;
        let layer = &mut rest[0];
        match layer.as_merge_mut() {
            Some(merge) => merge.merge_forward(sources.len(), &|k| read_values(earlier, inputs, sources[k])),
            None => layer.forward(read(earlier, inputs, sources[0]), training, par),
        }
    }
}

/// The layer whose output the model's output is, through the layers that hand their
/// input back unchanged in a `forward` with `training` (Dropout at inference or at rate
/// 0, a linear Activation; `Layer::passes_input_through`): the one whose attached logits
/// Keras' crossentropy reads. The last layer when it computes. Without `wiring` (a model
/// not built yet) the layers are taken as a stack.
pub(crate) fn logits_source(layers: &[Box<dyn Layer>], wiring: Option<&[Vec<Source>]>, training: bool) -> usize {
    let mut i = layers.len() - 1;
    while layers[i].passes_input_through(training) {
        match wiring.map(|w| &w[i][..]) {
            Some(&[Source::Layer(j)]) => i = j,
            None if i > 0 => i -= 1,
            _ => break,
        }
    }
    i
}

/// Runs every layer's `backward` from the last, adding each layer's activity gradient
/// first and every parameter's penalty gradient after; `grads.per_layer[i]` is the
/// gradient w.r.t. layer `i`'s output, or w.r.t. its logits for layer `loss_of.0` when
/// `loss_of.1` says so (the loss's [`logits_source`]; the layers after it pass the
/// gradient back unchanged). A layer read by several others gets the sum of their
/// gradients: the first is written in place, later ones through scratch and added. A
/// layer reading a model input computes no input gradient.
pub(crate) fn backward(
    layers: &mut [Box<dyn Layer>],
    wiring: &[Vec<Source>],
    inputs: BatchInputs<'_>,
    grads: &mut Grads,
    loss_of: (usize, GradOf),
    par: Parallelism,
) -> Result<(), TrainError> {
    grads.filled.iter_mut().for_each(|f| *f = false);
    for i in (0..layers.len()).rev() {
        let (earlier, rest) = layers.split_at_mut(i);
        let earlier: &[Box<dyn Layer>] = earlier;
        let (gprev, grest) = grads.per_layer.split_at_mut(i);
        let of = if i == loss_of.0 { loss_of.1 } else { GradOf::Output };
        let layer = &mut rest[0];
        penalties::add_activity_grad(layer.as_ref(), &mut grest[0], of, &mut grads.scratch)
            .map_err(penalty_error(layer.as_ref(), "activity_regularizer"))?;
        let sources = &wiring[i];
        if let Some(merge) = layer.as_merge() {
            for (k, &source) in sources.iter().enumerate() {
                let Source::Layer(j) = source else { continue };
                let read = |k: usize| read_values(earlier, inputs, sources[k]);
                if grads.filled[j] {
                    merge.merge_backward(k, sources.len(), &read, &grest[0], &mut grads.fan_in);
                    add_into(&mut gprev[j], &grads.fan_in);
                } else {
                    merge.merge_backward(k, sources.len(), &read, &grest[0], &mut gprev[j]);
                    grads.filled[j] = true;
                }
            }
            continue;
        }
        let x = read(earlier, inputs, sources[0]);
        match sources[0] {
            // A model input's gradient is never needed: skip its product.
            Source::Input(_) => layer.backward(x, &mut grest[0], of, None, par),
            Source::Layer(j) if grads.filled[j] => {
                layer.backward(x, &mut grest[0], of, Some(&mut grads.fan_in), par);
                add_into(&mut gprev[j], &grads.fan_in);
            }
            Source::Layer(j) => {
                layer.backward(x, &mut grest[0], of, Some(&mut gprev[j]), par);
                grads.filled[j] = true;
            }
        }
    }
    for layer in layers.iter_mut() {
        if let Err(source) = penalties::add_weight_grads(layer.params_mut()) {
            return Err(TrainError::Regularizer { layer: layer.name().to_string(), target: "weights".into(), source });
        }
    }
    Ok(())
}

/// `total += more`, elementwise (a second consumer's gradient).
fn add_into(total: &mut Matrix, more: &Matrix) {
    total.as_mut_slice().iter_mut().zip(more.as_slice()).for_each(|(t, m)| *t += m);
}

/// Calls `f` with every weight penalty of the model, in parameter order.
pub(crate) fn for_each_weight_penalty(layers: &[Box<dyn Layer>], mut f: impl FnMut(f32)) -> Result<(), TrainError> {
    for l in layers {
        penalties::weight_penalties(l.params(), &mut f).map_err(penalty_error(l.as_ref(), "weights"))?;
    }
    Ok(())
}

/// Data loss plus every penalty, in Keras' order: activity terms of all layers first,
/// then weight penalties in parameter order (computed now, or given when the weights do
/// not change between batches, as while evaluating: the same terms in the same order,
/// so the sum rounds identically).
pub(crate) fn total_loss(
    layers: &[Box<dyn Layer>],
    data_loss: f32,
    weight_penalties: Option<&[f32]>,
) -> Result<f32, TrainError> {
    let mut total = data_loss;
    for l in layers {
        let p = penalties::activity_penalty(l.as_ref()).map_err(penalty_error(l.as_ref(), "activity_regularizer"))?;
        if p != 0.0 {
            total += p;
        }
    }
    match weight_penalties {
        Some(given) => Ok(given.iter().fold(total, |t, p| t + p)),
        None => {
            for_each_weight_penalty(layers, |p| total += p)?;
            Ok(total)
        }
    }
}
