//! Saving and loading: `config.json` (typetag JSON), `model.safetensors`, `metadata.json`.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use kiln_fs::write_atomic;
use kiln_layers::Layer;
use kiln_optimizers::Optimizer;
use kiln_tensor::Shape;
use serde::{Deserialize, Serialize};

use crate::load::MAX_JSON_BYTES;
use crate::sequential::Compiled;
use crate::tensor_file::{TensorRef, write_tensors};
use crate::{Graph, Loss, NamedMetric, NamedTensor, Reduction, Sequential, TrainError};

/// Version of the on-disk format; bumped on incompatible changes. Version 3 records a
/// Functional model's graph (`graph`: inputs and what each layer reads), and is written
/// for graph models only; a stack is written as version 2, which records the input's
/// sample shape (`input_shape`), so older kilns still read it. Version 1 files
/// (`input_width`, flat rows) are still read, as `input_shape: [input_width]`.
pub const FORMAT_VERSION: u32 = 3;

/// The version a stack (a model without a graph) is written as.
pub(crate) const STACK_FORMAT_VERSION: u32 = 2;

/// The oldest format this kiln reads.
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;

/// The configuration file's content (borrowed for writing).
#[derive(Serialize)]
struct ConfigOut<'a> {
    format_version: u32,
    name: &'a str,
    seed: u64,
    input_shape: Option<&'a [usize]>,
    /// A Functional model's inputs and wiring (absent for a stack, so stacks read as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    graph: Option<&'a Graph>,
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
    /// Keras' reduction name, written when not the default (so older files are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    reduction: Option<&'static str>,
    #[serde(skip_serializing_if = "is_zero")]
    label_smoothing: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_class: Option<i32>,
    metrics: &'a [NamedMetric],
}

