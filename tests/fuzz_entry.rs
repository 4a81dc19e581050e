//! One entry point per reader, taking arbitrary bytes. Each must return normally on any
//! input (an `Err` is fine; a panic, an abort or a huge allocation is a finding), checks
//! the invariants of what it accepted, and says whether it accepted the input.

use std::path::Path;

use kiln_datasets::{OutputMode, Split, TextVectorization, decode_maybe_gzip, parse_idx, read_aclimdb};
use kiln_keras::{compile_from_keras, model_from_keras};
use kiln_layers::{Activation, Dense};
use kiln_trainer::Sequential;

/// IDX bytes, gzipped or not (MNIST-family images and labels).
pub fn idx(data: &[u8]) -> bool {
    let path = Path::new("fuzz-images-idx3-ubyte.gz");
    let Ok(bytes) = decode_maybe_gzip(data.to_vec(), path) else { return false };
    let Ok(array) = parse_idx(&bytes, path) else { return false };
    assert_eq!(array.dims.iter().product::<usize>(), array.data.len(), "accepted IDX with wrong data size");
    true
}

/// An aclImdb archive (tar, tar.gz), read as both splits.
pub fn imdb_tar(data: &[u8]) -> bool {
    let path = scratch_file("aclImdb.tar.gz");
    std::fs::write(&path, data).expect("writing the fuzz input");
    let mut accepted = false;
    for split in [Split::Train, Split::Test] {
        if let Ok(reviews) = read_aclimdb(&path, split) {
            let [neg, pos] = reviews.label_counts();
            assert!(neg > 0 && pos > 0, "accepted a split without both classes");
            assert_eq!(neg + pos, reviews.len());
            accepted = true;
        }
    }
    accepted
}

/// Text, one document per line; the first byte picks the mode and vocabulary size.
pub fn textvec(data: &[u8]) -> bool {
    let Some((&knob, rest)) = data.split_first() else { return false };
    let text = String::from_utf8_lossy(rest);
    let docs: Vec<&str> = text.split('\n').collect();
    let mode = if knob & 1 == 0 { OutputMode::MultiHot } else { OutputMode::Int };
    let max_tokens = (knob >> 1 > 0).then_some((knob >> 1) as usize);
    let Ok(mut tv) = TextVectorization::new(mode, max_tokens) else { return false };
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
    true
}

/// A model configuration: kiln's `config.json`, or a Keras model config with an optional
/// `compile_config`.
pub fn model_config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    if let Ok(mut model) = Sequential::from_config_json(text) {
        exercise(&mut model);
        return true;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return false };
    let Ok(mut model) = model_from_keras(&value) else { return false };
    let compiled = match value.get("compile_config") {
        Some(compile) => compile_from_keras(&mut model, compile).is_ok(),
        None => true,
    };
    exercise(&mut model);
    compiled
}

/// Safetensors bytes loaded as the weights of a small built model.
pub fn safetensors(data: &[u8]) -> bool {
    let mut model = Sequential::new()
        .add(Dense::new(4).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    model.build(3).expect("a small model builds");
    if model.load_weights_from_bytes(data, Path::new("fuzz.safetensors")).is_err() {
        return false;
    }
    let weights = model.get_weights();
    assert!(weights.0.iter().all(|t| t.values.iter().all(|v| v.is_finite())), "accepted non-finite weights");
    true
}

/// An `.npz` archive (Keras' dataset layout or any other): every `.npy` member is read
/// through the bounded archive reader; each accepted array agrees with its header, and
/// numeric arrays hold as many values as their shape says.
pub fn npz(data: &[u8]) -> bool {
    use kiln_datasets::npz::{NpyArray, NpzArchive};
    let Ok(mut archive) = NpzArchive::from_bytes(data, Path::new("fuzz.npz")) else { return false };
    let mut accepted = true;
    for name in archive.names() {
        let (Ok(header), Ok(array)) = (archive.header(&name), archive.array(&name)) else {
            accepted = false;
            continue;
        };
        match array {
            NpyArray::U8 { shape, data } => {
                assert_eq!(shape, header.shape);
                assert_eq!(shape.iter().product::<usize>(), data.len())
            }
            NpyArray::Int { shape, data } => {
                assert_eq!(shape, header.shape);
                assert_eq!(shape.iter().product::<usize>(), data.len())
            }
            NpyArray::Sequences(s) => {
                assert_eq!(header.shape, [s.len()]);
                assert!(s.iter().map(Vec::len).sum::<usize>() <= kiln_datasets::pickle::MAX_VALUES)
            }
        }
    }
    accepted
}

/// A pickle stream read as Keras' object arrays: never executes, never panics.
pub fn pickle(data: &[u8]) -> bool {
    kiln_datasets::pickle::read_sequences(data).is_ok()
}

/// Longest stream [`pickle_repeat`] expands an input to.
pub const MAX_REPEATED_STREAM: usize = 4 << 20;

/// A pickle stream written as `prefix + unit × count + suffix`, so that a fuzzer limited to
/// a few kilobytes reaches a million nested values (issue 23: 10⁶ `TUPLE1` overflowed the
/// stack, far beyond what 4 KB inputs could build). Layout: `count` (3 bytes, little
/// endian), the prefix and unit lengths (1 byte each), then prefix, unit and suffix; the
/// stream is cut at [`MAX_REPEATED_STREAM`] bytes.
pub fn pickle_repeat(data: &[u8]) -> bool {
    let Some(stream) = expand_repeat(data) else { return false };
    pickle(&stream)
}

/// The stream a [`pickle_repeat`] input stands for (`None` when the input is too short).
pub fn expand_repeat(data: &[u8]) -> Option<Vec<u8>> {
    let (head, rest) = data.split_at_checked(5)?;
    let count = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let (prefix, rest) = rest.split_at_checked(usize::from(head[3]))?;
    let (unit, suffix) = rest.split_at_checked(usize::from(head[4]))?;
    let mut stream = prefix.to_vec();
    if !unit.is_empty() {
        let room = MAX_REPEATED_STREAM.saturating_sub(stream.len() + suffix.len());
        for _ in 0..count.min(room / unit.len()) {
            stream.extend_from_slice(unit);
        }
    }
    stream.extend_from_slice(suffix);
    stream.truncate(MAX_REPEATED_STREAM);
    Some(stream)
}

/// Summarizes an accepted model and, when it is built and small, predicts with it.
fn exercise(model: &mut Sequential) {
    let _ = model.summary();
    let _ = model.to_config_json();
    if let Some(width) = model.input_width().filter(|_| model.param_count() <= 100_000) {
        let x = kiln_tensor::Matrix::zeros(2, width);
        let _ = model.predict(&x, 2);
    }
}

/// A fresh scratch file for readers that take a path. A TempPath: the file is removed when
/// it drops, even when the entry point panics.
fn scratch_file(name: &str) -> tempfile::TempPath {
    let file = tempfile::Builder::new().prefix("kiln-fuzz-").suffix(&format!("-{name}")).tempfile();
    file.expect("creating a scratch file").into_temp_path()
}
