//! Named `f32` tensors in one safetensors file (weights, optimizer state).

use std::collections::HashMap;
use std::path::Path;

use kiln_fs::write_atomic;
use safetensors::tensor::{Dtype, TensorView};

use crate::{NamedTensor, TrainError};

/// The largest tensor file accepted (4 GiB: four times the default model cap).
const MAX_TENSOR_FILE_BYTES: u64 = 4 << 30;

/// Writes named `f32` tensors (and string metadata) as one safetensors file, atomically.
pub(crate) fn write_tensors(
    path: &Path,
    tensors: &[NamedTensor],
    mut meta: HashMap<String, String>,
) -> Result<(), TrainError> {
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
pub(crate) fn read_tensors(path: &Path) -> Result<(Vec<NamedTensor>, HashMap<String, String>), TrainError> {
    let data = kiln_fs::read_regular(path, MAX_TENSOR_FILE_BYTES)?;
    parse_tensors(&data, path)
}

/// Parses a safetensors file's bytes (`path` names it in errors).
pub(crate) fn parse_tensors(
    data: &[u8],
    path: &Path,
) -> Result<(Vec<NamedTensor>, HashMap<String, String>), TrainError> {
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
