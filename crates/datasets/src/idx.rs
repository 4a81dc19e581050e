//! The IDX format of MNIST and Fashion-MNIST: `*-idx3-ubyte` images and `*-idx1-ubyte`
//! labels, optionally gzipped.
//!
//! Big-endian header: two zero bytes, a type byte (`0x08` = unsigned byte, the only one these
//! data sets use), the number of dimensions, then one `u32` per dimension; then the row-major
//! data. The reader checks the magic and that the byte count equals the product of the
//! dimensions exactly, rather than trusting fixed offsets as `np.frombuffer(offset=16)` does.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use kiln_tensor::ByteMatrix;

use crate::{Error, Result, Split};

/// A set of `u8` images with their class labels (pixels stay bytes; scale them per batch).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// One image per row, `height × width` columns (784 for MNIST), raw pixel bytes.
    pub images: ByteMatrix,
    /// One class label per image (0..=9 for MNIST).
    pub labels: Vec<u8>,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many images carry each label: entry `k` counts label `k` (length = largest label + 1).
    pub fn label_counts(&self) -> Vec<usize> {
        label_counts(&self.labels)
    }
}

/// Counts of each label value: entry `k` counts label `k` (length = largest label + 1).
pub fn label_counts(labels: &[u8]) -> Vec<usize> {
    let mut counts = vec![0usize; labels.iter().max().map_or(0, |&m| m as usize + 1)];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    counts
}

/// A parsed unsigned-byte IDX array of any rank.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (`[10000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The row-major data; its length is the product of `dims`.
    pub data: Vec<u8>,
}

/// Largest decompressed file accepted: 1 GiB (full MNIST's largest file is 47 MB).
const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Gzip's two magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a whole file, gunzipping it when it starts with the gzip magic (whatever its name).
///
/// An empty file, a truncated or corrupt gzip stream, and a missing path are errors naming
/// the file.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    open_maybe_gzip(path)?
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Gzip { path: path.into(), detail: e.to_string() })?;
    check_decoded_size(out.len() as u64, path)?;
    if out.is_empty() {
        return Err(Error::Format { path: path.into(), problem: "empty file (0 bytes)".into() });
    }
    Ok(out)
}

/// A reader of `path`'s content, gunzipped when it starts with the gzip magic (regular
/// files only: a FIFO or a device is refused before it is opened).
pub(crate) fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    let file = kiln_fs::open_regular(path).map_err(Error::refused)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let gz = {
        use std::io::BufRead;
        reader.fill_buf().map_err(|e| Error::io(path, e))?.starts_with(&GZIP_MAGIC)
    };
    Ok(if gz { Box::new(flate2::bufread::MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// Refuses more than [`MAX_DECOMPRESSED_BYTES`].
fn check_decoded_size(len: u64, path: &Path) -> Result<()> {
    if len > MAX_DECOMPRESSED_BYTES {
        return Err(Error::Gzip {
            path: path.into(),
            detail: format!("decompresses to more than {} GiB (a gzip bomb?)", MAX_DECOMPRESSED_BYTES >> 30),
        });
    }
    Ok(())
}

/// A file's bytes, gunzipped when they start with the gzip magic; `path` only names the
/// file in errors.
pub fn decode_maybe_gzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.is_empty() {
        return Err(Error::Format { path: path.into(), problem: "empty file (0 bytes)".into() });
    }
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Gzip { path: path.into(), detail: e.to_string() })?;
    check_decoded_size(out.len() as u64, path)?;
    Ok(out)
}

/// Reads an unsigned-byte IDX file (gzipped or not) of any rank, validating its header.
///
/// Streamed: the header is read first, then the data straight into its final buffer, so
/// the decompressed bytes are held once, and memory follows what the stream really holds
/// (a header's claim reserves nothing).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let mut r = open_maybe_gzip(path)?;
    let gz_err = |e: std::io::Error| Error::Gzip { path: path.into(), detail: e.to_string() };
    let mut head = [0u8; 4];
    let n = read_up_to(&mut r, &mut head).map_err(gz_err)?;
    if n == 0 {
        return Err(Error::Format { path: path.into(), problem: "empty file (0 bytes)".into() });
    }
    let ndims = head[3] as usize;
    let mut dims_bytes = vec![0u8; 4 * ndims];
    let got = if n == 4 { read_up_to(&mut r, &mut dims_bytes).map_err(gz_err)? } else { 0 };
    // Validate the header exactly as `parse_idx` does, from the bytes read so far.
    let mut header = head[..n].to_vec();
    header.extend_from_slice(&dims_bytes[..got]);
    let dims = parse_header(&header, path)?;
    let expected = dims.iter().product::<usize>() as u64;
    if expected > MAX_DECOMPRESSED_BYTES {
        return Err(Error::Idx {
            path: path.into(),
            problem: format!(
                "header declares {} = {expected} data bytes, more than the {} GiB accepted (truncated or forged?)",
                dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×"),
                MAX_DECOMPRESSED_BYTES >> 30
            ),
        });
    }
    let data = read_exactly_at_most(r, expected as usize + 1).map_err(gz_err)?;
    check_data_size(&dims, data.len(), path)?;
    Ok(IdxArray { dims, data })
}

