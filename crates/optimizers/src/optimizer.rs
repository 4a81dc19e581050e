//! The `Optimizer`: an update rule plus the state every rule shares.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rule::finite;
use crate::state::{MAX_SLOTS, SlotTable};
use crate::{LearningRate, Step, UpdateRule};

/// Gradient clipping before each update, as Keras' `BaseOptimizer` does it (at most one).
/// The limit is kept as given (a Python float in Keras); a limit that is not `> 0`
/// (zero, negative, NaN) clips nothing, as Keras' `if self.clipnorm and self.clipnorm > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Clip {
    /// No clipping.
    #[default]
    None,
    /// `clipnorm`: each parameter's gradient is scaled to an L2 norm of at most this,
    /// `g · c / max(‖g‖, c)` in float32 (NaN throughout when `‖g‖` is NaN, as
    /// `tf.clip_by_norm`).
    Norm(f64),
    /// `global_clipnorm`: all gradients are scaled together to a joint L2 norm of at most
    /// this, `g · c · min(1/‖G‖, 1/c)`, with `1/c` divided in float64 and rounded once.
    GlobalNorm(f64),
    /// `clipvalue`: each gradient value is clamped to `[−c, c]`.
    Value(f64),
}

impl Clip {
    /// Whether it clips anything: a limit `> 0` is set.
    pub fn is_active(self) -> bool {
        self.active_limit().is_some()
    }

    /// The limit, when it clips at all (`> 0`).
    fn active_limit(self) -> Option<f64> {
        match self {
            Clip::None => None,
            Clip::Norm(c) | Clip::GlobalNorm(c) | Clip::Value(c) => Some(c).filter(|&c| c > 0.0),
        }
    }
}

/// One named state buffer of one parameter (Keras' optimizer "variables").
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The parameter's name, e.g. `dense_1/kernel`.
    pub param: &'a str,
    /// The state's name in Keras' spelling: `velocity`, `momentum`, `average_gradient`.
    pub slot: &'static str,
    /// The state values, laid out like the parameter.
    pub values: &'a [f32],
}

/// An optimizer: an [`UpdateRule`] and the state all rules share — the learning rate,
/// the iteration count and the per-parameter slots (Keras' `BaseOptimizer`).
///
/// [`build`](Optimizer::build) it once with `(name, length)` of every parameter, then per
/// step [`update`](Optimizer::update) each parameter by its index and finally
/// [`finish_step`](Optimizer::finish_step). It serializes as its rule's config plus the
/// learning rate, `{"type": "RMSprop", "learning_rate": 0.001, "rho": 0.9, …}`; the state
/// is saved separately (`optimizer.safetensors`).
///
/// The learning rate is a constant held as `f32`, as Keras holds it in a float32 variable
/// (a rate changed by a callback rounds exactly as Keras' does), or a
/// [`LearningRateSchedule`](crate::LearningRateSchedule) evaluated at the iteration count
/// before each update. Each step then runs Keras' `BaseOptimizer.apply` order: clip the
/// gradients ([`Clip`]), decay the weights (`w ← w − w·wd·lr`, decoupled), update.
#[derive(Debug, Clone)]
pub struct Optimizer {
    learning_rate: LearningRate,
    rule: Box<dyn UpdateRule>,
    iterations: u64,
    state: SlotTable,
    clip: Clip,
    weight_decay: Option<f32>,
    /// Keras' `exclude_from_weight_decay(var_names=…)`: substrings of a parameter's own
    /// name (after its layer's `/`) that exempt it from weight decay.
    exclude_names: Vec<String>,
    /// Keras' `exclude_from_weight_decay(var_list=…)`: full parameter names (`layer/param`),
    /// kiln's handle on a variable.
    exclude_params: Vec<String>,
    /// This step's global-norm scale (`Clip::GlobalNorm`), set by `begin_step`.
    global_scale: f32,
}

impl Optimizer {
    /// `rule` with `learning_rate` (a number or a schedule), and the rule's default weight
    /// decay (none, or AdamW's 0.004).
    pub fn new(rule: impl UpdateRule + 'static, learning_rate: impl Into<LearningRate>) -> Self {
        Self::from_boxed(Box::new(rule), learning_rate)
    }

