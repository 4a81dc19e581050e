//! `TextVectorization`: a byte-exact port of `keras.layers.TextVectorization` with
//! `standardize="lower_and_strip_punctuation"` and `split="whitespace"` (Keras 3.15).
//!
//! Rules (each checked against Keras in the test fixtures):
//! 1. **Lowercase ASCII only** (`tf.strings.lower`): `A`–`Z` → `a`–`z`; `À`, `Σ` stay.
//! 2. **Delete** the 32 ASCII punctuation characters ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``
//!    (replaced by nothing: `don't` → `dont`, `10/10` → `1010`); other punctuation stays.
//! 3. **Split on runs of ASCII whitespace** (space, `\t`, `\n`, `\v`, `\f`, `\r`); no empty tokens;
//!    Unicode spaces do not split.
//! 4. `adapt` counts **every occurrence** and orders tokens by count descending, ties by the
//!    token's UTF-8 bytes **descending** (`np.lexsort((tokens, counts))[::-1]`), keeping
//!    `max_tokens` minus the reserved entries.
//! 5. Reserved entries: `[UNK]` at 0 for `multi_hot`/`count`; `""` (padding) at 0 and `[UNK]` at 1
//!    for `int`. An out-of-vocabulary token maps to `[UNK]`.
//!
//! ```
//! use kiln_datasets::{OutputMode, TextVectorization};
//!
//! let mut tv = TextVectorization::new(OutputMode::MultiHot, Some(4)).unwrap();
//! tv.adapt(["b a c a b c d"]);
//! assert_eq!(tv.vocabulary(), ["[UNK]", "c", "b", "a"]);
//! let x = tv.multi_hot(["A, b! zebra"]);
//! assert_eq!(x.row(0).0, &[0, 2, 3]); // [UNK] (zebra), b, a
//! ```

use std::collections::HashMap;

use kiln_tensor::CsrMatrix;

use crate::{Error, Result};

/// The out-of-vocabulary token.
pub const OOV_TOKEN: &str = "[UNK]";

/// What the layer outputs; it also fixes the reserved vocabulary entries (as in Keras).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Token indices; vocabulary starts `["", "[UNK]", …]` (0 = padding).
    Int,
    /// 1.0 for each vocabulary entry present in the document; vocabulary starts `["[UNK]", …]`.
    MultiHot,
    /// Occurrence counts per vocabulary entry; vocabulary starts `["[UNK]", …]`.
    Count,
}

impl OutputMode {
    /// The vocabulary entries that precede the learned tokens.
    pub fn reserved(self) -> &'static [&'static str] {
        match self {
            OutputMode::Int => &["", OOV_TOKEN],
            OutputMode::MultiHot | OutputMode::Count => &[OOV_TOKEN],
        }
    }

    /// Index of `[UNK]`.
    pub fn oov_index(self) -> u32 {
        self.reserved().len() as u32 - 1
    }
}

/// Keras-exact `TextVectorization` (standardize, split, adapt, encode); see the module docs.
#[derive(Debug, Clone)]
pub struct TextVectorization {
    mode: OutputMode,
    max_tokens: Option<usize>,
    vocabulary: Vec<String>,
    index: HashMap<Box<[u8]>, u32>,
}

impl TextVectorization {
    /// A layer with `max_tokens` vocabulary entries at most (reserved ones included, as in
    /// Keras), or unlimited with `None`. Fails when `max_tokens` leaves no room past the reserved
    /// entries (Keras raises for that too).
    pub fn new(mode: OutputMode, max_tokens: Option<usize>) -> Result<Self> {
        let reserved = mode.reserved().len();
        if let Some(n) = max_tokens
            && n <= reserved
        {
            return Err(Error::InvalidArgument(format!(
                "max_tokens = {n} must exceed the {reserved} reserved vocabulary entries of {mode:?} mode"
            )));
        }
        let mut tv = Self { mode, max_tokens, vocabulary: Vec::new(), index: HashMap::new() };
        tv.set_learned(Vec::new());
        Ok(tv)
    }

