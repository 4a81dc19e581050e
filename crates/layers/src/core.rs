//! What every layer holds: its name, its parameters and its output buffer.

use kiln_tensor::Matrix;
use serde::{Deserialize, Serialize};

use crate::Param;

/// The parts every layer has, held in one place so the model can name layers, walk
/// their parameters and read their outputs without a method per part.
///
/// In a layer's config it serializes as just `"name"` (with `#[serde(flatten)]`); the
/// parameters are saved separately and the output is scratch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerCore {
    /// The layer's name (`dense`, `dense_1`…), unique within a model; the model assigns
    /// one when it is empty.
    #[serde(default)]
    pub name: String,
    /// Keras' `trainable` (default true): false freezes the layer (see
    /// [`Layer::set_trainable`](crate::Layer::set_trainable)). Saved only when false, so
    /// older saves load unchanged.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub trainable: bool,
    /// The parameters, created by `build` (their order is the update order).
    #[serde(skip)]
    pub params: Vec<Param>,
    /// The output of the last `forward`.
    #[serde(skip)]
    pub output: Matrix,
}

impl Default for LayerCore {
    fn default() -> Self {
        Self { name: String::new(), trainable: true, params: Vec::new(), output: Matrix::default() }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl LayerCore {
    /// A core with the given name and nothing built.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}
