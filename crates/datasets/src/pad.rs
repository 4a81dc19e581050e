//! Keras' `pad_sequences` (`keras/src/utils/sequence_utils.py`): variable-length id
//! sequences to one `[samples, maxlen]` matrix of token ids.

use kiln_tensor::IdMatrix;

use crate::{Error, Result};

/// Which end of a sequence padding goes to, or truncation cuts from (Keras' `"pre"` /
/// `"post"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// The beginning (Keras' default for both).
    #[default]
    Pre,
    /// The end.
    Post,
}

/// `pad_sequences`' arguments, with Keras' defaults: `maxlen` the longest sequence,
/// `padding` and `truncating` `Pre`, `value` 0. The output is token ids (Keras' default
/// `dtype="int32"`, kept as `u32`), so `value` is an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PadOptions {
    /// Length of every output row (`None`: the longest input sequence).
    pub maxlen: Option<usize>,
    /// Where shorter sequences are padded.
    pub padding: Side,
    /// Where longer sequences are cut.
    pub truncating: Side,
    /// The padding id.
    pub value: u32,
}

/// Pads or truncates each sequence to `maxlen` ids, as Keras does: `truncating = Pre` keeps
/// the last `maxlen` ids (`s[-maxlen:]`), `Post` the first ones; `padding = Pre` puts the
/// ids at the end of the row (`x[i, -len:]`), `Post` at its start; everything else is
/// `value`. An empty sequence is a row of `value`. Refused, naming the sequence and the
/// position: a negative id, or one past `u32` (`u32` ids are what `Embedding` reads).
///
/// ```
/// use kiln_datasets::{PadOptions, Side, pad_sequences};
///
/// let x = pad_sequences(&[vec![1, 2, 3], vec![4]], &PadOptions { maxlen: Some(2), ..PadOptions::default() })?;
/// assert_eq!(x.as_slice(), &[2, 3, 0, 4]);
/// let x = pad_sequences(&[vec![1, 2, 3], vec![4]], &PadOptions { padding: Side::Post, ..PadOptions::default() })?;
/// assert_eq!(x.as_slice(), &[1, 2, 3, 4, 0, 0]);
/// # Ok::<(), kiln_datasets::Error>(())
/// ```
pub fn pad_sequences<S, T>(sequences: &[S], opts: &PadOptions) -> Result<IdMatrix>
where
    S: AsRef<[T]>,
    T: Copy + Into<i64>,
{
    let maxlen = match opts.maxlen {
        Some(0) => return Err(Error::InvalidArgument("pad_sequences: `maxlen` must be at least 1".into())),
        Some(m) => m,
        None => sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0),
    };
    let rows = sequences.len();
    let cells = rows
        .checked_mul(maxlen)
        .ok_or_else(|| Error::InvalidArgument(format!("pad_sequences: {rows} × {maxlen} ids overflow")))?;
    // A huge `maxlen` is an error to report (NumPy raises MemoryError), not an abort.
    let mut out = Vec::new();
    out.try_reserve_exact(cells)
        .map_err(|_| Error::InvalidArgument(format!("pad_sequences: {rows} × {maxlen} ids do not fit in memory")))?;
    out.resize(cells, opts.value);
    for (i, s) in sequences.iter().enumerate() {
        let s = s.as_ref();
        let keep = s.len().min(maxlen);
        let kept = match opts.truncating {
            Side::Pre => &s[s.len() - keep..],
            Side::Post => &s[..keep],
        };
        let row = &mut out[i * maxlen..(i + 1) * maxlen];
        let start = match opts.padding {
            Side::Pre => maxlen - keep,
            Side::Post => 0,
        };
        for (k, &id) in kept.iter().enumerate() {
            let id: i64 = id.into();
            row[start + k] = u32::try_from(id).map_err(|_| {
                let position = k + match opts.truncating {
                    Side::Pre => s.len() - keep,
                    Side::Post => 0,
                };
                Error::InvalidArgument(format!(
                    "pad_sequences: sequence {i}, position {position}: id {id} is not a token id (0 to {})",
                    u32::MAX
                ))
            })?;
        }
    }
    IdMatrix::from_vec(rows, maxlen, out).map_err(|e| Error::InvalidArgument(e.0))
}