    /// The output mode.
    pub fn mode(&self) -> OutputMode {
        self.mode
    }

    /// Learns the vocabulary from `texts`, replacing any previous one (Keras `adapt`); texts
    /// with no token at all leave the vocabulary as it was, as in Keras.
    pub fn adapt<I, S>(&mut self, texts: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut counts: HashMap<Box<[u8]>, u64> = HashMap::new();
        let mut buf = Vec::new();
        for text in texts {
            for_each_token(text.as_ref(), &mut buf, |tok| match counts.get_mut(tok) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(tok.into(), 1);
                }
            });
        }
        // Keras' `finalize_state` returns when the texts held no token: an earlier
        // vocabulary stays (index_lookup.py, `if self.token_counts.size() == 0`).
        if counts.is_empty() {
            return;
        }
        let mut ranked: Vec<(u64, Box<[u8]>)> = counts.into_iter().map(|(t, c)| (c, t)).collect();
        // Count descending, then token bytes descending: Keras' `np.lexsort((tokens, counts))[::-1]`.
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let keep = self.max_tokens.map_or(ranked.len(), |n| n - self.mode.reserved().len());
        ranked.truncate(keep);
        let learned = ranked
            .into_iter()
            .map(|(_, t)| String::from_utf8(t.into_vec()).expect("tokens are cut from valid UTF-8 at ASCII bytes"))
            .collect();
        self.set_learned(learned);
    }

    /// Installs learned tokens (most frequent first) after the reserved entries.
    fn set_learned(&mut self, learned: Vec<String>) {
        self.vocabulary = self.mode.reserved().iter().map(|s| s.to_string()).chain(learned).collect();
        let skip = self.mode.reserved().len();
        self.index =
            self.vocabulary[skip..].iter().enumerate().map(|(i, t)| (t.as_bytes().into(), (i + skip) as u32)).collect();
    }

    /// The vocabulary, index 0 first (Keras `get_vocabulary()`).
    pub fn vocabulary(&self) -> &[String] {
        &self.vocabulary
    }

    /// Number of vocabulary entries (the width of `multi_hot` / `count` rows).
    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// The vocabulary index of each token of `text`; out-of-vocabulary tokens map to `[UNK]`.
    fn indices(&self, text: &str, buf: &mut Vec<u8>, out: &mut Vec<u32>) {
        out.clear();
        let oov = self.mode.oov_index();
        for_each_token(text, buf, |tok| out.push(self.index.get(tok).copied().unwrap_or(oov)));
    }

    /// One multi-hot row per text (1.0 for each vocabulary entry present), as CSR.
    pub fn multi_hot<I, S>(&self, texts: I) -> CsrMatrix
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.bag(texts, false)
    }

    /// One row of occurrence counts per text, as CSR (`[UNK]` counts the OOV tokens).
    pub fn count<I, S>(&self, texts: I) -> CsrMatrix
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.bag(texts, true)
    }

    /// Shared body of `multi_hot` and `count`.
    fn bag<I, S>(&self, texts: I, counts: bool) -> CsrMatrix
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut m = CsrMatrix::with_cols(self.vocabulary.len());
        let (mut buf, mut idx, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for text in texts {
            self.indices(text.as_ref(), &mut buf, &mut idx);
            idx.sort_unstable();
            cols.clear();
            vals.clear();
            for &j in &idx {
                if cols.last() == Some(&j) {
                    *vals.last_mut().expect("vals tracks cols") += 1.0;
                } else {
                    cols.push(j);
                    vals.push(1.0f32);
                }
            }
            if !counts {
                vals.fill(1.0);
            }
            m.push_row(&cols, &vals).expect("sorted, deduplicated indices below the vocabulary size");
        }
        m
    }

    /// Token-index sequences, one per text, unpadded (Keras `output_mode="int"` with
    /// `output_sequence_length=None`). Use [`OutputMode::Int`] so that 0 stays the padding index.
    pub fn int_sequences<I, S>(&self, texts: I) -> Vec<Vec<u32>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut buf = Vec::new();
        texts
            .into_iter()
            .map(|t| {
                let mut out = Vec::new();
                self.indices(t.as_ref(), &mut buf, &mut out);
                out
            })
            .collect()
    }
}

