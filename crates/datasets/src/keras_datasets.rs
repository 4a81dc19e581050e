//! `keras.datasets.mnist.load_data` and `keras.datasets.imdb.load_data`, argument for
//! argument, on Keras' own `mnist.npz` and `imdb.npz`; and the notebook's
//! `vectorize_sequences`.

use std::path::Path;

use kiln_tensor::{ByteMatrix, CsrMatrix};

use crate::npz::{NpyArray, NpyKind, NpzArchive};
use crate::random_state::RandomState;
use crate::{Error, ImageSet, Result, Split};

/// The arguments of `keras.datasets.imdb.load_data`, with Keras' defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdbArgs {
    /// Keep the `num_words` most frequent words (shifted indices below it); `None` or 0 keeps
    /// all (Keras then uses the largest index as the bound, which excludes that index itself).
    pub num_words: Option<i64>,
    /// Indices below this become `oov_char` (or are dropped). Default 0.
    pub skip_top: i64,
    /// Drop (not truncate) sequences of length ≥ `maxlen`, `start_char` included; `None` or 0
    /// keeps all.
    pub maxlen: Option<usize>,
    /// Seed of `np.random.RandomState(seed)`, which shuffles train, then test. Default 113.
    pub seed: u32,
    /// Prepended to every sequence; `None` prepends nothing. Default 1.
    pub start_char: Option<i64>,
    /// Replaces cut words; `None` drops them. Default 2.
    pub oov_char: Option<i64>,
    /// Added to every raw index. Default 3; `None` is Keras' `None` (an error with a
    /// `start_char`, as in Keras, and no offset without one).
    pub index_from: Option<i64>,
}

impl Default for ImdbArgs {
    fn default() -> Self {
        Self {
            num_words: None,
            skip_top: 0,
            maxlen: None,
            seed: 113,
            start_char: Some(1),
            oov_char: Some(2),
            index_from: Some(3),
        }
    }
}

/// Integer sequences and labels of one split, as `load_data` returns them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sequences {
    /// One list of word indices per review.
    pub x: Vec<Vec<i64>>,
    /// 1 = positive, 0 = negative.
    pub y: Vec<i64>,
}

/// `(train, test)` of `keras.datasets.imdb.load_data(path, **args)`.
///
/// The steps are Keras' (`keras/src/datasets/imdb.py`): read the npz; shuffle train then
/// test with one `RandomState(seed)`; prepend `start_char` and add `index_from`; drop
/// sequences with `len ≥ maxlen` (an error if a split ends up empty); bound the vocabulary
/// by `num_words` (or the largest index) and `skip_top`, replacing cut words by `oov_char` or
/// dropping them.
pub fn imdb_load_data(path: &Path, args: &ImdbArgs) -> Result<(Sequences, Sequences)> {
    let mut npz = NpzArchive::open(path)?;
    let bad = |problem: String| Error::Format { path: path.into(), problem };
    let mut train = read_split(&mut npz, "x_train", "y_train")?.map_err(&bad)?;
    let mut test = read_split(&mut npz, "x_test", "y_test")?.map_err(&bad)?;
    let mut rng = RandomState::new(args.seed);
    for s in [&mut train, &mut test] {
        let mut order: Vec<usize> = (0..s.x.len()).collect();
        rng.shuffle(&mut order);
        let x = std::mem::take(&mut s.x);
        let mut x: Vec<Option<Vec<i64>>> = x.into_iter().map(Some).collect();
        s.x = order.iter().map(|&i| x[i].take().unwrap_or_default()).collect();
        s.y = order.iter().map(|&i| s.y[i]).collect();
    }
    let shift = |w: i64, by: i64| w.checked_add(by).ok_or_else(|| bad(format!("word index {w} + {by} overflows")));
    for s in [&mut train, &mut test] {
        for x in &mut s.x {
            match (args.start_char, args.index_from) {
                (Some(_), None) => {
                    return Err(Error::InvalidArgument(
                        "index_from=None with a start_char: Keras raises a TypeError (int + None)".into(),
                    ));
                }
                (Some(start), Some(from)) => {
                    let shifted = x.iter().map(|&w| shift(w, from)).collect::<Result<Vec<_>>>()?;
                    *x = std::iter::once(start).chain(shifted).collect();
                }
                (None, Some(from)) if from != 0 => {
                    *x = x.iter().map(|&w| shift(w, from)).collect::<Result<Vec<_>>>()?;
                }
                (None, _) => {}
            }
        }
    }
    if let Some(maxlen) = args.maxlen.filter(|&m| m > 0) {
        for s in [&mut train, &mut test] {
            let keep: Vec<bool> = s.x.iter().map(|x| x.len() < maxlen).collect();
            s.x = std::mem::take(&mut s.x).into_iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x).collect();
            s.y = std::mem::take(&mut s.y).into_iter().zip(&keep).filter(|(_, k)| **k).map(|(y, _)| y).collect();
        }
        if train.x.is_empty() || test.x.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "after filtering for sequences shorter than maxlen={maxlen}, no sequence was kept; increase maxlen"
            )));
        }
    }
    let num_words = match args.num_words.filter(|&n| n != 0) {
        Some(n) => n,
        None => {
            let mut max = None::<i64>;
            for x in train.x.iter().chain(&test.x) {
                let m = x.iter().copied().max().ok_or_else(|| {
                    Error::InvalidArgument("an empty sequence: Keras' max() over it raises (pass num_words)".into())
                })?;
                max = Some(max.map_or(m, |v: i64| v.max(m)));
            }
            max.unwrap_or(0)
        }
    };
    let keep = |w: i64| args.skip_top <= w && w < num_words;
    for x in train.x.iter_mut().chain(test.x.iter_mut()) {
        *x = match args.oov_char {
            Some(oov) => x.iter().map(|&w| if keep(w) { w } else { oov }).collect(),
            None => x.iter().copied().filter(|&w| keep(w)).collect(),
        };
    }
    Ok((train, test))
}