/// Reads at most `limit` bytes into a buffer that never holds more capacity than `limit`,
/// nor more than twice what the stream really delivered (a header's size is only a claim).
fn read_exactly_at_most(r: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut r = r.take(limit as u64);
    let mut data = Vec::new();
    loop {
        let next = (data.len().max(1 << 20) * 2).min(limit);
        data.reserve_exact(next - data.len());
        let room = data.capacity() - data.len();
        let n = (&mut r).take(room as u64).read_to_end(&mut data)?;
        if n < room || data.len() >= limit {
            return Ok(data);
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
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

/// Parses IDX bytes (already gunzipped); `path` only names the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let dims = parse_header(bytes, path)?;
    let header = 4 + 4 * dims.len();
    check_data_size(&dims, bytes.len() - header, path)?;
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Errors unless `actual` is exactly the data size `dims` declare.
fn check_data_size(dims: &[usize], actual: usize, path: &Path) -> Result<()> {
    let expected: usize = dims.iter().product();
    if actual == expected {
        return Ok(());
    }
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
    let what = if actual < expected { "missing data (truncated?)" } else { "trailing bytes" };
    Err(Error::Idx {
        path: path.into(),
        problem: format!("header declares {shape} = {expected} data bytes but the file holds {actual}: {what}"),
    })
}

/// The dimensions of an IDX header at the start of `bytes` (which must hold all of it).
fn parse_header(bytes: &[u8], path: &Path) -> Result<Vec<usize>> {
    let bad = |problem: String| Error::Idx { path: path.into(), problem };
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is shorter than the 4-byte magic number", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 || bytes[3] == 0 {
        return Err(bad(format!(
            "wrong magic number 0x{magic:08x} (expected 0x00000803 for images or 0x00000801 for labels)"
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "magic 0x{magic:08x} declares data type 0x{:02x}; only unsigned bytes (0x08) are supported",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(bad(format!(
            "{} bytes is shorter than the {header}-byte header of a {ndims}-dimensional array",
            bytes.len()
        )));
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("header dimensions {shape} overflow")))?;
    Ok(dims)
}

/// Reads an `*-idx3-ubyte(.gz)` image file: `(images n × (h·w), h, w)`.
pub fn read_idx_images(path: &Path) -> Result<(ByteMatrix, usize, usize)> {
    let arr = read_idx(path)?;
    let &[n, h, w] = arr.dims.as_slice() else {
        return Err(Error::Idx {
            path: path.into(),
            problem: format!(
                "an image file needs 3 dimensions (count, height, width), this one has {} (magic 0x0000080{})",
                arr.dims.len(),
                arr.dims.len()
            ),
        });
    };
    let images = ByteMatrix::from_vec(n, h * w, arr.data)
        .map_err(|e| Error::Idx { path: path.into(), problem: e.to_string() })?;
    Ok((images, h, w))
}

/// Reads an `*-idx1-ubyte(.gz)` label file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let arr = read_idx(path)?;
    if arr.dims.len() != 1 {
        return Err(Error::Idx {
            path: path.into(),
            problem: format!(
                "a label file needs 1 dimension, this one has {} (magic 0x0000080{})",
                arr.dims.len(),
                arr.dims.len()
            ),
        });
    }
    Ok(arr.data)
}

/// Reads an image file and its label file, checking that they hold the same number of rows.
pub fn read_idx_pair(images_path: &Path, labels_path: &Path) -> Result<ImageSet> {
    let (images, height, width) = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.rows() != labels.len() {
        return Err(Error::Mismatch {
            images: images_path.into(),
            labels: labels_path.into(),
            problem: format!("{} images but {} labels", images.rows(), labels.len()),
        });
    }
    Ok(ImageSet { images, labels, height, width })
}

/// Finds the image and label files of `split` in a directory of IDX files.
///
/// Accepted names: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` (train) and
/// `t10k-…`/`test-…` (test), with `-` or `.` before `idx`, each optionally `.gz`. When both a
/// file and its `.gz` are present the uncompressed one is used.
pub fn find_idx_pair(dir: &Path, split: Split) -> Result<(PathBuf, PathBuf)> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let (mut images, mut labels, mut seen) = (Vec::new(), Vec::new(), 0usize);
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        seen += 1;
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        match classify(&name) {
            Some((s, IdxKind::Images)) if s == split => images.push(entry.path()),
            Some((s, IdxKind::Labels)) if s == split => labels.push(entry.path()),
            _ => {}
        }
    }
    if seen == 0 {
        return Err(Error::NoData { path: dir.into(), problem: "empty directory (no IDX files)".into() });
    }
    let prefix = if split == Split::Train { "train" } else { "t10k" };
    let images = pick(dir, images, &format!("{prefix}-images-idx3-ubyte[.gz]"))?;
    let labels = pick(dir, labels, &format!("{prefix}-labels-idx1-ubyte[.gz]"))?;
    Ok((images, labels))
}

/// Reads the `split` images and labels from a directory of IDX files (see [`find_idx_pair`]).
pub fn read_idx_dir(dir: &Path, split: Split) -> Result<ImageSet> {
    let (images, labels) = find_idx_pair(dir, split)?;
    read_idx_pair(&images, &labels)
}

/// Image or label file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdxKind {
    Images,
    Labels,
}

