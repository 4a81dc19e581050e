//! `.npz` archives (numpy's zip of `.npy` members), as Keras' dataset files use them:
//! `mnist.npz` (plain `uint8`/integer arrays, read with the `npyz` crate) and `imdb.npz`
//! (ragged sequences as pickled object arrays, read with [`crate::pickle`], which allows
//! only Keras' three numpy globals and executes nothing).
//!
//! Bounded: each member is read through a cap of [`MAX_MEMBER_BYTES`] whatever its zip
//! header claims, and an array's declared size is checked against the bytes present before
//! anything is allocated for it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, TypeChar};

use crate::{Error, Result};

/// Largest `.npy` member read (the largest real one, mnist.npz's `x_train`, is 47 MB).
pub const MAX_MEMBER_BYTES: u64 = 1 << 30;

/// One array of an `.npz` archive.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    /// `uint8` values (images), C order.
    U8 {
        /// The shape.
        shape: Vec<usize>,
        /// The values.
        data: Vec<u8>,
    },
    /// Any integer type, widened to `i64` (labels), C order.
    Int {
        /// The shape.
        shape: Vec<usize>,
        /// The values.
        data: Vec<i64>,
    },
    /// A 1-D object array of integer sequences (`imdb.npz`'s reviews).
    Sequences(Vec<Vec<i64>>),
}

impl NpyArray {
    /// What the array holds, for messages: `uint8 [60000, 28, 28]`, `int [25000]`, `25000 sequences`.
    pub fn describe(&self) -> String {
        match self {
            NpyArray::U8 { shape, .. } => format!("uint8 {shape:?}"),
            NpyArray::Int { shape, .. } => format!("int {shape:?}"),
            NpyArray::Sequences(s) => format!("{} sequences", s.len()),
        }
    }
}

/// Every `.npy` member of the archive at `path`, by array name (`x_train` for
/// `x_train.npy`); other members are ignored, as numpy and Keras ignore them.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    let file = kiln_fs::open_regular(path).map_err(Error::refused)?;
    read_npz_from(std::io::BufReader::new(file), path)
}

/// [`read_npz`] of an archive already in memory; `path` only names it in errors.
pub fn read_npz_bytes(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    read_npz_from(std::io::Cursor::new(bytes), path)
}

fn read_npz_from<R: Read + std::io::Seek>(reader: R, path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    let bad = |problem: String| Error::Format { path: path.into(), problem };
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| bad(format!("not an .npz (zip) archive: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| bad(format!("member {i}: {e}")))?;
        let name = member.name().to_string();
        let Some(array) = name.strip_suffix(".npy") else { continue };
        let mut bytes = Vec::with_capacity(member.size().min(1 << 26) as usize);
        (&mut member)
            .take(MAX_MEMBER_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("member {name}: {e}")))?;
        if bytes.len() as u64 > MAX_MEMBER_BYTES {
            return Err(bad(format!("member {name} is larger than {} GiB", MAX_MEMBER_BYTES >> 30)));
        }
        let value = read_npy(&bytes).map_err(|p| bad(format!("member {name}: {p}")))?;
        out.insert(array.to_string(), value);
    }
    Ok(out)
}

/// The named arrays of an archive, or an error naming the one missing.
pub fn take_arrays<const N: usize>(
    path: &Path,
    mut arrays: BTreeMap<String, NpyArray>,
    names: [&str; N],
) -> Result<[NpyArray; N]> {
    let found: Vec<String> = arrays.keys().cloned().collect();
    let mut out = Vec::with_capacity(N);
    for name in names {
        let a = arrays.remove(name).ok_or_else(|| Error::Format {
            path: path.into(),
            problem: format!("no `{name}` array (found: {})", found.join(", ")),
        })?;
        out.push(a);
    }
    Ok(out.try_into().unwrap_or_else(|_| unreachable!("N arrays were pushed")))
}

/// numpy's own limit on an `.npy` header (`max_header_size`), and a nesting depth far above
/// what a `{'descr': …, 'fortran_order': …, 'shape': (…)}` dict needs.
const MAX_HEADER_BYTES: usize = 10_000;
const MAX_HEADER_DEPTH: usize = 16;

/// Checks the magic, version and header length before `npyz` parses anything (it would
/// otherwise allocate whatever length a v2 header claims).
fn check_preheader(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!(".npy format version {v}; versions 1 to 3 are read")),
    };
    if len > MAX_HEADER_BYTES || start + len > bytes.len() {
        return Err(format!(
            "a header of {len} bytes ({} present, at most {MAX_HEADER_BYTES} accepted)",
            bytes.len() - start
        ));
    }
    let mut depth = 0usize;
    for &b in &bytes[start..start + len] {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_HEADER_DEPTH {
            return Err(format!("a header nested more than {MAX_HEADER_DEPTH} deep"));
        }
    }
    Ok(())
}

/// One `.npy` file's array.
fn read_npy(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    check_preheader(bytes)?;
    let header_error = |e: std::io::Error| format!("not a valid .npy header: {e}");
    let body = NpyFile::new(bytes).map_err(header_error)?.into_inner();
    let npy = NpyFile::new(bytes).map_err(header_error)?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} too large")))
        .collect::<std::result::Result<_, _>>()?;
    let DType::Plain(ts) = npy.dtype() else { return Err("structured dtypes are not read".into()) };
    if npy.order() == npyz::Order::Fortran && shape.len() > 1 {
        return Err("Fortran-ordered arrays are not read".into());
    }
    if ts.type_char() == TypeChar::Object {
        if shape.len() != 1 {
            return Err(format!("an object array of shape {shape:?}; only 1-D ones are read"));
        }
        let seqs = crate::pickle::read_sequences(body).map_err(|e| e.to_string())?;
        if seqs.len() != shape[0] {
            return Err(format!("the header declares {} elements, the pickle holds {}", shape[0], seqs.len()));
        }
        return Ok(NpyArray::Sequences(seqs));
    }
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("the shape's size overflows")?;
    let width = ts.size_field() as usize;
    if count.checked_mul(width).is_none_or(|need| need > body.len()) {
        return Err(format!(
            "the header declares {shape:?} × {width} bytes but {} bytes follow (truncated?)",
            body.len()
        ));
    }
    let ints = |e: std::io::Error| format!("reading `{ts}` values: {e}");
    Ok(match (ts.type_char(), width) {
        (TypeChar::Uint, 1) => NpyArray::U8 { shape, data: npy.into_vec::<u8>().map_err(ints)? },
        (TypeChar::Int, 1) => int(shape, npy.into_vec::<i8>().map_err(ints)?),
        (TypeChar::Int, 2) => int(shape, npy.into_vec::<i16>().map_err(ints)?),
        (TypeChar::Int, 4) => int(shape, npy.into_vec::<i32>().map_err(ints)?),
        (TypeChar::Int, 8) => int(shape, npy.into_vec::<i64>().map_err(ints)?),
        (TypeChar::Uint, 2) => int(shape, npy.into_vec::<u16>().map_err(ints)?),
        (TypeChar::Uint, 4) => int(shape, npy.into_vec::<u32>().map_err(ints)?),
        (TypeChar::Bool, 1) => int(shape, npy.into_vec::<bool>().map_err(ints)?.into_iter().map(u8::from).collect()),
        _ => return Err(format!("dtype `{ts}` is not read (integers and uint8 only)")),
    })
}

fn int<T: Into<i64>>(shape: Vec<usize>, values: Vec<T>) -> NpyArray {
    NpyArray::Int { shape, data: values.into_iter().map(Into::into).collect() }
}