/// The 32 ASCII punctuation characters Keras deletes.
pub const PUNCTUATION: &[u8; 32] = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Byte classes: 1 = punctuation (deleted), 2 = ASCII whitespace (separator).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < PUNCTUATION.len() {
        t[PUNCTUATION[i] as usize] = 1;
        i += 1;
    }
    let ws = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];
    let mut i = 0;
    while i < ws.len() {
        t[ws[i] as usize] = 2;
        i += 1;
    }
    t
};

/// Calls `f` on each token of `text` (standardized, then split), reusing `buf`.
///
/// Works on bytes: every byte the rules touch is ASCII, and ASCII bytes never occur inside a
/// multi-byte UTF-8 sequence, so tokens stay valid UTF-8.
fn for_each_token(text: &str, buf: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
    buf.clear();
    for &b in text.as_bytes() {
        match CLASS[b as usize] {
            0 => buf.push(b.to_ascii_lowercase()),
            1 => {}
            _ => {
                if !buf.is_empty() {
                    f(buf);
                    buf.clear();
                }
            }
        }
    }
    if !buf.is_empty() {
        f(buf);
        buf.clear();
    }
}

/// Keras' standardization: ASCII lowercase, then delete the 32 ASCII punctuation characters.
pub fn standardize(text: &str) -> String {
    let bytes: Vec<u8> = text.bytes().filter(|&b| CLASS[b as usize] != 1).map(|b| b.to_ascii_lowercase()).collect();
    String::from_utf8(bytes).expect("only ASCII bytes were removed or changed")
}

/// Keras' standardization followed by its whitespace split.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, &mut Vec::new(), |t| out.push(String::from_utf8_lossy(t).into_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_break_by_bytes_descending() {
        let mut tv = TextVectorization::new(OutputMode::MultiHot, None).unwrap();
        tv.adapt(["apple zebra Mango 10 9 é z"]);
        assert_eq!(tv.vocabulary(), ["[UNK]", "é", "zebra", "z", "mango", "apple", "9", "10"]);
    }

    #[test]
    fn adapting_to_texts_without_tokens_keeps_the_vocabulary() {
        // Keras 3.15.1: adapt(["a b b"]), then adapt(["", "!!!"]) → ['[UNK]', 'b', 'a'].
        let mut tv = TextVectorization::new(OutputMode::MultiHot, None).unwrap();
        tv.adapt(["a b b"]);
        tv.adapt(["", "!!!"]);
        assert_eq!(tv.vocabulary(), ["[UNK]", "b", "a"]);
        tv.adapt(["c"]);
        assert_eq!(tv.vocabulary(), ["[UNK]", "c"]);
    }

    #[test]
    fn int_mode_reserves_padding_and_counts_mode_counts() {
        let mut tv = TextVectorization::new(OutputMode::Int, Some(3)).unwrap();
        tv.adapt(["a a b b c c d"]);
        assert_eq!(tv.vocabulary(), ["", "[UNK]", "c"]);
        assert_eq!(tv.int_sequences(["c x c", ""]), vec![vec![2, 1, 2], vec![]]);

        let mut tv = TextVectorization::new(OutputMode::Count, None).unwrap();
        tv.adapt(["a a b"]);
        let m = tv.count(["b a. A? q q q"]);
        assert_eq!(m.row(0), (&[0u32, 1, 2][..], &[3.0f32, 2.0, 1.0][..]));
        assert!(TextVectorization::new(OutputMode::Int, Some(2)).is_err());
    }

    #[test]
    fn standardize_only_touches_ascii() {
        assert_eq!(standardize("ÀB, c'D—é"), "Àb cd—é");
        assert_eq!(tokenize(" a\u{a0}b\x0bc  "), vec!["a\u{a0}b", "c"]);
    }
}
