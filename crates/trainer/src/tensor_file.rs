//! Named `f32` tensors in one safetensors file (weights, optimizer state).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use kiln_fs::write_atomic;
use safetensors::tensor::Dtype;

use crate::{NamedTensor, TrainError};

/// The largest tensor file accepted (4 GiB: four times the default model cap).
const MAX_TENSOR_FILE_BYTES: u64 = 4 << 30;

/// A tensor to write, borrowed from the model or optimizer: saving copies no weights.
pub(crate) struct TensorRef<'a> {
    /// `layer/param` (or `layer/param/slot`).
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The values, in place.
    pub values: &'a [f32],
}

impl safetensors::View for &TensorRef<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        le_bytes(self.values)
    }
    fn data_len(&self) -> usize {
        self.values.len() * 4
    }
}

/// The little-endian bytes of `values`: the values themselves on a little-endian machine
/// (no copy of a tensor beside the file being built), a converted copy elsewhere.
fn le_bytes(values: &[f32]) -> Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: an `f32` is 4 initialized bytes with no padding, `u8` has alignment 1,
        // and the byte slice covers exactly the borrowed values for the same lifetime.
        Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        })
    }
    #[cfg(not(target_endian = "little"))]
    {
        Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

/// Writes named `f32` tensors (and string metadata) as one safetensors file, atomically.
/// The file is built once in memory from the borrowed values (1× the tensors).
pub(crate) fn write_tensors(
    path: &Path,
    tensors: &[TensorRef<'_>],
    mut meta: HashMap<String, String>,
) -> Result<(), TrainError> {
    for t in tensors {
        if t.shape.iter().product::<usize>() != t.values.len() {
            return Err(TrainError::file(
                path,
                format!("tensor `{}` has {} values for shape {:?}", t.name, t.values.len(), t.shape),
            ));
        }
    }
    meta.insert("format".to_string(), "kiln".to_string());
    let views = tensors.iter().map(|t| (t.name.as_str(), t));
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