/// Classifies a (lower-cased) file name as an IDX image/label file of some split.
pub(crate) fn classify(name: &str) -> Option<(Split, IdxKind)> {
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let kind = if stem.ends_with("idx3-ubyte") {
        IdxKind::Images
    } else if stem.ends_with("idx1-ubyte") {
        IdxKind::Labels
    } else {
        return None;
    };
    let split = if stem.starts_with("train") {
        Split::Train
    } else if stem.starts_with("t10k") || stem.starts_with("test") {
        Split::Test
    } else {
        return None;
    };
    Some((split, kind))
}

/// One candidate, or the uncompressed one of `x` / `x.gz`; otherwise an error.
fn pick(dir: &Path, mut found: Vec<PathBuf>, wanted: &str) -> Result<PathBuf> {
    found.sort();
    match found.len() {
        0 => Err(Error::NoData { path: dir.into(), problem: format!("no {wanted} file") }),
        1 => Ok(found.remove(0)),
        2 if found[1].as_os_str().to_string_lossy() == format!("{}.gz", found[0].as_os_str().to_string_lossy()) => {
            Ok(found.remove(0))
        }
        _ => Err(Error::NoData {
            path: dir.into(),
            problem: format!(
                "ambiguous: several {wanted} files: {}",
                found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
        v
    }

    #[test]
    fn parses_a_valid_array_and_checks_the_byte_count() {
        let mut b = header(0x0803, &[2, 2, 3]);
        b.extend(0..12u8);
        let a = parse_idx(&b, Path::new("x")).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data, (0..12).collect::<Vec<u8>>());
        b.push(0);
        let err = parse_idx(&b, Path::new("x")).unwrap_err().to_string();
        assert!(err.contains("trailing bytes") && err.contains("2×2×3"), "{err}");
        b.truncate(b.len() - 2);
        assert!(parse_idx(&b, Path::new("x")).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn refuses_bad_magic_and_types() {
        let e = parse_idx(&header(0x1234_0803, &[1]), Path::new("m")).unwrap_err().to_string();
        assert!(e.contains("wrong magic number 0x12340803"), "{e}");
        let e = parse_idx(&header(0x0D01, &[0]), Path::new("m")).unwrap_err().to_string();
        assert!(e.contains("data type 0x0d"), "{e}");
        let e = parse_idx(&[0, 0, 8, 3, 0, 0], Path::new("m")).unwrap_err().to_string();
        assert!(e.contains("16-byte header"), "{e}");
    }

    #[test]
    fn classifies_common_file_names() {
        assert_eq!(classify("train-images-idx3-ubyte.gz"), Some((Split::Train, IdxKind::Images)));
        assert_eq!(classify("t10k-labels.idx1-ubyte"), Some((Split::Test, IdxKind::Labels)));
        assert_eq!(classify("test-images-idx3-ubyte"), Some((Split::Test, IdxKind::Images)));
        assert_eq!(classify("readme.txt"), None);
        assert_eq!(label_counts(&[2, 0, 2]), vec![1, 0, 2]);
    }
}