/// One split of an `imdb.npz`: the headers are checked against each other (as many labels
/// as sequences) before any value is read, and every label is 0 or 1.
fn read_split<R: std::io::Read + std::io::Seek>(
    npz: &mut NpzArchive<R>,
    xn: &str,
    yn: &str,
) -> Result<std::result::Result<Sequences, String>> {
    let (hx, hy) = (npz.header(xn)?, npz.header(yn)?);
    if hx.kind != NpyKind::Object {
        return Ok(Err(format!("`{xn}` is {}, not an object array of sequences", hx.describe())));
    }
    if hy.kind == NpyKind::Object || hy.shape != hx.shape {
        return Ok(Err(format!(
            "`{xn}` declares {} sequences but `{yn}` is {}, not as many integer labels",
            hx.shape[0],
            hy.describe()
        )));
    }
    let NpyArray::Sequences(x) = npz.array(xn)? else { unreachable!("`{xn}`'s header says object array") };
    let y: Vec<i64> = match npz.array(yn)? {
        NpyArray::Int { data, .. } => data,
        NpyArray::U8 { data, .. } => data.into_iter().map(i64::from).collect(),
        NpyArray::Sequences(_) => unreachable!("`{yn}`'s header says integers"),
    };
    if let Some((i, label)) = y.iter().enumerate().find(|(_, l)| !matches!(l, 0 | 1)) {
        return Ok(Err(format!("`{yn}` holds {label} at index {i}; IMDB labels are 0 (negative) or 1 (positive)")));
    }
    Ok(Ok(Sequences { x, y }))
}

/// The notebook's `vectorize_sequences(sequences, dimension)`: row `i` has a 1 at every
/// index in `sequences[i]` (duplicates once), as CSR. An index outside `0..dimension` is an
/// error, as numpy's `IndexError` would be.
pub fn vectorize_sequences(sequences: &[Vec<i64>], dimension: usize) -> Result<CsrMatrix> {
    let mut m = CsrMatrix::with_cols(dimension);
    let mut row: Vec<u32> = Vec::new();
    for (i, s) in sequences.iter().enumerate() {
        row.clear();
        for &w in s {
            match usize::try_from(w).ok().filter(|&w| w < dimension) {
                Some(w) => row.push(w as u32),
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "sequence {i} holds index {w}, outside 0..{dimension} (raise the dimension or pass num_words)"
                    )));
                }
            }
        }
        row.sort_unstable();
        row.dedup();
        let ones = vec![1.0f32; row.len()];
        m.push_row(&row, &ones).map_err(|e| Error::InvalidArgument(format!("sequence {i}: {e}")))?;
    }
    Ok(m)
}

/// `keras.datasets.mnist.load_data(path)`'s `split`: `x_*` (N×28×28 `uint8`) and `y_*`.
pub fn mnist_load_data(path: &Path, split: Split) -> Result<ImageSet> {
    let (xn, yn) = match split {
        Split::Train => ("x_train", "y_train"),
        Split::Test => ("x_test", "y_test"),
    };
    let mut npz = NpzArchive::open(path)?;
    let bad = |problem: String| Error::Format { path: path.into(), problem };
    // Both headers are checked before any value is read: a label array much larger than
    // the images is refused without being inflated.
    let (hx, hy) = (npz.header(xn)?, npz.header(yn)?);
    // Keras' mnist.npz holds exactly [N, 28, 28] uint8 images: any other shape (zero-width
    // images declaring 2×10⁸ rows, 1×1 "images") is refused by shape, before a value is read.
    let n = match hx.shape[..] {
        [n, 28, 28] if hx.kind == NpyKind::U8 => n,
        _ => {
            return Err(bad(format!(
                "`{xn}` is {}, not uint8 images [N, 28, 28] as in Keras' mnist.npz",
                hx.describe()
            )));
        }
    };
    if n == 0 {
        return Err(bad(format!("`{xn}` holds no images (shape {:?})", hx.shape)));
    }
    if hy.kind == NpyKind::Object || hy.shape != [n] {
        return Err(bad(format!("`{xn}` holds {n} images but `{yn}` is {}, not {n} labels", hy.describe())));
    }
    let NpyArray::U8 { data, .. } = npz.array(xn)? else { unreachable!("`{xn}`'s header says uint8") };
    let digit = |i: usize, v: i64| {
        u8::try_from(v)
            .ok()
            .filter(|&d| d <= 9)
            .ok_or_else(|| bad(format!("`{yn}` holds {v} at index {i}, not a digit 0-9")))
    };
    let labels: Vec<u8> = match npz.array(yn)? {
        NpyArray::U8 { data, .. } => {
            if let Some((i, &l)) = data.iter().enumerate().find(|(_, l)| **l > 9) {
                return Err(digit(i, i64::from(l)).unwrap_err());
            }
            data
        }
        NpyArray::Int { data, .. } => data.iter().enumerate().map(|(i, &v)| digit(i, v)).collect::<Result<_>>()?,
        other => return Err(bad(format!("`{yn}` is {}", other.describe()))),
    };
    if labels.len() != n {
        return Err(bad(format!("{n} images but {} labels", labels.len())));
    }
    let (h, w) = (28, 28);
    let images = ByteMatrix::from_vec(n, h * w, data).map_err(|e| bad(e.to_string()))?;
    Ok(ImageSet { images, labels, height: h, width: w })
}
