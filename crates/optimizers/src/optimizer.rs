//! The `Optimizer`: an update rule plus the state every rule shares.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rule::positive;
use crate::state::{MAX_SLOTS, SlotTable};
use crate::{Step, UpdateRule};

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
/// The learning rate is held as `f32`, as Keras holds it in a float32 variable: a rate
/// changed by a callback rounds exactly as Keras' does.
#[derive(Debug, Clone)]
pub struct Optimizer {
    learning_rate: f32,
    rule: Box<dyn UpdateRule>,
    iterations: u64,
    state: SlotTable,
}

impl Optimizer {
    /// `rule` with `learning_rate`.
    pub fn new(rule: impl UpdateRule + 'static, learning_rate: f64) -> Self {
        Self::from_boxed(Box::new(rule), learning_rate)
    }

    /// A boxed rule with `learning_rate`.
    pub fn from_boxed(rule: Box<dyn UpdateRule>, learning_rate: f64) -> Self {
        Self { learning_rate: learning_rate as f32, rule, iterations: 0, state: SlotTable::default() }
    }

    /// The rule.
    pub fn rule(&self) -> &dyn UpdateRule {
        self.rule.as_ref()
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    /// Replaces the learning rate (rounded to `f32`, as Keras' variable assignment does).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate as f32;
    }

    /// Checks the learning rate and the rule's hyperparameters.
    pub fn validate(&self) -> Result<(), String> {
        positive("learning_rate", self.learning_rate as f64)?;
        self.rule.validate()
    }

    /// Allocates zeroed state for the given parameters, discarding any earlier state
    /// (the iteration count restarts at 0).
    pub fn build(&mut self, params: &[(String, usize)]) {
        self.state = SlotTable::build(params, self.rule.slot_names().len());
        self.iterations = 0;
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

    /// Applies one update to parameter `index` given its gradient.
    pub fn update(&mut self, index: usize, value: &mut [f32], grad: &[f32]) {
        self.update_parallel(index, value, grad, 1);
    }

    /// [`update`](Optimizer::update) split over `threads` threads of the current rayon
    /// pool (the rules are elementwise, so the result is the same bits). Small parameters
    /// are updated on this thread: below [`PARALLEL_MIN`] values, splitting costs more.
    pub fn update_parallel(&mut self, index: usize, value: &mut [f32], grad: &[f32], threads: usize) {
        let step = Step { learning_rate: self.learning_rate, iteration: self.iterations };
        let rule = self.rule.as_ref();
        let slots = self.state.get_mut(index, value.len());
        let n_slots = slots.len();
        let parts = if value.len() >= PARALLEL_MIN { threads.max(1) } else { 1 };
        if parts == 1 {
            let mut refs: [&mut [f32]; MAX_SLOTS] = Default::default();
            for (r, s) in refs.iter_mut().zip(slots.iter_mut()) {
                *r = s;
            }
            rule.update(step, value, grad, &mut refs[..n_slots]);
            return;
        }
        let chunk = value.len().div_ceil(parts).next_multiple_of(16);
        let mut values = value.chunks_mut(chunk);
        let mut grads = grad.chunks(chunk);
        let mut slot_chunks: Vec<std::slice::ChunksMut<'_, f32>> =
            slots.iter_mut().map(|s| s.chunks_mut(chunk)).collect();
        rayon::scope(|scope| {
            while let (Some(v), Some(g)) = (values.next(), grads.next()) {
                let mut refs: [&mut [f32]; MAX_SLOTS] = Default::default();
                for (r, s) in refs.iter_mut().zip(slot_chunks.iter_mut()) {
                    *r = s.next().expect("slots as long as the value");
                }
                scope.spawn(move |_| rule.update(step, v, g, &mut refs[..n_slots]));
            }
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

/// The serialized form: the rule's tagged config with the learning rate beside it.
#[derive(Serialize)]
struct ConfigOut<'a> {
    learning_rate: f32,
    #[serde(flatten)]
    rule: &'a dyn UpdateRule,
}

#[derive(Deserialize)]
struct ConfigIn {
    #[serde(default)]
    learning_rate: Option<f64>,
    #[serde(flatten)]
    rule: Box<dyn UpdateRule>,
}

impl Serialize for Optimizer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ConfigOut { learning_rate: self.learning_rate, rule: self.rule.as_ref() }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Optimizer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let c = ConfigIn::deserialize(d)?;
        let lr = c.learning_rate.unwrap_or_else(|| c.rule.default_learning_rate());
        Ok(Self::from_boxed(c.rule, lr))
    }
}
