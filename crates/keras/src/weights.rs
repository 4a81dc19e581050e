//! A `.keras` archive's `model.weights.h5` (Keras 3's layout) into a kiln model.
//!
//! Keras 3 (`saving_lib._save_container_state`) does not store a layer under its `name`: the
//! i-th entry of `model.layers` becomes the group `layers/<class in snake_case>` with `_1`,
//! `_2`, … for repeats, in layer order (a Functional model's `InputLayer` takes part; a
//! Sequential's `layers` list has none). Its variables are datasets `vars/0`, `vars/1`, …
//! in `trainable + non_trainable` order: Dense's kernel `(in, out)`, then its bias.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};

use hdf5_reader::storage::DynStorage;
use hdf5_reader::{BytesStorage, Datatype, Hdf5File, OpenOptions, RangeRequestStorage};
use kiln_layers::Param;
use kiln_trainer::Sequential;
use serde_json::Value;

use crate::KerasError;

/// Largest `model.weights.h5` accepted before looking at the model (a hostile archive
/// cannot make kiln allocate more); the model's own size bounds it further.
pub const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// The h5 group names Keras 3 gives the kiln layers of `doc`'s model, in layer order;
/// `None` for a `keras.ops` call, which is not one of Keras' layers and has no group (nor
/// a place in their naming).
fn keras_group_names(doc: &Value) -> Vec<Option<String>> {
    let class = doc.get("class_name").and_then(Value::as_str).unwrap_or("Sequential");
    let cfg = doc.get("config").unwrap_or(doc);
    let layers = cfg.get("layers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::new();
    for layer in layers {
        let layer_class = layer.get("class_name").and_then(Value::as_str).unwrap_or_default();
        let is_input = layer_class == "InputLayer";
        // Sequential.layers leaves its InputLayer out; a Functional model's list has it.
        if is_input && class == "Sequential" {
            continue;
        }
        if crate::layers::is_ops_entry(layer) {
            names.push(None);
            continue;
        }
        let name = unique_name(kiln_trainer::keras_snake_case(layer_class), &mut used);
        if !is_input {
            names.push(Some(name));
        }
    }
    names
}

/// Keras' `_get_unique_name`: the first `dense`, then `dense_1`, `dense_2`, ….
fn unique_name(name: String, used: &mut HashMap<String, usize>) -> String {
    match used.get_mut(&name) {
        Some(count) => {
            *count += 1;
            format!("{name}_{count}")
        }
        None => {
            used.insert(name.clone(), 0);
            name
        }
    }
}

/// `model.weights.h5` of the `.keras` archive at `path`, as storage the HDF5 reader reads
/// ranges of (bounded by [`MAX_WEIGHTS_BYTES`] and by what the model can hold). A stored
/// member — Keras writes them so — is read in place from the archive after its CRC is
/// checked in one streaming pass, so the file is never held whole beside the weights; a
/// compressed one is inflated into memory.
fn weights_member(path: &Path, model_bytes: u64) -> Result<DynStorage, KerasError> {
    let file_err = |m: String| KerasError::File { path: path.to_path_buf(), message: m };
    let file = kiln_fs::open_regular(path).map_err(|e| file_err(e.message))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| file_err(format!("not a readable .keras archive: {e}")))?;
    let mut member = zip
        .by_name("model.weights.h5")
        .map_err(|e| file_err(format!("a .keras archive must hold model.weights.h5 to import weights: {e}")))?;
    // The weights plus generous room for HDF5's own structures and the optimizer's slots.
    let cap = MAX_WEIGHTS_BYTES.min(model_bytes.saturating_mul(4).saturating_add(16 << 20));
    if member.size() > cap {
        return Err(file_err(format!(
            "model.weights.h5 is {} bytes, more than the {cap} a model of {} weights can need",
            member.size(),
            model_bytes / 4
        )));
    }
    let read_err = |e: std::io::Error| file_err(format!("reading model.weights.h5: {e}"));
    if member.compression() == zip::CompressionMethod::Stored {
        let (start, len) = (member.data_start(), member.size());
        // Reading to the end checks the CRC (the zip reader errors on a mismatch).
        let copied = std::io::copy(&mut member.by_ref().take(cap + 1), &mut std::io::sink()).map_err(read_err)?;
        if copied != len {
            return Err(file_err(format!("model.weights.h5 holds {copied} bytes, its header says {len}")));
        }
        drop(member);
        let file = Mutex::new(zip.into_inner());
        let storage = RangeRequestStorage::new(len, move |offset, n| {
            let mut buf = vec![0u8; n];
            let mut f = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f.seek(SeekFrom::Start(start + offset))?;
            f.read_exact(&mut buf)?;
            Ok(buf)
        });
        return Ok(Arc::new(storage));
    }
    let mut bytes = Vec::new();
    member.by_ref().take(cap + 1).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() as u64 > cap {
        return Err(file_err(format!("model.weights.h5 holds more than the {cap} bytes it declared room for")));
    }
    Ok(Arc::new(BytesStorage::new(bytes)))
}

