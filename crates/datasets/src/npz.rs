//! `.npz` archives (numpy's zip of `.npy` members), as Keras' dataset files use them:
//! `mnist.npz` (plain `uint8`/integer arrays) and `imdb.npz` (ragged sequences as pickled
//! object arrays, read with [`crate::pickle`], which allows only Keras' three numpy globals
//! and executes nothing).
//!
//! Bounded by what the caller asks for, whatever the archive claims:
//! - [`NpzArchive`] reads only the members asked for, by name; the others are never inflated;
//! - [`NpzArchive::header`] gives a member's shape and dtype from its first bytes, so callers
//!   check arrays against each other (as many labels as images) before reading values;
//! - a numeric member is read for exactly the bytes its header declares, after its size
//!   is checked against [`MAX_TOTAL_BYTES`] (all members read from one archive), and
//!   integer arrays other than `uint8` (labels) hold at most [`MAX_WIDENED`] values, so
//!   widening them to `i64` stays small; a pickled member is read up to
//!   [`MAX_OBJECT_BYTES`] and [`OBJECT_INFLATION`] times its compressed size;
//! - the integers materialised from pickled members are capped per archive at
//!   [`crate::pickle::MAX_VALUES`] and, per member, at [`INTS_PER_COMPRESSED_BYTE`] times
//!   its compressed size, so deflate (up to 1,000× on repetitive data) cannot turn a small
//!   file into a large result.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use npyz::{DType, Endianness, NpyHeader as NpyzHeader, TypeChar};

use crate::{Error, Result};

/// Most bytes inflated from all the members read from one archive (Keras' `mnist.npz`
/// holds 55 MB, its `imdb.npz` about 30 MB).
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;

/// Largest pickled object array read (the real `imdb.npz`'s `x_train` is about 15 MB).
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;

/// An object member inflates to at most this many times its compressed size (with at
/// least [`MIN_OBJECT_BUDGET`] bytes). Measured: 1.58 for the bundled `imdb-5k.npz`, at most
/// 2.04 for the Keras-written fixtures, about 2 for the real `imdb.npz` (≈ 30 MB from 17 MB).
pub const OBJECT_INFLATION: u64 = 16;

/// Integers materialised from an object member per byte of its compressed size (with at
/// least [`MIN_OBJECT_BUDGET`]). Measured: 0.67 for the bundled `imdb-5k.npz` (1,205,479
/// from 1,802,546 bytes), about 0.69 for the real `imdb.npz` (11.7 million from 17 MB).
/// A 1 MB file thus yields at most 3 million integers (24 MiB as `i64`).
pub const INTS_PER_COMPRESSED_BYTE: u64 = 3;

/// The floor of both per-member budgets above, so tiny archives are never refused for
/// being small.
pub const MIN_OBJECT_BUDGET: u64 = 1 << 16;

/// Most values of an integer array other than `uint8` (widened to `i64`: labels; the
/// largest real one, `mnist.npz`'s `y_train`, holds 60,000).
pub const MAX_WIDENED: usize = 1 << 22;

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
    /// Any other integer type (or bool), widened to `i64` (labels), C order.
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

/// What a member's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyKind {
    /// `uint8`.
    U8,
    /// Another integer type or bool, read widened to `i64`.
    Int,
    /// A pickled object array.
    Object,
}

/// A member's header: its shape and what its values are, read before any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The shape.
    pub shape: Vec<usize>,
    /// What the values are.
    pub kind: NpyKind,
    /// numpy's dtype string (`<i8`, `|u1`, `|O`).
    pub descr: String,
    /// Bytes per value (`0` for objects).
    width: usize,
    /// Byte order of multi-byte integers.
    big_endian: bool,
    /// Signed integers.
    signed: bool,
}

impl NpyHeader {
    /// What the array holds, for messages: `uint8 [60000, 28, 28]`, `<i8 [25000]`, `object [25000]`.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            NpyKind::U8 => "uint8",
            NpyKind::Int => &self.descr,
            NpyKind::Object => "object",
        };
        format!("{what} {:?}", self.shape)
    }
}

/// An open `.npz` archive whose members are read one by one, on demand.
pub struct NpzArchive<R> {
    zip: zip::ZipArchive<R>,
    path: PathBuf,
    /// Bytes that may still be inflated ([`MAX_TOTAL_BYTES`] in all).
    left: u64,
    /// Integers that pickled members may still materialise ([`crate::pickle::MAX_VALUES`] in all).
    ints_left: u64,
}

