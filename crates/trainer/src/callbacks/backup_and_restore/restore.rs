//! Restoring a backup all or nothing: every file is read and checked into staged copies
//! of the model's parts, which then replace the model's in one step.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_fs::read_regular;
use kiln_layers::Layer;
use kiln_optimizers::{LearningRate, Optimizer};
use kiln_tensor::RngState;
use serde::{Deserialize, Serialize};

use super::marker::{LEFT_AS_IS, MARKER, Marker, ModelIdentity};
use crate::callbacks::Control;
use crate::fit_settings::FitSettings;
use crate::sequential::set_layer_weights;
use crate::{Sequential, TrainError};

/// The state file's name.
pub(super) const STATE: &str = "training_state.json";
/// Version of `training_state.json`.
pub(super) const STATE_VERSION: u32 = 1;
/// `training_state.json` is small; anything larger is not one.
const MAX_STATE_BYTES: u64 = 1 << 20;

/// `training_state.json`: what the weight files do not hold.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrainingState {
    pub format_version: u32,
    /// The next epoch to run (Keras' `epoch` in `training_metadata.json`).
    pub epoch: usize,
    /// The constant learning rate (absent for a schedule, which the iteration count drives).
    pub learning_rate: Option<f32>,
    /// The shuffle generator's position for the next epoch's order.
    pub shuffle: RngState,
    /// Each random layer's generator, by layer name.
    pub layers: BTreeMap<String, RngState>,
}

/// A backup read and checked whole, not yet applied.
pub(super) struct Staged {
    /// The epoch to continue at.
    pub epoch: usize,
    shuffle: RngState,
    layers: Vec<Box<dyn Layer>>,
    optimizer: Optimizer,
    /// The backup's marker.
    pub marker: Marker,
}

/// What the running `fit` is: the model's identity, its epoch count and settings.
pub(super) struct Running<'a> {
    pub identity: &'a ModelIdentity,
    pub epochs: usize,
    pub settings: &'a FitSettings,
}

/// Reads and checks the whole backup in `dir` against `model` and the running `fit`; the
/// model is not changed. Errors name the file and the field.
pub(super) fn stage(dir: &Path, model: &Sequential, running: &Running<'_>) -> Result<Staged, TrainError> {
    let marker_path = dir.join(MARKER);
    let marker = Marker::read(&marker_path)?;
    marker.check_matches(&marker_path, running.identity, running.settings)?;

    let path = dir.join(STATE);
    let bytes = read_regular(&path, MAX_STATE_BYTES)?;
    let state: TrainingState = serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::file(&path, format!("not a kiln training state: {e}; {LEFT_AS_IS}")))?;
    if state.format_version != STATE_VERSION {
        return Err(TrainError::file(
            &path,
            format!("format_version {} is not {STATE_VERSION}, the one this kiln reads", state.format_version),
        ));
    }
    check_epoch(&path, &state, &marker, running.epochs)?;
    check_layer_generators(model, &state.layers, &path)?;

    let weights_path = dir.join("model.safetensors");
    let weights = model.checked_weights(&read_regular(&weights_path, 4 << 30)?, &weights_path)?;
    let optimizer_path = dir.join("optimizer.safetensors");
    let mut optimizer = model.checked_optimizer_state(&optimizer_path)?;
    check_iterations(&optimizer_path, optimizer.iterations(), &state, &marker)?;
    match (optimizer.learning_rate_config(), state.learning_rate) {
        (LearningRate::Constant(_), Some(lr)) => {
            // The rule `compile` applies to a rate.
            if !lr.is_finite() {
                return Err(TrainError::file(
                    &path,
                    format!("`learning_rate` {lr} is not a finite number; {LEFT_AS_IS}"),
                ));
            }
            optimizer.set_learning_rate(f64::from(lr)).map_err(|e| TrainError::file(&path, e))?;
        }
        (LearningRate::Constant(_), None) => {
            return Err(TrainError::file(&path, "has no `learning_rate`, and this model's rate is a constant"));
        }
        (LearningRate::Schedule(_), Some(_)) => {
            return Err(TrainError::file(&path, "has a `learning_rate`, but this model's rate is a schedule"));
        }
        (LearningRate::Schedule(_), None) => {}
    }

    // The weights and generators go into a copy of the layers: the model keeps its own
    // until everything has succeeded.
    let mut layers = model.layers().to_vec();
    set_layer_weights(&mut layers, &weights).map_err(|e| TrainError::file(&weights_path, e))?;
    for layer in &mut layers {
        if let Some(saved) = state.layers.get(layer.name()) {
            layer.set_rng_state(saved).map_err(|e| TrainError::file(&path, e))?;
        }
    }
    Ok(Staged { epoch: state.epoch, shuffle: state.shuffle, layers, optimizer, marker })
}

