//! Inverted dropout.

use kiln_tensor::{Matrix, Parallelism, Rng, RngState, Shape};
use serde::{Deserialize, Serialize};

use crate::{BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// Inverted dropout (Keras `layers.Dropout`): in training each value is kept with
/// probability `1 − rate` and scaled by `1/(1 − rate)`, else zeroed; at inference
/// (evaluation, prediction, validation inside `fit`) the layer is the identity.
///
/// The mask generator is ChaCha8 seeded from `seed` when given, else from the model's
/// initialisation stream, so runs with the same model seed are identical.
///
/// Keras: `keras/src/layers/regularization/dropout.py`.
///
/// # Shapes
/// - input: any sample shape, dense (or CSR rows for a flat input)
/// - output: the same shape
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dropout {
    #[serde(flatten)]
    core: LayerCore,
    /// Fraction of values to drop, in `[0, 1)` (a float64, as Keras' Python float).
    pub rate: f64,
    /// Seed of the mask generator.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(skip)]
    state: DropoutState,
}

#[derive(Debug, Clone, Default)]
struct DropoutState {
    width: usize,
    mask: Vec<f32>,
    rng: Option<Rng>,
    masked: bool,
    /// A keep mask (0/1 per value) to use instead of drawing one, for the next training
    /// forward only (`replay_mask`).
    replay: Option<Vec<f32>>,
}

impl Dropout {
    /// A dropout layer with the given rate.
    pub fn new(rate: f64) -> Self {
        Self { core: LayerCore::default(), rate, seed: None, state: DropoutState::default() }
    }

    /// Fixes the mask generator's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }

    /// The mask of the last training `forward` (0 or `1/(1−rate)` per value).
    pub fn mask(&self) -> &[f32] {
        &self.state.mask
    }
}

#[typetag::serde]
impl Layer for Dropout {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn reads_sparse(&self) -> bool {
        true
    }

    fn passes_input_through(&self, training: bool) -> bool {
        // Keras' `call`: `if training and self.rate > 0` drops, else `return inputs`.
        !(training && self.rate > 0.0)
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        Some((0, input.clone()))
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        let input_width = input.numel();
        if !(0.0..1.0).contains(&self.rate) {
            return Err(LayerError::Config {
                layer: self.core.name.clone(),
                message: format!("argument `rate` must be in [0, 1), received rate={}", self.rate),
            });
        }
        let seed = self.seed.unwrap_or_else(|| ctx.rng().next_u64());
        self.core.output = Matrix::zeros(0, input_width);
        self.state =
            DropoutState { width: input_width, rng: Some(Rng::seed_from_u64(seed)), ..DropoutState::default() };
        Ok(input.clone())
    }

    fn forward(&mut self, input: LayerInput<'_>, training: bool, _par: Parallelism) {
        let (s, output) = (&mut self.state, &mut self.core.output);
        let n = input.rows();
        output.resize(n, s.width);
        match input {
            LayerInput::Dense(x) => output.as_mut_slice().copy_from_slice(x.data),
            LayerInput::Sparse(x) => {
                output.fill(0.0);
                for i in 0..n {
                    let (ind, val) = x.row(i);
                    let row = output.row_mut(i);
                    ind.iter().zip(val).for_each(|(&j, &v)| row[j as usize] = v);
                }
            }
            LayerInput::Ids(_) => panic!("Dropout takes values, not token ids"),
        }
        s.masked = training && self.rate > 0.0;
        if !s.masked {
            return;
        }
        let rng = s.rng.as_mut().expect("Dropout used before build");
        // Keras (TF's stateless_dropout) computes the scale from the Python float and
        // rounds it once to float32: 1/(1 − 0.04) is 1.0416666, where float32 arithmetic
        // gives 1.0416667.
        let scale = (1.0 / (1.0 - self.rate)) as f32;
        s.mask.resize(n * s.width, 0.0);
        match s.replay.take() {
            Some(keep) if keep.len() == s.mask.len() => {
                s.mask.iter_mut().zip(&keep).for_each(|(m, &k)| *m = if k != 0.0 { scale } else { 0.0 });
            }
            _ => {
                for m in s.mask.iter_mut() {
                    *m = if f64::from(rng.uniform()) >= self.rate { scale } else { 0.0 };
                }
            }
        }
        output.as_mut_slice().iter_mut().zip(&s.mask).for_each(|(y, &m)| *y *= m);
    }

    fn replay_mask(&mut self, keep: &[f32]) -> Result<(), LayerError> {
        if self.state.rng.is_none() {
            return Err(LayerError::Config {
                layer: self.core.name.clone(),
                message: "is not built yet: it has no mask to replay".to_string(),
            });
        }
        if let Some(&bad) = keep.iter().find(|&&k| k != 0.0 && k != 1.0) {
            return Err(LayerError::Config {
                layer: self.core.name.clone(),
                message: format!("a replayed keep mask holds 0 or 1, not {bad}"),
            });
        }
        self.state.replay = Some(keep.to_vec());
        Ok(())
    }

    fn rng_state(&self) -> Option<RngState> {
        self.state.rng.as_ref().map(Rng::state)
    }

    fn set_rng_state(&mut self, state: &RngState) -> Result<(), LayerError> {
        match &mut self.state.rng {
            Some(rng) => {
                *rng = Rng::from_state(state);
                Ok(())
            }
            None => Err(LayerError::Config {
                layer: self.core.name.clone(),
                message: "is not built yet: its mask generator cannot be restored".to_string(),
            }),
        }
    }

    fn backward(
        &mut self,
        _input: LayerInput<'_>,
        grad: &mut Matrix,
        _grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        _par: Parallelism,
    ) {
        let Some(gi) = grad_input else { return };
        gi.resize(grad.rows(), grad.cols());
        gi.as_mut_slice().copy_from_slice(grad.as_slice());
        if self.state.masked {
            gi.as_mut_slice().iter_mut().zip(&self.state.mask).for_each(|(g, &m)| *g *= m);
        }
    }
}