impl NpzArchive<std::io::BufReader<std::fs::File>> {
    /// Opens the archive at `path` (a regular file); nothing is inflated yet.
    pub fn open(path: &Path) -> Result<Self> {
        let file = kiln_fs::open_regular(path).map_err(Error::refused)?;
        Self::new(std::io::BufReader::new(file), path)
    }
}

impl<'a> NpzArchive<std::io::Cursor<&'a [u8]>> {
    /// An archive already in memory; `path` only names it in errors.
    pub fn from_bytes(bytes: &'a [u8], path: &Path) -> Result<Self> {
        Self::new(std::io::Cursor::new(bytes), path)
    }
}

impl<R: Read + Seek> NpzArchive<R> {
    fn new(reader: R, path: &Path) -> Result<Self> {
        let zip = zip::ZipArchive::new(reader)
            .map_err(|e| Error::Format { path: path.into(), problem: format!("not an .npz (zip) archive: {e}") })?;
        Ok(Self { zip, path: path.into(), left: MAX_TOTAL_BYTES, ints_left: crate::pickle::MAX_VALUES as u64 })
    }

    fn bad(&self, problem: String) -> Error {
        Error::Format { path: self.path.clone(), problem }
    }

    /// The array names (`x_train` for `x_train.npy`), in archive order; other members are
    /// ignored, as numpy and Keras ignore them.
    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().filter_map(|n| n.strip_suffix(".npy")).map(str::to_string).collect()
    }

    /// The member holding array `name`, or an error naming the arrays there are.
    fn member(&mut self, name: &str) -> Result<zip::read::ZipFile<'_, R>> {
        let found = self.names();
        let path = self.path.clone();
        self.zip.by_name(&format!("{name}.npy")).map_err(|e| match e {
            zip::result::ZipError::FileNotFound => {
                Error::Format { path, problem: format!("no `{name}` array (found: {})", found.join(", ")) }
            }
            e => Error::Format { path, problem: format!("member {name}.npy: {e}") },
        })
    }

    /// The shape and dtype of array `name`, from the member's first bytes only.
    pub fn header(&mut self, name: &str) -> Result<NpyHeader> {
        let mut member = self.member(name)?;
        let header = read_header(&mut member);
        drop(member);
        header.map_err(|p| self.bad(format!("member {name}.npy: {p}")))
    }

    /// Array `name`, read within the caps of the module docs.
    pub fn array(&mut self, name: &str) -> Result<NpyArray> {
        let budget = Budget { bytes: self.left, ints: self.ints_left };
        let mut member = self.member(name)?;
        let compressed = member.compressed_size();
        let read = read_array(&mut member, budget, compressed);
        drop(member);
        let (array, inflated) = read.map_err(|p| self.bad(format!("member {name}.npy: {p}")))?;
        self.left = self.left.saturating_sub(inflated);
        if let NpyArray::Sequences(seqs) = &array {
            self.ints_left = self.ints_left.saturating_sub(seqs.iter().map(|s| s.len() as u64).sum());
        }
        Ok(array)
    }
}

/// numpy's own limit on an `.npy` header (`max_header_size`), and a nesting depth far above
/// what a `{'descr': …, 'fortran_order': …, 'shape': (…)}` dict needs.
const MAX_HEADER_BYTES: usize = 10_000;
const MAX_HEADER_DEPTH: usize = 16;

/// Checks the magic, version and header length before `npyz` parses anything (it would
/// otherwise allocate whatever length a v2 header claims), and reads the header's bytes.
fn read_preheader(r: &mut impl Read) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; 10];
    let short = |e: std::io::Error| format!("not a .npy file (no complete preamble: {e})");
    r.read_exact(&mut bytes).map_err(short)?;
    if &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let len = match bytes[6] {
        1 => usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
        2 | 3 => {
            bytes.resize(12, 0);
            r.read_exact(&mut bytes[10..]).map_err(short)?;
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
        }
        v => return Err(format!(".npy format version {v}; versions 1 to 3 are read")),
    };
    if len > MAX_HEADER_BYTES {
        return Err(format!("a header of {len} bytes (at most {MAX_HEADER_BYTES} accepted)"));
    }
    let start = bytes.len();
    let got = r.by_ref().take(len as u64).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if got < len {
        return Err(format!("a header of {len} bytes ({got} present)"));
    }
    let mut depth = 0usize;
    for &b in &bytes[start..] {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_HEADER_DEPTH {
            return Err(format!("a header nested more than {MAX_HEADER_DEPTH} deep"));
        }
    }
    Ok(bytes)
}