/// Refuses a save path whose extension names a Keras format (`.keras`, `.h5`, `.hdf5`):
/// kiln writes `what` there, which Keras could not read and a user would not expect under
/// that name. kiln has no HDF5 writer: a Keras archive is not written.
fn refuse_keras_name(path: &Path, call: &str, what: &str) -> Result<(), TrainError> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some(ext @ ("keras" | "h5" | "hdf5")) => Err(TrainError::Config(format!(
            "{}: `{call}` writes {what}, not a Keras `.{ext}` file; choose a name without `.{ext}`. kiln reads Keras \
             archives (kiln_keras::import_keras_file) but does not write them; for other runtimes, export ONNX \
             (kiln_onnx::export_onnx)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// The configuration file's content (owned for reading).
#[derive(Deserialize)]
struct ConfigIn {
    format_version: u32,
    name: String,
    seed: u64,
    /// Version 2: the sample shape.
    #[serde(default)]
    input_shape: Option<Vec<usize>>,
    /// Version 1: the width of flat input rows.
    #[serde(default)]
    input_width: Option<usize>,
    #[serde(default)]
    graph: Option<Graph>,
    layers: Vec<Box<dyn Layer>>,
    compile: Option<CompileIn>,
}

#[derive(Deserialize)]
struct CompileIn {
    optimizer: Optimizer,
    loss: String,
    #[serde(default)]
    from_logits: bool,
    #[serde(default)]
    reduction: Option<String>,
    #[serde(default)]
    label_smoothing: f32,
    #[serde(default)]
    ignore_class: Option<i32>,
    metrics: Vec<NamedMetric>,
}

impl Sequential {
    /// The saved-format version this model is written as: 3 for a graph, 2 for a stack.
    fn format_version(&self) -> u32 {
        if self.graph.is_some() { FORMAT_VERSION } else { STACK_FORMAT_VERSION }
    }

    /// The model's configuration as JSON (layers, seed, compile settings; no weights).
    pub fn to_config_json(&self) -> String {
        let compile = self.compiled.as_ref().map(|c| CompileOut {
            optimizer: &c.optimizer,
            loss: c.loss.name(),
            from_logits: c.loss.from_logits(),
            reduction: Some(c.loss.reduction()).filter(|r| *r != Reduction::default()).map(Reduction::keras_name),
            label_smoothing: c.loss.label_smoothing(),
            ignore_class: c.loss.ignore_class(),
            metrics: &c.requested,
        });
        let cfg = ConfigOut {
            format_version: self.format_version(),
            name: &self.name,
            seed: self.seed,
            input_shape: match &self.graph {
                Some(_) => None,
                None => self.model_input_shape().map(Shape::dims).or(self.declared_input.as_deref()),
            },
            graph: self.graph.as_ref(),
            layers: &self.layers,
            compile,
        };
        serde_json::to_string_pretty(&cfg).expect("model config serializes")
    }

    /// A model from [`to_config_json`](Sequential::to_config_json) output: built (fresh
    /// weights) when the input shape is known, compiled when the config says so. Reads
    /// format versions 1 (flat `input_width`) and 2 (`input_shape`).
    pub fn from_config_json(json: &str) -> Result<Self, TrainError> {
        let (mut model, input_shape) = Self::parse_config_json(json)?;
        model.build_parsed(input_shape.as_ref())?;
        Ok(model)
    }

    /// The model of a config, compiled but not built, and the input shape to build it for:
    /// every check of [`from_config_json`](Sequential::from_config_json) but the allocation.
    pub(crate) fn parse_config_json(json: &str) -> Result<(Self, Option<Shape>), TrainError> {
        let cfg: ConfigIn =
            serde_json::from_str(json).map_err(|e| TrainError::Config(unknown_layer_hint(e.to_string())))?;
        match (cfg.format_version, &cfg.graph) {
            (3, None) => {
                return Err(TrainError::Config(
                    "format_version 3 records a Functional model's `graph`; it has none".into(),
                ));
            }
            (1 | 2, Some(_)) => {
                return Err(TrainError::Config(format!(
                    "format_version {} does not record a `graph` (version 3 does)",
                    cfg.format_version
                )));
            }
            _ => {}
        }
        let input_shape = match (cfg.format_version, cfg.input_width, cfg.input_shape) {
            (1, width, None) => width.map(|w| vec![w]),
            (2 | 3, None, shape) => shape,
            (1..=3, _, _) => {
                return Err(TrainError::Config(format!(
                    "format_version {} records the input as `{}`, not `{}`",
                    cfg.format_version,
                    if cfg.format_version == 1 { "input_width" } else { "input_shape" },
                    if cfg.format_version == 1 { "input_shape" } else { "input_width" },
                )));
            }
            (v, _, _) => {
                return Err(TrainError::Config(format!(
                    "format_version {v} is not supported (this kiln reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
                )));
            }
        };
        let input_shape = input_shape
            .map(|dims| Shape::new(dims).map_err(|e| TrainError::Config(format!("input_shape: {e}"))))
            .transpose()?;
        let mut model = Sequential::new().name(cfg.name).seed(cfg.seed);
        model.declared_input = input_shape.as_ref().map(|s| s.dims().to_vec());
        cfg.layers.into_iter().for_each(|l| model.push(l));
        if let Some(graph) = cfg.graph {
            if input_shape.is_some() {
                return Err(TrainError::Config(
                    "a Functional config states its inputs in `graph`, not `input_shape`".into(),
                ));
            }
            model.check_graph_config(&graph)?;
            model.graph = Some(graph);
            model.declared_input = None;
        }
        if let Some(c) = cfg.compile {
            let loss = Loss::from_keras(&c.loss)
                .ok_or_else(|| TrainError::Config(format!("unknown loss `{}`", c.loss)))?
                .with_from_logits(c.from_logits)
                .with_ignore_class(c.ignore_class)?;
            let loss = match c.reduction.as_deref() {
                None => loss,
                Some(r) => loss.with_reduction(Reduction::from_keras(Some(r)).map_err(TrainError::Config)?),
            };
            let loss = if c.label_smoothing == 0.0 { loss } else { loss.with_label_smoothing(c.label_smoothing)? };
            crate::sequential::check_trainable(loss)?;
            c.optimizer.validate().map_err(|e| TrainError::Config(format!("optimizer: {e}")))?;
            c.metrics.iter().try_for_each(crate::sequential::check_scalar)?;
            model.compiled = Some(Compiled::new(c.optimizer, loss, c.metrics));
        }
        Ok((model, input_shape))
    }

    /// Errors unless `config` — this model's [`to_config_json`](Sequential::to_config_json)
    /// — and its weights pass every check [`load`](Sequential::load) makes: the size cap,
    /// a built model, layer names that are non-empty, short, unique and read back
    /// unchanged, and a weight count within the default budget `load` builds with. `save`
    /// runs it before replacing anything, so a save is never a model `load` refuses.
    fn check_loadable(&self, config: &str) -> Result<(), TrainError> {
        let refuse = |why: String| TrainError::Config(format!("refusing to save a model `load` would refuse: {why}"));
        if config.len() as u64 > MAX_JSON_BYTES {
            return Err(refuse(format!(
                "its config.json would be {} bytes, more than the {MAX_JSON_BYTES} `load` reads",
                config.len()
            )));
        }
        self.check_names().map_err(|e| refuse(e.to_string()))?;
        let Some(shapes) = self.model_input_shapes() else {
            return Err(refuse("it was never built, so it has no weights to load".into()));
        };
        let shape = &shapes[0];
        // The config as `load` will read it, parsed by the same code (nothing allocated).
        let (twin, twin_shape) = Self::parse_config_json(config).map_err(|e| refuse(e.to_string()))?;
        if let Some((i, (a, b))) =
            self.layers.iter().zip(&twin.layers).enumerate().find(|(_, (a, b))| a.name() != b.name())
        {
            return Err(refuse(format!("layer {i} `{}` would be read back as `{}`", a.name(), b.name())));
        }
        let same_inputs = match &self.graph {
            Some(_) => twin.graph == self.graph && twin_shape.is_none(),
            None => twin_shape.as_ref() == Some(shape),
        };
        if twin.layers.len() != self.layers.len() || !same_inputs {
            return Err(refuse("its config does not read back as the same layers and inputs".into()));
        }
        twin.check_names().map_err(|e| refuse(e.to_string()))?;
        if self.graph.is_some() {
            return Ok(());
        }
        twin.check_planned_weights(shape).map_err(|e| refuse(e.to_string()))
    }

    /// Saves the model into directory `dir`: `config.json`, `model.safetensors`,
    /// `optimizer.safetensors` (once trained: slots and iteration count) and
    /// `metadata.json`. A later `fit` of the loaded model continues the optimizer exactly;
    /// it draws a fresh shuffle order and fresh dropout masks, so it repeats an
    /// uninterrupted run bit for bit only without shuffling and dropout.
    ///
    /// The save is atomic as a whole: the files are written and flushed into a temporary
    /// directory beside `dir`, which then replaces `dir` in one step. A save interrupted at
    /// any point (killed process, full disk) leaves the previous save loadable. It never
    /// replaces a loadable model with one that cannot be loaded: non-finite weights or
    /// optimizer state (a diverged run) are refused before anything is written. To never
    /// delete anything else, `dir` must be new, empty, or a previous save (a symlink to one
    /// is written through); a second process saving the same `dir` at once is refused.
    /// A path named like a Keras file (`model.keras`, `.h5`) is refused with the call that
    /// does what it suggests: kiln writes its own directory, not Keras' archive.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), TrainError> {
        let dir = dir.as_ref();
        refuse_keras_name(dir, "save", "a kiln model directory (config.json, model.safetensors…)")?;
        // What `load` would refuse is never written: the config is checked by load's own
        // parser, names and caps before the previous save is touched.
        let config = self.to_config_json();
        self.check_loadable(&config)?;
        self.check_finite_state()?;
        refuse_foreign_files(dir)?;
        kiln_fs::replace_dir_atomic(dir, |staging| -> Result<(), TrainError> {
            write_atomic(&staging.join("config.json"), config.as_bytes())?;
            self.save_weights(staging.join("model.safetensors"))?;
            self.save_optimizer_state(staging.join("optimizer.safetensors"))?;
            let meta = serde_json::json!({
                "format_version": self.format_version(),
                "kiln_version": env!("CARGO_PKG_VERSION"),
                "seed": self.seed,
                "params": self.param_count(),
            });
            Ok(write_atomic(&staging.join("metadata.json"), serde_json::to_string_pretty(&meta).unwrap().as_bytes())?)
        })
    }

    /// Writes every parameter to one safetensors file (`dense_1/kernel`, …), atomically;
    /// refuses non-finite weights (the file would not load back).
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        refuse_keras_name(path.as_ref(), "save_weights", "a safetensors file (name it `….safetensors`)")?;
        // An empty or repeated layer name would give tensors `load_weights` cannot place.
        self.check_names()?;
        // Borrowed, not copied: a save holds the weights once more (the file), not thrice.
        let weights = self.weight_refs();
        if let Some((tensor, index, value)) = first_non_finite_ref(&weights) {
            return Err(TrainError::Diverged { tensor, index, value });
        }
        write_tensors(path.as_ref(), &weights, HashMap::new())
    }

    /// Every parameter, named `layer/param`, in update order, borrowed in place.
    fn weight_refs(&self) -> Vec<TensorRef<'_>> {
        let tensors = self.layers.iter().flat_map(|l| {
            l.params().iter().map(move |p| TensorRef {
                name: format!("{}/{}", l.name(), p.name()),
                shape: p.shape().to_vec(),
                values: p.value(),
            })
        });
        tensors.collect()
    }

    /// Errors naming the first weight or optimizer slot that is NaN or infinite.
    fn check_finite_state(&self) -> Result<(), TrainError> {
        if let Some((tensor, index, value)) = first_non_finite_ref(&self.weight_refs()) {
            return Err(TrainError::Diverged { tensor, index, value });
        }
        if let Some(c) = &self.compiled {
            for s in c.optimizer.slots() {
                if let Some(k) = s.values.iter().position(|v| !v.is_finite()) {
                    let tensor = format!("{}/{}", s.param, s.slot);
                    return Err(TrainError::Diverged { tensor, index: k, value: s.values[k] });
                }
            }
        }
        Ok(())
    }

    /// Writes the optimizer's state — every slot (`dense/kernel/velocity`, …) and the
    /// iteration count — so that training resumes exactly. Does nothing before the
    /// optimizer has state (no `fit` yet).
    pub fn save_optimizer_state(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let Some(c) = self.compiled.as_ref().filter(|c| c.optimizer.is_built()) else { return Ok(()) };
        let shapes: HashMap<String, Vec<usize>> = self.weight_refs().into_iter().map(|t| (t.name, t.shape)).collect();
        let tensors: Vec<TensorRef<'_>> = c
            .optimizer
            .slots()
            .into_iter()
            .map(|s| TensorRef {
                name: format!("{}/{}", s.param, s.slot),
                shape: shapes.get(s.param).cloned().unwrap_or_else(|| vec![s.values.len()]),
                values: s.values,
            })
            .collect();
        let meta = HashMap::from([("iterations".to_string(), c.optimizer.iterations().to_string())]);
        write_tensors(path.as_ref(), &tensors, meta)
    }
}