    /// A boxed rule with `learning_rate`.
    pub fn from_boxed(rule: Box<dyn UpdateRule>, learning_rate: impl Into<LearningRate>) -> Self {
        let weight_decay = rule.default_weight_decay().map(|w| w as f32);
        Self {
            learning_rate: learning_rate.into(),
            rule,
            iterations: 0,
            state: SlotTable::default(),
            clip: Clip::None,
            weight_decay,
            exclude_names: Vec::new(),
            exclude_params: Vec::new(),
            global_scale: 1.0,
        }
    }

    /// Clips each parameter's gradient to an L2 norm of at most `clipnorm` (Keras' `clipnorm`).
    pub fn clipnorm(mut self, clipnorm: f64) -> Self {
        self.clip = Clip::Norm(clipnorm);
        self
    }

    /// Clips all gradients together to a joint L2 norm of at most `norm` (Keras'
    /// `global_clipnorm`).
    pub fn global_clipnorm(mut self, norm: f64) -> Self {
        self.clip = Clip::GlobalNorm(norm);
        self
    }

    /// Clamps every gradient value to `[−clipvalue, clipvalue]` (Keras' `clipvalue`).
    pub fn clipvalue(mut self, clipvalue: f64) -> Self {
        self.clip = Clip::Value(clipvalue);
        self
    }

    /// Decoupled weight decay, `w ← w − w·wd·lr` before each update (Keras'
    /// `weight_decay`; `None` turns it off).
    pub fn weight_decay(mut self, weight_decay: impl Into<Option<f64>>) -> Self {
        self.weight_decay = weight_decay.into().map(|w| w as f32);
        self
    }

    /// Keras' `exclude_from_weight_decay(var_names=[…])`: a parameter whose own name (the
    /// part after its layer's `/`, Keras' `variable.name`, e.g. `bias`) contains any of
    /// `var_names` gets no weight decay. Keras joins them into a regular expression; kiln
    /// matches them literally, and [`validate`](Self::validate) refuses regex syntax.
    pub fn exclude_from_weight_decay<S: Into<String>>(mut self, var_names: impl IntoIterator<Item = S>) -> Self {
        self.exclude_names = var_names.into_iter().map(Into::into).collect();
        self
    }

    /// Keras' `exclude_from_weight_decay(var_list=[…])`: these parameters, by full name
    /// (`dense_1/kernel`), get no weight decay.
    pub fn exclude_params_from_weight_decay<S: Into<String>>(mut self, params: impl IntoIterator<Item = S>) -> Self {
        self.exclude_params = params.into_iter().map(Into::into).collect();
        self
    }

    /// Whether parameter `index` (as built) is decayed: Keras' `_use_weight_decay`.
    fn uses_weight_decay(&self, index: usize) -> bool {
        let Some(path) = self.state.names.get(index) else { return true };
        let name = path.rsplit('/').next().unwrap_or(path);
        !(self.exclude_params.iter().any(|p| p == path) || self.exclude_names.iter().any(|n| name.contains(n.as_str())))
    }

    /// The gradient clipping.
    pub fn clip(&self) -> Clip {
        self.clip
    }

    /// The weight decay, if any.
    pub fn weight_decay_value(&self) -> Option<f32> {
        self.weight_decay
    }

    /// The rule.
    pub fn rule(&self) -> &dyn UpdateRule {
        self.rule.as_ref()
    }

    /// The learning rate of the next step (a schedule evaluated at the iteration count).
    pub fn learning_rate(&self) -> f32 {
        match &self.learning_rate {
            LearningRate::Constant(lr) => *lr,
            LearningRate::Schedule(s) => s.at(self.iterations),
        }
    }

    /// The learning rate as configured: a constant or a schedule.
    pub fn learning_rate_config(&self) -> &LearningRate {
        &self.learning_rate
    }

    /// Replaces a constant learning rate (rounded to `f32`, as Keras' variable assignment
    /// does). A schedule cannot be set, as in Keras.
    pub fn set_learning_rate(&mut self, learning_rate: f64) -> Result<(), String> {
        finite("learning_rate", learning_rate)?;
        match self.learning_rate {
            LearningRate::Constant(_) => {
                self.learning_rate = LearningRate::Constant(learning_rate as f32);
                Ok(())
            }
            LearningRate::Schedule(ref s) => {
                Err(format!("this optimizer's learning rate is a {} schedule, hence not settable", s.class_name()))
            }
        }
    }