/// A member's header, the reader left at its first value.
fn read_header(r: &mut impl Read) -> std::result::Result<NpyHeader, String> {
    let bytes = read_preheader(r)?;
    let npy = NpyzHeader::from_reader(&bytes[..]).map_err(|e| format!("not a valid .npy header: {e}"))?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} too large")))
        .collect::<std::result::Result<_, _>>()?;
    let DType::Plain(ts) = npy.dtype() else { return Err("structured dtypes are not read".into()) };
    if npy.order() == npyz::Order::Fortran && shape.len() > 1 {
        return Err("Fortran-ordered arrays are not read".into());
    }
    let width = ts.size_field() as usize;
    let kind = match (ts.type_char(), width) {
        (TypeChar::Object, _) => {
            if shape.len() != 1 {
                return Err(format!("an object array of shape {shape:?}; only 1-D ones are read"));
            }
            NpyKind::Object
        }
        (TypeChar::Uint, 1) => NpyKind::U8,
        (TypeChar::Int, 1 | 2 | 4 | 8) | (TypeChar::Uint, 2 | 4) | (TypeChar::Bool, 1) => NpyKind::Int,
        _ => return Err(format!("dtype `{ts}` is not read (integers and uint8 only)")),
    };
    Ok(NpyHeader {
        shape,
        kind,
        descr: ts.to_string(),
        width: if kind == NpyKind::Object { 0 } else { width },
        big_endian: ts.endianness() == Endianness::Big,
        signed: ts.type_char() == TypeChar::Int,
    })
}

/// What an archive may still inflate and materialise.
#[derive(Clone, Copy)]
struct Budget {
    /// Bytes to inflate.
    bytes: u64,
    /// Integers from pickled members.
    ints: u64,
}

/// A member's array and the bytes inflated for it, within `budget`; `compressed` is the
/// member's size in the archive.
fn read_array(r: &mut impl Read, budget: Budget, compressed: u64) -> std::result::Result<(NpyArray, u64), String> {
    let header = read_header(r)?;
    if header.kind == NpyKind::Object {
        let by_size = compressed.saturating_mul(OBJECT_INFLATION).max(MIN_OBJECT_BUDGET);
        let limit = MAX_OBJECT_BYTES.min(budget.bytes).min(by_size);
        let body = read_at_most(r, limit as usize + 1)?;
        if body.len() as u64 > limit {
            return Err(if limit == MAX_OBJECT_BYTES {
                format!("a pickled array of more than {} MiB", MAX_OBJECT_BYTES >> 20)
            } else if limit == by_size {
                format!(
                    "a pickled array inflating to more than {OBJECT_INFLATION}× its {compressed} compressed bytes \
                     (real Keras files inflate about 2×; the file may be corrupted or malicious)"
                )
            } else {
                format!("reading it would inflate more than {} MiB from the archive", MAX_TOTAL_BYTES >> 20)
            });
        }
        let ints = budget.ints.min(compressed.saturating_mul(INTS_PER_COMPRESSED_BYTE).max(MIN_OBJECT_BUDGET));
        let limits = crate::pickle::Limits {
            max_values: usize::try_from(ints).unwrap_or(usize::MAX),
            ..crate::pickle::Limits::for_stream(body.len())
        };
        let seqs = crate::pickle::read_sequences_within(&body, limits).map_err(|e| e.to_string())?;
        if seqs.len() != header.shape[0] {
            return Err(format!("the header declares {} elements, the pickle holds {}", header.shape[0], seqs.len()));
        }
        return Ok((NpyArray::Sequences(seqs), body.len() as u64));
    }
    let shape = header.shape.clone();
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or("the shape's size overflows")?;
    if header.kind == NpyKind::Int && count > MAX_WIDENED {
        return Err(format!(
            "{} {shape:?}: {count} integers, more than the {MAX_WIDENED} read as labels",
            header.descr
        ));
    }
    let need = count.checked_mul(header.width).filter(|&n| n as u64 <= budget.bytes).ok_or_else(|| {
        format!("{} {shape:?} needs more than the {} MiB read from one archive", header.descr, MAX_TOTAL_BYTES >> 20)
    })?;
    let body = read_at_most(r, need)?;
    if body.len() < need {
        return Err(format!(
            "the header declares {shape:?} × {} bytes but {} bytes follow (truncated?)",
            header.width,
            body.len()
        ));
    }
    let array = match header.kind {
        NpyKind::U8 => NpyArray::U8 { shape, data: body },
        _ => {
            let (big, signed) = (header.big_endian, header.signed);
            let data = if header.descr.ends_with("b1") {
                body.iter().map(|&b| i64::from(b != 0)).collect()
            } else {
                body.chunks_exact(header.width).map(|c| crate::pickle::int_from(c, big, signed)).collect()
            };
            NpyArray::Int { shape, data }
        }
    };
    Ok((array, need as u64))
}

