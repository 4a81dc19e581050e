//! One entry point per reader, taking arbitrary bytes. Each must return normally on any
//! input (an `Err` is fine; a panic, an abort or a huge allocation is a finding), and
//! checks the invariants of what it accepted.

use std::path::{Path, PathBuf};

use kiln_datasets::{OutputMode, Split, TextVectorization, decode_maybe_gzip, parse_idx, read_aclimdb};
use kiln_layers::{Activation, Dense};
use kiln_trainer::keras::{compile_from_keras, model_from_keras};
use kiln_trainer::{Features, Sequential};

/// IDX bytes, gzipped or not (MNIST-family images and labels).
pub fn idx(data: &[u8]) {
    let path = Path::new("fuzz-images-idx3-ubyte.gz");
    let Ok(bytes) = decode_maybe_gzip(data.to_vec(), path) else { return };
    if let Ok(array) = parse_idx(&bytes, path) {
        assert_eq!(array.dims.iter().product::<usize>(), array.data.len(), "accepted IDX with wrong data size");
    }
}

/// An aclImdb archive (tar, tar.gz), read as both splits.
pub fn imdb_tar(data: &[u8]) {
    let path = scratch_file("aclImdb.tar.gz");
    std::fs::write(&path, data).expect("writing the fuzz input");
    for split in [Split::Train, Split::Test] {
        if let Ok(reviews) = read_aclimdb(&path, split) {
            let [neg, pos] = reviews.label_counts();
            assert!(neg > 0 && pos > 0, "accepted a split without both classes");
            assert_eq!(neg + pos, reviews.len());
        }
    }
}

/// Text, one document per line; the first byte picks the mode and vocabulary size.
pub fn textvec(data: &[u8]) {
    let Some((&knob, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let docs: Vec<&str> = text.split('\n').collect();
    let mode = if knob & 1 == 0 { OutputMode::MultiHot } else { OutputMode::Int };
    let max_tokens = (knob >> 1 > 0).then_some((knob >> 1) as usize);
    let Ok(mut tv) = TextVectorization::new(mode, max_tokens) else { return };
    tv.adapt(docs.iter().copied());
    let size = tv.vocabulary_size();
    if let Some(max) = max_tokens {
        assert!(size <= max, "vocabulary of {size} exceeds max_tokens {max}");
    }
    let hot = tv.multi_hot(docs.iter().copied());
    assert_eq!(hot.rows(), docs.len());
    for i in 0..hot.rows() {
        assert!(hot.row(i).0.iter().all(|&j| (j as usize) < size), "multi-hot column outside the vocabulary");
    }
    for seq in tv.int_sequences(docs.iter().copied()) {
        assert!(seq.iter().all(|&j| (j as usize) < size), "token id outside the vocabulary");
    }
}

/// A model configuration: kiln's `config.json`, or a Keras model config with an optional
/// `compile_config`.
pub fn model_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(mut model) = Sequential::from_config_json(text) {
        exercise(&mut model);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return };
    if let Ok(mut model) = model_from_keras(&value) {
        if let Some(compile) = value.get("compile_config") {
            let _ = compile_from_keras(&mut model, compile);
        }
        exercise(&mut model);
    }
}

/// Safetensors bytes loaded as the weights of a small built model.
pub fn safetensors(data: &[u8]) {
    let mut model = Sequential::new()
        .add(Dense::new(4).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    model.build(3).expect("a small model builds");
    if model.load_weights_from_bytes(data, Path::new("fuzz.safetensors")).is_ok() {
        let weights = model.get_weights();
        assert!(weights.0.iter().all(|t| t.values.iter().all(|v| v.is_finite())), "accepted non-finite weights");
    }
}

/// Summarizes an accepted model and, when it is built and small, predicts with it.
fn exercise(model: &mut Sequential) {
    let _ = model.summary();
    let _ = model.to_config_json();
    if let Some(width) = model.input_width().filter(|_| model.param_count() <= 100_000) {
        let x = kiln_tensor::Matrix::zeros(2, width);
        let _ = model.predict(&Features::Dense(x), 2);
    }
}

/// A per-process scratch file for readers that take a path.
fn scratch_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-fuzz-{}-{name}", std::process::id()))
}
