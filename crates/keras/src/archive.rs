//! Reading a Keras model file: a `.keras` archive (a zip holding `config.json`,
//! `metadata.json` and `model.weights.h5`) or a bare JSON config (`model.to_json()`).

use std::io::{Read, Seek};
use std::path::Path;

use kiln_trainer::Sequential;
use serde_json::Value;

use crate::KerasError;
use crate::compile::compile_at;
use crate::json::At;
use crate::model::model_at;
use crate::scan::{MAX_LAYERS, MAX_TREE_BYTES, scan};

/// Largest `config.json` accepted (real ones are a few kB; this bounds a hostile file).
/// The same cap as `Sequential::load`'s, so an import never makes a model it cannot read
/// back.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The zip local-file signature every `.keras` archive starts with.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Reads a Keras model file and returns the model, compiled when the file says how:
/// a `.keras` archive or a JSON config (`{"class_name": "Sequential", "config": …,
/// "compile_config": …}`). Every error names the file, and the field when it is about one.
pub fn model_from_keras_file(path: &Path) -> Result<Sequential, KerasError> {
    let doc = read_model_config(path)?;
    model_from_document(&doc).map_err(|e| e.in_file(path))
}

/// The model (compiled when `compile_config` says how) of a parsed `config.json`.
pub fn model_from_document(doc: &Value) -> Result<Sequential, KerasError> {
    let at = At::root(doc);
    let mut model = model_at(at)?;
    if let Some(compile) = at.get("compile_config").filter(|c| c.as_object().is_some_and(|o| !o.is_empty())) {
        compile_at(&mut model, At { value: compile, path: "compile_config" })?;
    }
    Ok(model)
}

/// The `config.json` of a `.keras` archive, or the JSON of a config file, parsed.
pub fn read_model_config(path: &Path) -> Result<Value, KerasError> {
    let file_err = |m: String| KerasError::File { path: path.to_path_buf(), message: m };
    let mut file = kiln_fs::open_regular(path).map_err(|e| file_err(e.message))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| file_err(e.to_string()))?;
    file.rewind().map_err(|e| file_err(e.to_string()))?;
    let text = if n == 4 && &magic == ZIP_MAGIC {
        let mut zip =
            zip::ZipArchive::new(file).map_err(|e| file_err(format!("not a readable .keras archive: {e}")))?;
        let mut member =
            zip.by_name("config.json").map_err(|e| file_err(format!("a .keras archive must hold config.json: {e}")))?;
        if member.size() > MAX_CONFIG_BYTES {
            return Err(file_err(format!("config.json is {} bytes, more than {MAX_CONFIG_BYTES}", member.size())));
        }
        // Sized once from the (checked) header, so growing never holds two buffers.
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member
            .by_ref()
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| file_err(format!("reading config.json: {e}")))?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(file_err(format!("config.json holds more than {MAX_CONFIG_BYTES} bytes")));
        }
        String::from_utf8(bytes).map_err(|_| file_err("config.json is not UTF-8".into()))?
    } else {
        let bytes = kiln_fs::read_regular(path, MAX_CONFIG_BYTES).map_err(|e| file_err(e.message))?;
        String::from_utf8(bytes)
            .map_err(|_| file_err("neither a .keras archive (zip) nor a UTF-8 JSON config".into()))?
    };
    // A first pass that builds nothing: a config of too many layers, or one whose tree
    // would be many times its text (small objects cost a B-tree node each), is refused
    // before the tree is built.
    let shape = scan(&text).map_err(|e| file_err(format!("not valid JSON: {e}")))?;
    if shape.layers > MAX_LAYERS {
        return Err(file_err(format!(
            "config.json lists {} layers, more than the {MAX_LAYERS} kiln imports",
            shape.layers
        )));
    }
    if shape.tree_bytes > MAX_TREE_BYTES {
        return Err(file_err(format!(
            "config.json would take about {} MiB to parse ({} JSON objects in {} bytes), more than the {} MiB \
             kiln allows a model config",
            shape.tree_bytes >> 20,
            shape.objects,
            text.len(),
            MAX_TREE_BYTES >> 20
        )));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| file_err(format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(file_err("not a Keras model configuration (expected a JSON object)".into()));
    }
    Ok(value)
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
