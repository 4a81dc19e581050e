//! Loading a saved model, trusting nothing in the files: every tensor, slot, count and
//! version is checked, and an error names the file and what is wrong.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use kiln_optimizers::Optimizer;

use crate::save::{FORMAT_VERSION, OLDEST_FORMAT_VERSION, first_non_finite};
use crate::tensor_file::{parse_tensors, read_tensors};
use crate::{Sequential, TrainError, Weights};

/// The largest `config.json` / `metadata.json` accepted (real ones are a few kB).
pub(crate) const MAX_JSON_BYTES: u64 = 16 << 20;

/// A small JSON file of the save, read as text (regular files only, bounded).
fn read_json_file(path: &Path) -> Result<String, TrainError> {
    let bytes = kiln_fs::read_regular(path, MAX_JSON_BYTES)?;
    String::from_utf8(bytes).map_err(|_| TrainError::file(path, "is not UTF-8 text"))
}

/// Checks `metadata.json`: it must parse, and name a format version this kiln reads.
fn check_metadata(path: &Path) -> Result<(), TrainError> {
    let text = read_json_file(path)?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| TrainError::file(path, format!("not valid JSON: {e}")))?;
    match meta.get("format_version").and_then(serde_json::Value::as_u64) {
        Some(v) if (OLDEST_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&v) => Ok(()),
        Some(v) => Err(TrainError::file(
            path,
            format!(
                "format_version {v} is not supported (this kiln reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
            ),
        )),
        None => Err(TrainError::file(path, "has no numeric `format_version`")),
    }
}