/// Applies a staged backup: the loop continues at its epoch, and the model's layers and
/// optimizer are replaced by the staged ones. Nothing can fail once the model changes.
pub(super) fn apply(staged: Staged, ctl: &mut Control<'_>) -> Result<(), TrainError> {
    // Fails only outside `on_train_begin`, before the model is touched.
    ctl.resume_at(staged.epoch, &staged.shuffle)?;
    let model = ctl.model_mut();
    model.layers = staged.layers;
    model.compiled.as_mut().expect("staged from the compiled optimizer").optimizer = staged.optimizer;
    Ok(())
}

/// The epoch must be past the run's first and at most this `fit`'s `epochs` (a finished
/// backup, kept with `delete_checkpoint(false)`, is at `epochs`: nothing is left to train).
fn check_epoch(path: &Path, state: &TrainingState, marker: &Marker, epochs: usize) -> Result<(), TrainError> {
    let epoch = state.epoch;
    if epoch > epochs {
        return Err(TrainError::file(
            path,
            format!("`epoch` {epoch} is past this fit's last epoch ({epochs} epochs); {LEFT_AS_IS}"),
        ));
    }
    if epoch <= marker.origin.epoch {
        return Err(TrainError::file(
            path,
            format!(
                "`epoch` {epoch} is not after epoch {} where the backed-up run started ({MARKER}); {LEFT_AS_IS}",
                marker.origin.epoch
            ),
        ));
    }
    Ok(())
}

/// Each epoch since the run's origin took from one step to a full epoch of steps.
fn check_iterations(path: &Path, iterations: u64, state: &TrainingState, marker: &Marker) -> Result<(), TrainError> {
    let epochs = (state.epoch - marker.origin.epoch) as u64;
    let lowest = marker.origin.iterations.saturating_add(epochs);
    let highest = marker.origin.iterations.saturating_add(epochs.saturating_mul(marker.fit.steps_per_epoch()));
    if !(lowest..=highest).contains(&iterations) {
        return Err(TrainError::file(
            path,
            format!(
                "`iterations` {iterations} is not what {epochs} epochs of {} steps after iteration {} make \
                 ({lowest}..={highest}); {LEFT_AS_IS}",
                marker.fit.steps_per_epoch(),
                marker.origin.iterations
            ),
        ));
    }
    Ok(())
}

/// Errors unless `saved` holds a generator state for exactly the model's random layers (a
/// layer missing, or one the model lacks, means the backup is another model's).
fn check_layer_generators(
    model: &Sequential,
    saved: &BTreeMap<String, RngState>,
    path: &Path,
) -> Result<(), TrainError> {
    let mut used = 0;
    for layer in model.layers().iter().filter(|l| l.rng_state().is_some()) {
        if !saved.contains_key(layer.name()) {
            return Err(TrainError::file(
                path,
                format!("has no generator state for layer `{}`: it is another model's backup", layer.name()),
            ));
        }
        used += 1;
    }
    if used != saved.len() {
        let names: Vec<&str> = saved.keys().map(String::as_str).collect();
        return Err(TrainError::file(
            path,
            format!(
                "holds generator states for layers this model does not draw with ({}): another model's backup",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}
