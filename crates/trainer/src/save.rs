//! Saving and loading: `config.json` (typetag JSON), `model.safetensors`, `metadata.json`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_layers::Layer;
use kiln_optimizers::Optimizer;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::{Loss, Metric, NamedTensor, Sequential, TrainError, Weights};

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

#[derive(Serialize)]
struct CompileOut<'a> {
    optimizer: &'a dyn Optimizer,
    loss: Loss,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    from_logits: bool,
    metrics: &'a [Metric],
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
    optimizer: Box<dyn Optimizer>,
    loss: Loss,
    #[serde(default)]
    from_logits: bool,
    metrics: Vec<Metric>,
}

impl Sequential {
    /// The model's configuration as JSON (layers, seed, compile settings; no weights).
    pub fn to_config_json(&self) -> String {
        let compile = self.compiled.as_ref().map(|c| CompileOut {
            optimizer: c.optimizer.as_ref(),
            loss: c.loss,
            from_logits: c.from_logits,
            metrics: &c.metrics,
        });
        let cfg = ConfigOut {
            format_version: FORMAT_VERSION,
            name: &self.name,
            seed: self.seed,
            input_width: self.input_width,
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
            model.compile_boxed(c.optimizer, c.loss, c.metrics);
            model.set_from_logits(c.from_logits)?;
        }
        Ok(model)
    }

    /// Saves the model into directory `dir` (created if needed): `config.json`,
    /// `model.safetensors` and `metadata.json`, each written to a temporary file and
    /// renamed, so an interrupted save never leaves a half-written file behind.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), TrainError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|e| TrainError::file(dir, e))?;
        write_atomic(&dir.join("config.json"), self.to_config_json().as_bytes())?;
        self.save_weights(dir.join("model.safetensors"))?;
        let meta = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "kiln_version": env!("CARGO_PKG_VERSION"),
            "seed": self.seed,
            "params": self.param_count(),
        });
        write_atomic(&dir.join("metadata.json"), serde_json::to_string_pretty(&meta).unwrap().as_bytes())
    }

    /// Loads a model saved with [`save`](Sequential::save); predictions are identical.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, TrainError> {
        let dir = dir.as_ref();
        let cfg_path = dir.join("config.json");
        let json = fs::read_to_string(&cfg_path).map_err(|e| TrainError::file(&cfg_path, e))?;
        let mut model = Self::from_config_json(&json).map_err(|e| TrainError::file(&cfg_path, e))?;
        if model.input_width.is_none() {
            return Err(TrainError::file(&cfg_path, "the saved model was never built: no weights to load"));
        }
        model.load_weights(dir.join("model.safetensors"))?;
        Ok(model)
    }

    /// Writes every parameter to one safetensors file (`dense_1/kernel`, …), atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let weights = self.get_weights();
        let bytes: Vec<Vec<u8>> =
            weights.0.iter().map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
        let views = weights
            .0
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                TensorView::new(Dtype::F32, t.shape.clone(), b)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| TrainError::file(path, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = HashMap::from([("format".to_string(), "kiln".to_string())]);
        let data = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| TrainError::file(path, e))?;
        write_atomic(path, &data)
    }

    /// Reads a safetensors file written by [`save_weights`](Sequential::save_weights) into
    /// the built model; errors name the tensor and the expected and found shapes.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let data = fs::read(path).map_err(|e| TrainError::file(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&data)
            .map_err(|e| TrainError::file(path, format!("not a valid safetensors file: {e}")))?;
        let expected = self.get_weights();
        let mut loaded = Vec::new();
        for t in &expected.0 {
            let view =
                st.tensor(&t.name).map_err(|_| TrainError::file(path, format!("missing tensor `{}`", t.name)))?;
            if view.dtype() != Dtype::F32 {
                return Err(TrainError::file(path, format!("tensor `{}` is {:?}, not F32", t.name, view.dtype())));
            }
            if view.shape() != t.shape.as_slice() {
                return Err(TrainError::file(
                    path,
                    format!("tensor `{}`: expected shape {:?}, found {:?}", t.name, t.shape, view.shape()),
                ));
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            loaded.push(NamedTensor { name: t.name.clone(), shape: t.shape.clone(), values });
        }
        self.set_weights(&Weights(loaded)).map_err(|e| TrainError::file(path, e))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| TrainError::file(path, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = dir.join(tmp_name);
    fs::write(&tmp, bytes).map_err(|e| TrainError::file(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        TrainError::file(path, e)
    })
}
