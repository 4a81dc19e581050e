//! Keras' `Embedding`, `SimpleRNN`, `LSTM` and `GRU` configs as kiln layers.

use kiln_layers::{Activation, Embedding, GRU, Initializer, LSTM, Layer, RecurrentOptions, SimpleRNN};
use serde_json::Value;

use crate::conv_layers::name_of;
use crate::json::{At, refuse_unknown};
use crate::{KerasError, parts};

/// Keys of a layer's config that carry no semantics kiln must reproduce. `unroll` only
/// changes how TensorFlow builds the loop, not what it computes.
const IGNORED: &[&str] = &["name", "trainable", "dtype", "shared_object_id", "seed", "unroll", "implementation"];

fn positive(cfg: At<'_>, key: &str) -> Result<usize, KerasError> {
    cfg.get(key)
        .and_then(Value::as_u64)
        .filter(|&v| v > 0)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| cfg.error_at(key, "must be a positive integer"))
}

fn init(cfg: At<'_>, key: &str, default: Initializer) -> Result<Initializer, KerasError> {
    match cfg.get(key) {
        Some(v) => parts::initializer(At { value: v, path: &cfg.child_path(key) }),
        None => Ok(default),
    }
}

fn regularizer(cfg: At<'_>, key: &str) -> Result<Option<Box<dyn kiln_regularizers::Regularizer>>, KerasError> {
    parts::regularizer(At { value: cfg.get(key).unwrap_or(&Value::Null), path: &cfg.child_path(key) })
}

fn activation(cfg: At<'_>, key: &str, default: Activation) -> Result<Activation, KerasError> {
    match cfg.get(key) {
        Some(v) => parts::activation(At { value: v, path: &cfg.child_path(key) }),
        None => Ok(default),
    }
}

/// `Embedding` (`mask_zero` and constraints refused: kiln has no masks).
pub(crate) fn embedding(cfg: At<'_>) -> Result<Box<dyn Layer>, KerasError> {
    const KNOWN: &[&str] =
        &["input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer", "activity_regularizer"];
    refuse_unknown(cfg, "Embedding", KNOWN, IGNORED)?;
    let mut e = Embedding::new(positive(cfg, "input_dim")?, positive(cfg, "output_dim")?).name(name_of(cfg));
    e.embeddings_initializer =
        init(cfg, "embeddings_initializer", Initializer::RandomUniform { minval: -0.05, maxval: 0.05 })?;
    e.embeddings_regularizer = regularizer(cfg, "embeddings_regularizer")?;
    e.activity_regularizer = regularizer(cfg, "activity_regularizer")?;
    Ok(Box::new(e))
}

/// The arguments every recurrent layer shares. `stateful`, `return_state`, `dropout` and
/// `recurrent_dropout` are refused by `refuse_unknown` when set (they are not in the known
/// list, and off is false or 0).
fn options(cfg: At<'_>) -> Result<RecurrentOptions, KerasError> {
    let mut o = SimpleRNN::new(positive(cfg, "units")?).options;
    o.activation = activation(cfg, "activation", Activation::Tanh)?;
    o.use_bias = cfg.flag("use_bias", true)?;
    o.return_sequences = cfg.flag("return_sequences", false)?;
    o.go_backwards = cfg.flag("go_backwards", false)?;
    o.kernel_initializer = init(cfg, "kernel_initializer", Initializer::GlorotUniform)?;
    o.recurrent_initializer = init(cfg, "recurrent_initializer", Initializer::Orthogonal { gain: 1.0 })?;
    o.bias_initializer = init(cfg, "bias_initializer", Initializer::Zeros)?;
    o.kernel_regularizer = regularizer(cfg, "kernel_regularizer")?;
    o.recurrent_regularizer = regularizer(cfg, "recurrent_regularizer")?;
    o.bias_regularizer = regularizer(cfg, "bias_regularizer")?;
    Ok(o)
}

const COMMON: &[&str] = &[
    "units",
    "activation",
    "use_bias",
    "return_sequences",
    "go_backwards",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
];

/// `SimpleRNN`, `LSTM` or `GRU` (`class`). A SimpleRNN's `activity_regularizer` is not
/// read: Keras 3.15.1's `SimpleRNN.__init__` takes it and never uses it or passes it on
/// to its base layer (`simple_rnn.py`), so Keras adds no such loss (and saves `null`).
pub(crate) fn recurrent(cfg: At<'_>, class: &str) -> Result<Box<dyn Layer>, KerasError> {
    let extra: &[&str] = match class {
        "LSTM" => &["recurrent_activation", "unit_forget_bias"],
        "GRU" => &["recurrent_activation", "reset_after"],
        _ => &[],
    };
    let known: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
    refuse_unknown(cfg, class, &known, IGNORED)?;
    let options = options(cfg)?;
    let name = name_of(cfg);
    Ok(match class {
        "LSTM" => {
            let mut l = LSTM::new(options.units).name(name);
            l.options = RecurrentOptions { activity_regularizer: regularizer(cfg, "activity_regularizer")?, ..options };
            l.recurrent_activation = activation(cfg, "recurrent_activation", Activation::Sigmoid)?;
            l.unit_forget_bias = cfg.flag("unit_forget_bias", true)?;
            Box::new(l)
        }
        "GRU" => {
            let mut l = GRU::new(options.units).name(name);
            l.options = RecurrentOptions { activity_regularizer: regularizer(cfg, "activity_regularizer")?, ..options };
            l.recurrent_activation = activation(cfg, "recurrent_activation", Activation::Sigmoid)?;
            l.reset_after = cfg.flag("reset_after", true)?;
            Box::new(l)
        }
        _ => {
            let mut l = SimpleRNN::new(options.units).name(name);
            l.options = options;
            Box::new(l)
        }
    })
}