/// The first `(tensor, index, value)` that is not finite, of borrowed tensors.
fn first_non_finite_ref(tensors: &[TensorRef<'_>]) -> Option<(String, usize, f32)> {
    tensors.iter().find_map(|t| t.values.iter().position(|v| !v.is_finite()).map(|k| (t.name.clone(), k, t.values[k])))
}

/// The first `(tensor, index, value)` that is not finite.
pub(crate) fn first_non_finite(tensors: &[NamedTensor]) -> Option<(String, usize, f32)> {
    tensors.iter().find_map(|t| t.values.iter().position(|v| !v.is_finite()).map(|k| (t.name.clone(), k, t.values[k])))
}

/// The files a saved model directory holds.
pub(crate) const MODEL_FILES: [&str; 4] =
    ["config.json", "model.safetensors", "optimizer.safetensors", "metadata.json"];

/// Errors if `dir` holds anything but a previous save's files (replacing it would delete them).
fn refuse_foreign_files(dir: &Path) -> Result<(), TrainError> {
    refuse_files_but(dir, &MODEL_FILES, "a saved model directory")
}

/// Errors if `dir` exists and is not a directory, or holds a file not in `allowed`: `dir`
/// is about to be replaced whole, and nothing else may be deleted with it. `what` names
/// the directory kind in the message (`a saved model directory`).
pub(crate) fn refuse_files_but(dir: &Path, allowed: &[&str], what: &str) -> Result<(), TrainError> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(TrainError::file(
                dir,
                format!("exists and is not a directory: refusing to replace it with {what}"),
            ));
        }
        Err(_) => return Ok(()),
        Ok(_) => {}
    }
    let entries = fs::read_dir(dir).map_err(|e| TrainError::file(dir, e))?;
    let foreign: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !allowed.contains(&name.as_str()))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(TrainError::file(
        dir,
        format!("not {what} (it holds {}); it is replaced whole, so choose a new or empty one", foreign.join(", ")),
    ))
}

/// A layer type this program does not define (typetag's "unknown variant `Scale`") gets
/// the way out: a custom layer loads only where it is compiled in.
fn unknown_layer_hint(message: String) -> String {
    match message.strip_prefix("unknown variant `").and_then(|rest| rest.split_once('`')) {
        Some((name, _)) => format!(
            "{message}. `{name}` is not a layer this program defines: a model with a custom layer loads, \
             predicts and exports only in a program that compiles that layer in (your crate, calling \
             Sequential::load and kiln::onnx::export_onnx), not in the `kiln` command"
        ),
        None => message,
    }
}