/// Reads the float32 dataset at `at`, which must have the parameter's shape, straight
/// into the parameter's own values: no intermediate copy of a tensor is ever held.
fn read_into_param(h5: &Hdf5File, at: &str, param: &mut Param) -> Result<(), String> {
    let ds = h5.dataset(at).map_err(|e| format!("`{at}`: {e}"))?;
    let found: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
    if found != param.shape() {
        return Err(format!("`{at}` has shape {found:?}, the kiln layer needs {:?}", param.shape()));
    }
    match ds.dtype() {
        Datatype::FloatingPoint { size: 4, .. } => {}
        // Normalization's `count`: an integer scalar Keras 3 keeps only for old saves
        // (`dtype="int"`: int64 on TensorFlow, int32 on JAX, PyTorch and NumPy).
        Datatype::FixedPoint { size: 8, signed: true, .. } if param.name() == "count" && found.is_empty() => {
            let mut count = [0i64];
            ds.read_into::<i64>(&mut count).map_err(|e| format!("`{at}`: {e}"))?;
            param.value_mut()[0] = count[0] as f32;
            return Ok(());
        }
        Datatype::FixedPoint { size: 4, signed: true, .. } if param.name() == "count" && found.is_empty() => {
            let mut count = [0i32];
            ds.read_into::<i32>(&mut count).map_err(|e| format!("`{at}`: {e}"))?;
            param.value_mut()[0] = count[0] as f32;
            return Ok(());
        }
        other => return Err(format!("`{at}` is {other:?}, not float32")),
    }
    let values = param.value_mut();
    ds.read_into::<f32>(values).map_err(|e| format!("`{at}`: {e}"))?;
    if let Some((k, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(format!("`{at}` holds {v} at index {k}"));
    }
    Ok(())
}

/// The dataset names in the group at `at` (`vars/0`, …), or an error naming it.
fn members(h5: &Hdf5File, at: &str) -> Result<Vec<String>, String> {
    let group = h5.group(at).map_err(|e| format!("no group `{at}` ({e})"))?;
    let (groups, datasets) = group.member_names().map_err(|e| format!("`{at}`: {e}"))?;
    if let Some(g) = groups.first() {
        return Err(format!("`{at}` holds a group `{g}` kiln does not know"));
    }
    Ok(datasets)
}

/// What the HDF5 reader may hold at once beyond the weights themselves: decoded chunks of
/// a chunked dataset (Keras writes contiguous ones) and their cache.
const H5_CHUNK_BYTES: usize = 16 << 20;

/// Loads every layer's weights from the HDF5 bytes into `model` (built from `doc`), each
/// dataset read straight into its parameter. A file that fails half-way leaves the model
/// half-loaded: the caller discards it.
fn load_into(model: &mut Sequential, doc: &Value, storage: DynStorage) -> Result<(), String> {
    let options = OpenOptions::default().with_chunk_cache_bytes(H5_CHUNK_BYTES).with_max_chunk_bytes(H5_CHUNK_BYTES);
    let h5 = Hdf5File::from_storage_with_options(storage, options)
        .map_err(|e| format!("model.weights.h5 is not a readable HDF5 file: {e}"))?;
    let names = keras_group_names(doc);
    if names.len() != model.layers().len() {
        return Err(format!(
            "the config has {} weight-bearing layers, kiln built {}",
            names.len(),
            model.layers().len()
        ));
    }
    for (layer, group) in model.layers_mut().iter_mut().zip(&names) {
        let Some(group) = group else {
            // A keras.ops merge: no group, and no weights to read.
            if layer.params().is_empty() {
                continue;
            }
            return Err(format!("`{}` is a keras.ops call yet kiln's layer has weights", layer.name()));
        };
        let mut vars = format!("layers/{group}/vars");
        let mut found = members(&h5, &vars)?;
        // A recurrent layer keeps its variables with its cell (`layers/lstm/cell/vars`).
        if found.is_empty() && !layer.params().is_empty() {
            let cell = format!("layers/{group}/cell/vars");
            if let Ok(in_cell) = members(&h5, &cell) {
                (vars, found) = (cell, in_cell);
            }
        }
        let params = layer.params();
        if found.len() != params.len() {
            return Err(format!(
                "`{vars}` holds {} variables, kiln's {} layer `{}` has {} ({})",
                found.len(),
                layer.class_name(),
                layer.name(),
                params.len(),
                params.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ));
        }
        for (k, param) in layer.params_mut().iter_mut().enumerate() {
            read_into_param(&h5, &format!("{vars}/{k}"), param)?;
        }
    }
    Ok(())
}

/// Imports a `.keras` archive whole: the model of its `config.json` (compiled when it says
/// how) with the weights of its `model.weights.h5`, so it predicts what Keras predicted.
/// Sequential (or single-chain Functional) stacks of `Dense` and `Dropout`; any other
/// layer, a weight of the wrong shape or type, or a missing one is an error naming the
/// file and the HDF5 path. The optimizer's saved state is not imported.
///
/// ```no_run
/// let model = kiln_keras::import_keras_file(std::path::Path::new("model.keras"))?;
/// # Ok::<(), kiln_keras::KerasError>(())
/// ```
pub fn import_keras_file(path: &Path) -> Result<Sequential, KerasError> {
    let doc = crate::read_model_config(path)?;
    let mut model = crate::model_from_document(&doc).map_err(|e| e.in_file(path))?;
    let file_err = |m: String| KerasError::File { path: path.to_path_buf(), message: m };
    if model.input_width().is_none() {
        return Err(file_err("the config does not give the input width (no InputLayer or build shape)".into()));
    }
    let storage = weights_member(path, model.param_count() as u64 * 4)?;
    load_into(&mut model, &doc, storage).map_err(|m| file_err(format!("model.weights.h5: {m}")))?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        for (class, want) in [
            ("Dense", "dense"),
            ("InputLayer", "input_layer"),
            ("Dropout", "dropout"),
            ("BatchNormalization", "batch_normalization"),
            ("Conv2D", "conv2d"),
            ("HTTPLayer", "http_layer"),
            ("AbCDe", "ab_c_de"),
            ("Layer2Dense", "layer2_dense"),
        ] {
            assert_eq!(kiln_trainer::keras_snake_case(class), want, "{class}");
        }
    }

    #[test]
    fn group_names_count_per_class_and_skip_a_sequential_input() {
        let seq = serde_json::json!({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "InputLayer"}, {"class_name": "Dense"}, {"class_name": "Dropout"},
            {"class_name": "Dense"}, {"class_name": "Dense"}]}});
        let some = |names: &[&str]| names.iter().map(|n| Some(n.to_string())).collect::<Vec<_>>();
        assert_eq!(keras_group_names(&seq), some(&["dense", "dropout", "dense_1", "dense_2"]));
        let functional = serde_json::json!({"class_name": "Functional", "config": {"layers": [
            {"class_name": "InputLayer"}, {"class_name": "Dense"}]}});
        assert_eq!(keras_group_names(&functional), some(&["dense"]));
    }
}
