//! `backup.json`: what makes a folder a backup, and of which model and which `fit`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fit_settings::FitSettings;
use crate::{Sequential, TrainError};

/// The marker's file name.
pub(super) const MARKER: &str = "backup.json";
/// The marker's `kind`: a JSON file that is not a kiln backup marker says otherwise.
const KIND: &str = "kiln BackupAndRestore";
/// Version of `backup.json`.
const MARKER_VERSION: u64 = 1;
/// `backup.json` is small; anything larger is not one.
const MAX_MARKER_BYTES: u64 = 1 << 20;
/// What the user is told to do with a backup that is not restored (it is never deleted).
pub(super) const LEFT_AS_IS: &str =
    "it is left as is: delete the folder to start afresh, or give this fit another backup_dir";

/// Which model a backup belongs to: its name, weight count and the SHA-256 of its
/// configuration (layers, their settings and names, input width, seed, optimizer and
/// loss). Left out: a constant learning rate, which is training state (callbacks change
/// it, the backup restores it), and the metrics, which do not change the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelIdentity {
    name: String,
    weights: usize,
    config_sha256: String,
}

impl ModelIdentity {
    /// The identity of `model` as it is now (call it before anything is restored).
    pub fn of(model: &Sequential) -> Self {
        let mut config: serde_json::Value =
            serde_json::from_str(&model.to_config_json()).expect("the model's config is JSON");
        if let Some(compile) = config.pointer_mut("/compile").and_then(|c| c.as_object_mut()) {
            compile.remove("metrics");
        }
        if let Some(optimizer) = config.pointer_mut("/compile/optimizer").and_then(|o| o.as_object_mut())
            && optimizer.get("learning_rate").is_some_and(serde_json::Value::is_number)
        {
            optimizer.remove("learning_rate");
        }
        let hash = Sha256::digest(config.to_string().as_bytes());
        let config_sha256 = hash.iter().map(|b| format!("{b:02x}")).collect();
        Self { name: model.model_name().to_string(), weights: model.param_count(), config_sha256 }
    }

    /// `model `NAME` (N weights, config sha256 0123456789abcdef…)`.
    fn describe(&self) -> String {
        let short = self.config_sha256.get(..16).unwrap_or(&self.config_sha256);
        format!("model `{}` ({} weights, config sha256 {short}…)", self.name, self.weights)
    }
}

/// Where the backed-up run started: a resumed run keeps its origin, so the epoch and the
/// iteration count of any later backup can be checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Origin {
    /// The first epoch the run trained.
    pub epoch: usize,
    /// The optimizer's iteration count before that epoch.
    pub iterations: u64,
}

/// `backup.json`'s content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Marker {
    kind: String,
    format_version: u64,
    /// The kiln that wrote it (for people; not checked).
    kiln_version: String,
    /// The model backed up.
    pub model: ModelIdentity,
    /// The settings of the `fit` backed up.
    pub fit: FitSettings,
    /// Where that run started.
    pub origin: Origin,
}

impl Marker {
    /// The marker of a run of `model` with `fit` started at `origin`.
    pub fn new(model: ModelIdentity, fit: FitSettings, origin: Origin) -> Self {
        Self {
            kind: KIND.into(),
            format_version: MARKER_VERSION,
            kiln_version: env!("CARGO_PKG_VERSION").into(),
            model,
            fit,
            origin,
        }
    }

    /// The file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the marker serializes")
    }

    /// Reads `path` (a bounded regular file) and checks that it is a marker this kiln
    /// reads; errors name the file and what is wrong.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let bytes = kiln_fs::read_regular(path, MAX_MARKER_BYTES)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TrainError::file(path, format!("not a kiln backup marker (not JSON: {e}); {LEFT_AS_IS}")))?;
        if value.get("kind").and_then(serde_json::Value::as_str) != Some(KIND) {
            return Err(TrainError::file(path, format!("not a kiln backup marker (no `kind: {KIND}`); {LEFT_AS_IS}")));
        }
        match value.get("format_version").and_then(serde_json::Value::as_u64) {
            Some(MARKER_VERSION) => {}
            v => {
                return Err(TrainError::file(
                    path,
                    format!("format_version {v:?} is not {MARKER_VERSION}, the one this kiln reads; {LEFT_AS_IS}"),
                ));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| TrainError::file(path, format!("not a valid kiln backup marker: {e}; {LEFT_AS_IS}")))
    }

    /// Errors unless the backup is of `model` and was made by a `fit` with `fit`'s
    /// settings, naming both sides.
    pub fn check_matches(&self, path: &Path, model: &ModelIdentity, fit: &FitSettings) -> Result<(), TrainError> {
        if self.model != *model {
            return Err(TrainError::file(
                path,
                format!(
                    "this is the backup of another model: {} was backed up, this fit trains {}; {LEFT_AS_IS}",
                    self.model.describe(),
                    model.describe()
                ),
            ));
        }
        let differences = self.fit.differences(fit);
        if !differences.is_empty() {
            return Err(TrainError::file(
                path,
                format!(
                    "this backup was made by a fit with other settings ({}: the backup's vs this fit's), which \
                     would not continue that run; {LEFT_AS_IS}",
                    differences.join(", ")
                ),
            ));
        }
        Ok(())
    }
}