/// Up to `limit` bytes of `r`, the buffer growing only as data arrives (a declared size
/// reserves nothing the data does not back), and never past `limit`.
fn read_at_most(r: &mut impl Read, limit: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while out.len() < limit {
        let filled = out.len();
        let step = (limit - filled).min(filled.max(1 << 16));
        out.reserve_exact(step);
        out.resize(filled + step, 0);
        let mut at = filled;
        while at < out.len() {
            match r.read(&mut out[at..]) {
                Ok(0) => {
                    out.truncate(at);
                    return Ok(out);
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_limit_and_grow_with_the_data() {
        let data = vec![7u8; 300_000];
        let got = read_at_most(&mut &data[..], 200_000).unwrap();
        assert_eq!((got.len(), got.capacity()), (200_000, 200_000));
        let got = read_at_most(&mut &data[..10], 1 << 30).unwrap();
        assert_eq!(got, [7; 10]);
        assert!(got.capacity() <= 1 << 16, "{}", got.capacity());
    }

    // --- round 3b: budgets tied to the compressed size ---

    /// An object member (`.npy` bytes) of one list holding `n` ints (`K\x05`), protocol 2.
    fn object_member(n: usize) -> Vec<u8> {
        let text = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((text.len() as u16 + 1).to_le_bytes());
        out.extend(text.as_bytes());
        out.push(b'\n');
        out.extend(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01K\x01");
        out.extend(
            b"\x85cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89",
        );
        out.extend(b"]]");
        for chunk in 0..n.div_ceil(50_000) {
            out.push(b'(');
            for _ in 0..(n - chunk * 50_000).min(50_000) {
                out.extend(b"K\x05");
            }
            out.push(b'e');
        }
        out.extend(b"atb.");
        out
    }

    /// The integers a pickled member may materialise follow its compressed size (deflate
    /// used to turn 68 KB into 2 × 16.7 million `i64`s, issue 23 finding 5) and what the
    /// archive has left; the inflated stream follows the compressed size too.
    #[test]
    fn pickled_members_are_bounded_by_their_compressed_size() {
        let member = object_member(100_000);
        let budget = Budget { bytes: MAX_TOTAL_BYTES, ints: crate::pickle::MAX_VALUES as u64 };
        let read = |budget: Budget, compressed: u64| read_array(&mut &member[..], budget, compressed);
        // 40,000 compressed bytes allow 120,000 integers: read.
        let (array, _) = read(budget, 40_000).unwrap();
        assert_eq!(array.describe(), "1 sequences");
        // 30,000 allow 90,000: refused, by name.
        let err = read(budget, 30_000).err().unwrap();
        assert!(err.contains("more than 90000 integers"), "{err}");
        // What the archive has left bounds it too.
        let err = read(Budget { ints: 99_999, ..budget }, 40_000).err().unwrap();
        assert!(err.contains("more than 99999 integers"), "{err}");
        // 200 KB inflated from 10,000 compressed bytes is more than 16×.
        let err = read(budget, 10_000).err().unwrap();
        assert!(err.contains("inflating to more than 16× its 10000 compressed bytes"), "{err}");
        // Tiny members keep a floor: 10 ints from a 30-byte member are read.
        let small = object_member(10);
        assert!(read_array(&mut &small[..], budget, 30).is_ok());
    }
}
