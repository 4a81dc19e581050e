//! Saving and loading: `config.json` (typetag JSON), `model.safetensors`, `metadata.json`.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use kiln_fs::write_atomic;
use kiln_layers::Layer;
use kiln_optimizers::Optimizer;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::sequential::Compiled;
use crate::{Loss, NamedMetric, NamedTensor, Sequential, TrainError, Weights};

/// Version of the on-disk format; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// The configuration file's content (borrowed for writing).
#[derive(Serialize)]
struct ConfigOut<'a> {
    format_version: u32,
    name: &'a str,
    seed: u64,
    input_width: Option<usize>,
    layers: &'a [Box<dyn Layer>],
    compile: Option<CompileOut<'a>>,
}

/// The compile settings as written: the loss by its Keras name, `from_logits` beside it.
#[derive(Serialize)]
struct CompileOut<'a> {
    optimizer: &'a Optimizer,
    loss: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    from_logits: bool,
    metrics: &'a [NamedMetric],
}

/// The configuration file's content (owned for reading).
#[derive(Deserialize)]
struct ConfigIn {
    format_version: u32,
    name: String,
    seed: u64,
    input_width: Option<usize>,
    layers: Vec<Box<dyn Layer>>,
    compile: Option<CompileIn>,
}

#[derive(Deserialize)]
struct CompileIn {
    optimizer: Optimizer,
    loss: String,
    #[serde(default)]
    from_logits: bool,
    metrics: Vec<NamedMetric>,
}

impl Sequential {
    /// The model's configuration as JSON (layers, seed, compile settings; no weights).
    pub fn to_config_json(&self) -> String {
        let compile = self.compiled.as_ref().map(|c| CompileOut {
            optimizer: &c.optimizer,
            loss: c.loss.name(),
            from_logits: c.loss.from_logits(),
            metrics: &c.metrics,
        });
        let cfg = ConfigOut {
            format_version: FORMAT_VERSION,
            name: &self.name,
            seed: self.seed,
            input_width: self.input_width(),
            layers: &self.layers,
            compile,
        };
        serde_json::to_string_pretty(&cfg).expect("model config serializes")
    }

    /// A model from [`to_config_json`](Sequential::to_config_json) output: built (fresh
    /// weights) when the input width is known, compiled when the config says so.
    pub fn from_config_json(json: &str) -> Result<Self, TrainError> {
        let cfg: ConfigIn = serde_json::from_str(json).map_err(|e| TrainError::Config(e.to_string()))?;
        if cfg.format_version != FORMAT_VERSION {
            return Err(TrainError::Config(format!(
                "format_version {} is not supported (this kiln reads {FORMAT_VERSION})",
                cfg.format_version
            )));
        }
        let mut model = Sequential::new().name(cfg.name).seed(cfg.seed);
        cfg.layers.into_iter().for_each(|l| model.push(l));
        if let Some(w) = cfg.input_width {
            model.build(w)?;
        }
        if let Some(c) = cfg.compile {
            let loss = Loss::from_keras(&c.loss)
                .ok_or_else(|| TrainError::Config(format!("unknown loss `{}`", c.loss)))?
                .with_from_logits(c.from_logits);
            c.optimizer.validate().map_err(|e| TrainError::Config(format!("optimizer: {e}")))?;
            model.compiled = Some(Compiled { optimizer: c.optimizer, loss, metrics: c.metrics });
        }
        Ok(model)
    }