impl Sequential {
    /// Loads a model saved with [`save`](Sequential::save); predictions are identical.
    ///
    /// Refused, naming the file: a `metadata.json` that does not parse or names an unknown
    /// format version; weights that are missing, misshapen, non-finite or not named by the
    /// config; optimizer state that is non-finite, negative where it must not be (a mean
    /// of squares), for parameters the model lacks, or without an integer iteration count.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, TrainError> {
        let dir = dir.as_ref();
        // Recovery first: a save killed between its two renames leaves no `dir` at all.
        kiln_fs::recover_dir(dir)?;
        if !kiln_fs::check_file_or_dir(dir)?.is_dir() {
            return Err(TrainError::file(dir, "is a file, not a kiln model directory"));
        }
        let cfg_path = dir.join("config.json");
        let json = read_json_file(&cfg_path)?;
        check_metadata(&dir.join("metadata.json"))?;
        let mut model = Self::from_config_json(&json).map_err(|e| TrainError::file(&cfg_path, e))?;
        if model.built.is_none() {
            return Err(TrainError::file(&cfg_path, "the saved model was never built: no weights to load"));
        }
        model.load_weights(dir.join("model.safetensors"))?;
        let optimizer_state = dir.join("optimizer.safetensors");
        if model.compiled.is_some() && optimizer_state.exists() {
            model.load_optimizer_state(&optimizer_state)?;
        }
        Ok(model)
    }

    /// Reads a safetensors file written by [`save_weights`](Sequential::save_weights) into
    /// the built model; errors name the tensor and the expected and found shapes.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let data = kiln_fs::read_regular(path, 4 << 30)?;
        self.load_weights_from_bytes(&data, path)
    }

    /// [`load_weights`](Sequential::load_weights) from a safetensors file's bytes; `path`
    /// only names the file in errors.
    pub fn load_weights_from_bytes(&mut self, data: &[u8], path: &Path) -> Result<(), TrainError> {
        let weights = self.checked_weights(data, path)?;
        self.set_weights(&weights).map_err(|e| TrainError::file(path, e))
    }

    /// A safetensors file's bytes as this model's weights, every name, shape and value
    /// checked; the model is not changed.
    pub(crate) fn checked_weights(&self, data: &[u8], path: &Path) -> Result<Weights, TrainError> {
        let (tensors, _) = parse_tensors(data, path)?;
        let expected = self.get_weights();
        // Name indexes keep the matching linear in a model of many layers.
        let wanted: std::collections::HashSet<&str> = expected.0.iter().map(|t| t.name.as_str()).collect();
        let found_by_name: HashMap<&str, &crate::NamedTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        if let Some(extra) = tensors.iter().find(|t| !wanted.contains(t.name.as_str())) {
            return Err(TrainError::file(
                path,
                format!("unexpected tensor `{}`: the model has no such parameter", extra.name),
            ));
        }
        let mut loaded = Vec::new();
        for t in &expected.0 {
            let found = found_by_name
                .get(t.name.as_str())
                .ok_or_else(|| TrainError::file(path, format!("missing tensor `{}`", t.name)))?;
            if found.shape != t.shape {
                return Err(TrainError::file(
                    path,
                    format!("tensor `{}`: expected shape {:?}, found {:?}", t.name, t.shape, found.shape),
                ));
            }
            loaded.push((*found).clone());
        }
        if let Some((name, k, v)) = first_non_finite(&loaded) {
            return Err(TrainError::file(
                path,
                format!("tensor `{name}` holds {v} at index {k}: the model had diverged, or the file was altered"),
            ));
        }
        Ok(Weights(loaded))
    }

    /// Restores optimizer state written by
    /// [`save_optimizer_state`](Sequential::save_optimizer_state) into the compiled model:
    /// all of it, or (on any error) nothing.
    pub fn load_optimizer_state(&mut self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let staged = self.checked_optimizer_state(path.as_ref())?;
        self.compiled.as_mut().expect("checked: compiled").optimizer = staged;
        Ok(())
    }

    /// This model's optimizer with the state of `path` (every slot of every parameter,
    /// finite, non-negative where it must be, and an iteration count); the model is not
    /// changed.
    pub(crate) fn checked_optimizer_state(&self, path: &Path) -> Result<Optimizer, TrainError> {
        let (tensors, meta) = read_tensors(path)?;
        let params = self.param_list();
        let mut opt = self.compiled.as_ref().ok_or(TrainError::NotCompiled("fit"))?.optimizer.clone();
        if !opt.is_built() {
            opt.build(&params);
        }
        let index: HashMap<&str, usize> = params.iter().enumerate().map(|(i, (name, _))| (name.as_str(), i)).collect();
        let non_negative = opt.rule().non_negative_slots();
        let mut restored = HashSet::new();
        for t in &tensors {
            if let Some((k, v)) = t.values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(TrainError::file(path, format!("optimizer slot `{}` holds {v} at index {k}", t.name)));
            }
            let (param, slot) = t.name.rsplit_once('/').unwrap_or(("", &t.name));
            if non_negative.contains(&slot)
                && let Some((k, v)) = t.values.iter().enumerate().find(|(_, v)| **v < 0.0)
            {
                return Err(TrainError::file(
                    path,
                    format!("optimizer slot `{}` holds {v} at index {k}: a mean of squares cannot be negative", t.name),
                ));
            }
            let fits = index.get(param).is_some_and(|&i| opt.set_slot(i, slot, &t.values));
            if !fits {
                return Err(TrainError::file(path, format!("optimizer slot `{}` does not fit this model", t.name)));
            }
            restored.insert(t.name.as_str());
        }
        // A slot the file lacks would keep the value it had: a mix of two states.
        let slot_names = opt.rule().slot_names();
        for (param, _) in &params {
            if let Some(slot) = slot_names.iter().find(|s| !restored.contains(format!("{param}/{s}").as_str())) {
                return Err(TrainError::file(path, format!("has no optimizer slot `{param}/{slot}`")));
            }
        }
        let iterations = match meta.get("iterations") {
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                TrainError::file(path, format!("`iterations` must be a non-negative integer, found {v:?}"))
            })?,
            None => return Err(TrainError::file(path, "has no `iterations` count")),
        };
        opt.set_iterations(iterations);
        Ok(opt)
    }
}