    /// Checks the learning rate, the clipping, the weight decay and the rule's
    /// hyperparameters (Keras-like messages naming the argument).
    pub fn validate(&self) -> Result<(), String> {
        // Keras takes any float rate (0 freezes the weights, a negative one climbs) and
        // any clipping limit (one not > 0 clips nothing); only what it cannot hold is refused.
        match &self.learning_rate {
            LearningRate::Constant(lr) => finite("learning_rate", *lr as f64)?,
            LearningRate::Schedule(s) => s.validate()?,
        }
        // An infinite limit would save as JSON `null` and reload as no clipping.
        match self.clip {
            Clip::Norm(c) if c.is_infinite() => finite("clipnorm", c)?,
            Clip::GlobalNorm(c) if c.is_infinite() => finite("global_clipnorm", c)?,
            Clip::Value(c) if c.is_infinite() => finite("clipvalue", c)?,
            _ => {}
        }
        if let Some(wd) = self.weight_decay {
            finite("weight_decay", wd as f64)?;
        }
        // kiln matches the names literally; a pattern Keras would read as a regex (`.`,
        // `*`, `|`, …) would match something else here, so it is refused.
        if let Some(n) =
            self.exclude_names.iter().find(|n| n.is_empty() || n.contains(|c: char| r".^$*+?()[]{}|\".contains(c)))
        {
            return Err(format!(
                "exclude_from_weight_decay: var_names entry {n:?} is empty or uses regular-expression syntax; kiln \
                 matches names literally (give the plain substring)"
            ));
        }
        // Keras' adamw.py: AdamW without a weight decay is refused ("Argument `weight_decay`
        // must be a float. Received: weight_decay=None"); it would be Adam under another name,
        // and kiln's config, which leaves an absent decay out, would reload it with 0.004.
        if self.weight_decay.is_none() && self.rule.default_weight_decay().is_some() {
            return Err("argument `weight_decay` must be a number for this optimizer (AdamW), received \
                        weight_decay=None; use Adam for no weight decay"
                .to_string());
        }
        self.rule.validate()
    }

    /// Allocates zeroed state for the given parameters, discarding any earlier state
    /// (the iteration count restarts at 0).
    pub fn build(&mut self, params: &[(String, usize)]) {
        self.state = SlotTable::build(params, self.rule.slot_names().len());
        self.iterations = 0;
    }

    /// The `layer/param` names the state was built for, in update order.
    pub fn param_names(&self) -> &[String] {
        &self.state.names
    }

    /// Whether [`build`](Optimizer::build) has run (state exists).
    pub fn is_built(&self) -> bool {
        self.state.built
    }

    /// Forgets the state, so the next `fit` builds it afresh (the model was rebuilt).
    pub fn reset(&mut self) {
        self.state = SlotTable::default();
        self.iterations = 0;
    }

    /// Starts a step given every gradient it will apply (in parameter order): computes the
    /// joint norm `Clip::GlobalNorm` needs. A no-op for the other clippings.
    pub fn begin_step<'g>(&mut self, grads: impl IntoIterator<Item = &'g [f32]>) {
        let (Clip::GlobalNorm(_), Some(c)) = (self.clip, self.clip.active_limit()) else { return };
        // Keras: sqrt(sum(stack([sum(square(g)) for g]))), all float32; `1.0 / clip_norm`
        // is a Python division, rounded to float32 when it meets the tensor.
        let squared: f32 = grads.into_iter().map(|g| g.iter().map(|v| v * v).sum::<f32>()).sum();
        let norm = squared.sqrt();
        let scale_for_finite = c as f32 * (1.0 / norm).min((1.0 / c) as f32);
        // NaN for a non-finite norm, as Keras' `scale + (norm − norm)` gives.
        self.global_scale = if norm.is_finite() { scale_for_finite } else { f32::NAN };
    }

    /// Clips `grad` as configured (after [`begin_step`](Optimizer::begin_step)).
    fn clip_gradient(&self, grad: &mut [f32]) {
        let Some(c) = self.clip.active_limit() else { return };
        let c = c as f32;
        match self.clip {
            Clip::None => {}
            Clip::Norm(_) => {
                // tf.clip_by_norm: √ of a positive sum, else the sum itself; TF's maximum
                // keeps a NaN norm (Rust's `max` would drop it), so NaN spreads to all.
                let l2sum: f32 = grad.iter().map(|v| v * v).sum();
                let norm = if l2sum > 0.0 { l2sum.sqrt() } else { l2sum };
                let denom = if norm.is_nan() { norm } else { norm.max(c) };
                grad.iter_mut().for_each(|g| *g = (*g * c) / denom);
            }
            Clip::GlobalNorm(_) => {
                let s = self.global_scale;
                grad.iter_mut().for_each(|g| *g *= s);
            }
            // `c > 0` here, so the bounds are ordered and `clamp` cannot panic.
            Clip::Value(_) => grad.iter_mut().for_each(|g| *g = g.clamp(-c, c)),
        }
    }

    /// Applies one update to parameter `index` given its gradient (clipped in place first).
    pub fn update(&mut self, index: usize, value: &mut [f32], grad: &mut [f32]) {
        self.update_parallel(index, value, grad, None, 1);
    }

    /// [`update`](Optimizer::update) split over `threads` (at most 32) threads of the
    /// current pool (`kiln_tensor::pool::for_each_part`; the rules are elementwise, so the
    /// result is the same bits). Small parameters are updated on this thread: below
    /// [`PARALLEL_MIN`] values, splitting costs more.
    /// Clipping and weight decay come first, on this thread, in Keras' order.
    ///
    /// `squares`, when given, stands in for `grad²` in the rule's mean of squares (see
    /// [`UpdateRule::update_with_squares`]): an Embedding's per-occurrence squares.
    pub fn update_parallel(
        &mut self,
        index: usize,
        value: &mut [f32],
        grad: &mut [f32],
        squares: Option<&[f32]>,
        threads: usize,
    ) {
        let learning_rate = self.learning_rate();
        self.clip_gradient(grad);
        if let Some(wd) = self.weight_decay
            && self.uses_weight_decay(index)
        {
            value.iter_mut().for_each(|w| *w -= (*w * wd) * learning_rate);
        }
        let grad: &[f32] = grad;
        let step = Step { learning_rate, iteration: self.iterations };
        let rule = self.rule.as_ref();
        let slots = self.state.get_mut(index, value.len());
        let n_slots = slots.len();
        let parts = if value.len() >= PARALLEL_MIN { threads.clamp(1, kiln_tensor::pool::MAX_BLOCKS) } else { 1 };
        if parts == 1 {
            let mut refs: [&mut [f32]; MAX_SLOTS] = Default::default();
            for (r, s) in refs.iter_mut().zip(slots.iter_mut()) {
                *r = s;
            }
            match squares {
                Some(sq) => rule.update_with_squares(step, value, grad, sq, &mut refs[..n_slots]),
                None => rule.update(step, value, grad, &mut refs[..n_slots]),
            }
            return;
        }
        let chunk = value.len().div_ceil(parts).next_multiple_of(16);
        let mut values = value.chunks_mut(chunk);
        let mut grads = grad.chunks(chunk);
        let mut square_chunks = squares.map(|sq| sq.chunks(chunk));
        // Each slot cut like the value (an array, not a `Vec`: a step allocates nothing).
        let mut slot_chunks: [std::slice::ChunksMut<'_, f32>; MAX_SLOTS] =
            std::array::from_fn(|_| <&mut [f32]>::default().chunks_mut(chunk));
        for (chunks, s) in slot_chunks.iter_mut().zip(slots.iter_mut()) {
            *chunks = s.chunks_mut(chunk);
        }
        let parts = std::iter::from_fn(|| {
            let (v, g) = (values.next()?, grads.next()?);
            let mut refs: [&mut [f32]; MAX_SLOTS] = Default::default();
            for (r, s) in refs.iter_mut().zip(&mut slot_chunks[..n_slots]) {
                *r = s.next().expect("slots as long as the value");
            }
            Some((v, g, square_chunks.as_mut().and_then(Iterator::next), refs))
        });
        kiln_tensor::pool::for_each_part(parts, |(v, g, sq, mut refs)| match sq {
            Some(sq) => rule.update_with_squares(step, v, g, sq, &mut refs[..n_slots]),
            None => rule.update(step, v, g, &mut refs[..n_slots]),
        });
    }

    /// Ends the step: advances the iteration counter.
    pub fn finish_step(&mut self) {
        self.iterations += 1;
    }

    /// Number of completed steps.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Sets the iteration counter (restoring a checkpoint).
    pub fn set_iterations(&mut self, iterations: u64) {
        self.iterations = iterations;
    }

    /// Every state buffer, for inspection, parity checks and checkpoints.
    pub fn slots(&self) -> Vec<Slot<'_>> {
        self.state.slots(self.rule.slot_names())
    }

    /// Overwrites the state buffer `slot` of parameter `index` (restoring a checkpoint).
    /// Returns false when no such buffer exists or the length differs.
    pub fn set_slot(&mut self, index: usize, slot: &str, values: &[f32]) -> bool {
        self.state.set(self.rule.slot_names(), index, slot, values)
    }
}

/// Parameters with fewer values are updated on one thread.
pub const PARALLEL_MIN: usize = 1 << 16;

impl<R: UpdateRule + 'static> From<R> for Optimizer {
    /// `rule` with Keras' default learning rate for it.
    fn from(rule: R) -> Self {
        let lr = rule.default_learning_rate();
        Self::new(rule, lr)
    }
}