    /// Saves the model into directory `dir`: `config.json`, `model.safetensors`,
    /// `optimizer.safetensors` (once trained: slots and iteration count) and
    /// `metadata.json`. A later `fit` of the loaded model continues the optimizer exactly;
    /// it draws a fresh shuffle order and fresh dropout masks, so it repeats an
    /// uninterrupted run bit for bit only without shuffling and dropout.
    ///
    /// The save is atomic as a whole: the files are written and flushed into a temporary
    /// directory beside `dir`, which then replaces `dir` in one step. A save interrupted at
    /// any point (killed process, full disk) leaves the previous save loadable. To never
    /// delete anything else, `dir` must be new, empty, or a previous save.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), TrainError> {
        let dir = dir.as_ref();
        refuse_foreign_files(dir)?;
        kiln_fs::replace_dir_atomic(dir, |staging| -> Result<(), TrainError> {
            write_atomic(&staging.join("config.json"), self.to_config_json().as_bytes())?;
            self.save_weights(staging.join("model.safetensors"))?;
            self.save_optimizer_state(staging.join("optimizer.safetensors"))?;
            let meta = serde_json::json!({
                "format_version": FORMAT_VERSION,
                "kiln_version": env!("CARGO_PKG_VERSION"),
                "seed": self.seed,
                "params": self.param_count(),
            });
            Ok(write_atomic(&staging.join("metadata.json"), serde_json::to_string_pretty(&meta).unwrap().as_bytes())?)
        })
    }

    /// Loads a model saved with [`save`](Sequential::save); predictions are identical.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, TrainError> {
        kiln_fs::recover_dir(dir.as_ref())?;
        let dir = dir.as_ref();
        let cfg_path = dir.join("config.json");
        let json = fs::read_to_string(&cfg_path).map_err(|e| TrainError::file(&cfg_path, e))?;
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

    /// Writes every parameter to one safetensors file (`dense_1/kernel`, …), atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        write_tensors(path.as_ref(), &self.get_weights().0, HashMap::new())
    }

    /// Reads a safetensors file written by [`save_weights`](Sequential::save_weights) into
    /// the built model; errors name the tensor and the expected and found shapes.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let data = fs::read(path).map_err(|e| TrainError::file(path, e))?;
        self.load_weights_from_bytes(&data, path)
    }

    /// [`load_weights`](Sequential::load_weights) from a safetensors file's bytes; `path`
    /// only names the file in errors.
    pub fn load_weights_from_bytes(&mut self, data: &[u8], path: &Path) -> Result<(), TrainError> {
        let (tensors, _) = parse_tensors(data, path)?;
        let expected = self.get_weights();
        let mut loaded = Vec::new();
        for t in &expected.0 {
            let found = tensors
                .iter()
                .find(|f| f.name == t.name)
                .ok_or_else(|| TrainError::file(path, format!("missing tensor `{}`", t.name)))?;
            if found.shape != t.shape {
                return Err(TrainError::file(
                    path,
                    format!("tensor `{}`: expected shape {:?}, found {:?}", t.name, t.shape, found.shape),
                ));
            }
            if let Some(k) = found.values.iter().position(|v| !v.is_finite()) {
                return Err(TrainError::file(
                    path,
                    format!(
                        "tensor `{}` holds {} at index {k}: the model had diverged when it was saved",
                        t.name, found.values[k]
                    ),
                ));
            }
            loaded.push(found.clone());
        }
        self.set_weights(&Weights(loaded)).map_err(|e| TrainError::file(path, e))
    }

    /// Writes the optimizer's state — every slot (`dense/kernel/velocity`, …) and the
    /// iteration count — so that training resumes exactly. Does nothing before the
    /// optimizer has state (no `fit` yet).
    pub fn save_optimizer_state(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let Some(c) = self.compiled.as_ref().filter(|c| c.optimizer.is_built()) else { return Ok(()) };
        let shapes: HashMap<String, Vec<usize>> = self.get_weights().0.into_iter().map(|t| (t.name, t.shape)).collect();
        let tensors: Vec<NamedTensor> = c
            .optimizer
            .slots()
            .into_iter()
            .map(|s| NamedTensor {
                name: format!("{}/{}", s.param, s.slot),
                shape: shapes.get(s.param).cloned().unwrap_or_else(|| vec![s.values.len()]),
                values: s.values.to_vec(),
            })
            .collect();
        let meta = HashMap::from([("iterations".to_string(), c.optimizer.iterations().to_string())]);
        write_tensors(path.as_ref(), &tensors, meta)
    }

    /// Restores optimizer state written by
    /// [`save_optimizer_state`](Sequential::save_optimizer_state) into the compiled model.
    pub fn load_optimizer_state(&mut self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let (tensors, meta) = read_tensors(path)?;
        self.ensure_optimizer()?;
        let index: HashMap<String, usize> =
            self.param_list().into_iter().enumerate().map(|(i, (name, _))| (name, i)).collect();
        let opt = &mut self.compiled.as_mut().expect("compiled").optimizer;
        for t in &tensors {
            let restored = t
                .name
                .rsplit_once('/')
                .and_then(|(param, slot)| index.get(param).map(|&i| opt.set_slot(i, slot, &t.values)))
                .unwrap_or(false);
            if !restored {
                return Err(TrainError::file(path, format!("optimizer slot `{}` does not fit this model", t.name)));
            }
        }
        let iterations = meta.get("iterations").and_then(|v| v.parse().ok()).unwrap_or(0);
        opt.set_iterations(iterations);
        Ok(())
    }
}

/// Writes named `f32` tensors (and string metadata) as one safetensors file, atomically.
fn write_tensors(path: &Path, tensors: &[NamedTensor], mut meta: HashMap<String, String>) -> Result<(), TrainError> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| TrainError::file(path, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    meta.insert("format".to_string(), "kiln".to_string());
    let data = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| TrainError::file(path, e))?;
    Ok(write_atomic(path, &data)?)
}

/// Reads every `f32` tensor of a safetensors file, with its metadata.
fn read_tensors(path: &Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>), TrainError> {
    let data = fs::read(path).map_err(|e| TrainError::file(path, e))?;
    parse_tensors(&data, path)
}

/// Parses a safetensors file's bytes (`path` names it in errors).
fn parse_tensors(data: &[u8], path: &Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>), TrainError> {
    let (_, header) = safetensors::SafeTensors::read_metadata(data)
        .map_err(|e| TrainError::file(path, format!("not a valid safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(data)
        .map_err(|e| TrainError::file(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(TrainError::file(path, format!("tensor `{name}` is {:?}, not F32", view.dtype())));
        }
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        out.push(NamedTensor { name, shape: view.shape().to_vec(), values });
    }
    Ok((out, meta))
}

/// The files a saved model directory holds.
const MODEL_FILES: [&str; 4] = ["config.json", "model.safetensors", "optimizer.safetensors", "metadata.json"];

/// Errors if `dir` holds anything but a previous save's files (replacing it would delete them).
fn refuse_foreign_files(dir: &Path) -> Result<(), TrainError> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    let foreign: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !MODEL_FILES.contains(&name.as_str()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(TrainError::file(
        dir,
        format!(
            "not a saved model directory (it holds {}); saving replaces the whole directory, so choose a new or empty one",
            foreign.join(", ")
        ),
    ))
}