/// The serialized form: the rule's tagged config with the learning rate (a number or a
/// schedule) and the options of Keras' `BaseOptimizer` beside it, under Keras' names.
#[derive(Serialize)]
struct ConfigOut<'a> {
    learning_rate: &'a LearningRate,
    #[serde(skip_serializing_if = "Option::is_none")]
    clipnorm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    global_clipnorm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clipvalue: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_decay: Option<f32>,
    /// kiln's own key (Keras' `get_config` does not save the exclusions).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    exclude_from_weight_decay: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    exclude_params_from_weight_decay: &'a [String],
    #[serde(flatten)]
    rule: &'a dyn UpdateRule,
}

#[derive(Deserialize)]
struct ConfigIn {
    #[serde(default)]
    learning_rate: Option<LearningRate>,
    #[serde(default)]
    clipnorm: Option<f64>,
    #[serde(default)]
    global_clipnorm: Option<f64>,
    #[serde(default)]
    clipvalue: Option<f64>,
    /// Absent: the rule's default (AdamW's 0.004); `null`: none.
    #[serde(default, deserialize_with = "present")]
    weight_decay: Option<Option<f64>>,
    #[serde(default)]
    exclude_from_weight_decay: Vec<String>,
    #[serde(default)]
    exclude_params_from_weight_decay: Vec<String>,
    #[serde(flatten)]
    rule: Box<dyn UpdateRule>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

impl Serialize for Optimizer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (clipnorm, global_clipnorm, clipvalue) = match self.clip {
            Clip::None => (None, None, None),
            Clip::Norm(v) => (Some(v), None, None),
            Clip::GlobalNorm(v) => (None, Some(v), None),
            Clip::Value(v) => (None, None, Some(v)),
        };
        ConfigOut {
            learning_rate: &self.learning_rate,
            clipnorm,
            global_clipnorm,
            clipvalue,
            weight_decay: self.weight_decay,
            exclude_from_weight_decay: &self.exclude_names,
            exclude_params_from_weight_decay: &self.exclude_params,
            rule: self.rule.as_ref(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Optimizer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let c = ConfigIn::deserialize(d)?;
        let lr = c.learning_rate.unwrap_or_else(|| LearningRate::from(c.rule.default_learning_rate()));
        let set = [c.clipnorm, c.global_clipnorm, c.clipvalue].iter().filter(|v| v.is_some()).count();
        if set > 1 {
            return Err(serde::de::Error::custom(
                "only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set",
            ));
        }
        let mut opt = Self::from_boxed(c.rule, lr);
        if let Some(v) = c.clipnorm {
            opt = opt.clipnorm(v);
        }
        if let Some(v) = c.global_clipnorm {
            opt = opt.global_clipnorm(v);
        }
        if let Some(v) = c.clipvalue {
            opt = opt.clipvalue(v);
        }
        if let Some(wd) = c.weight_decay {
            opt = opt.weight_decay(wd);
        }
        opt = opt.exclude_from_weight_decay(c.exclude_from_weight_decay);
        opt = opt.exclude_params_from_weight_decay(c.exclude_params_from_weight_decay);
        Ok(opt)
    }
}
