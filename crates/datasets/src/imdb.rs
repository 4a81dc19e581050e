//! IMDB reviews in the Large Movie Review Dataset layout (`aclImdb/{train,test}/{pos,neg}/ID_RATING.txt`),
//! read from `aclImdb_v1.tar.gz` (streamed, never extracted to disk), a plain `.tar`, or an
//! extracted directory.
//!
//! Order is deterministic: [`read_aclimdb`] returns reviews sorted by member path (byte-wise, so
//! every `neg/` review precedes every `pos/` one); [`Reviews::shuffled`] then applies a seeded
//! Fisher–Yates shuffle from `kiln_tensor::Rng::stream(seed, "imdb-order")` (ChaCha8), so the last
//! fraction that `validation_split` holds out contains both classes.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use kiln_tensor::Rng;

use crate::{Error, Result, Split};

/// The named [`Rng`] stream that [`Reviews::shuffled`] draws from.
pub const IMDB_ORDER_STREAM: &str = "imdb-order";

/// Label of a `pos/` review.
pub const POSITIVE: u8 = 1;
/// Label of a `neg/` review.
pub const NEGATIVE: u8 = 0;

/// Movie reviews with their sentiment labels (1 = `pos`, 0 = `neg`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reviews {
    /// Review texts, decoded as UTF-8 (lossily where a file is not valid UTF-8).
    pub texts: Vec<String>,
    /// 1 for a positive review, 0 for a negative one.
    pub labels: Vec<u8>,
    /// Member path of each review, as `aclImdb/train/neg/10001_4.txt`.
    pub paths: Vec<String>,
    /// Number of files that were not valid UTF-8 and were decoded lossily (U+FFFD).
    pub lossy_decoded: usize,
    /// The paths of those files.
    pub lossy_paths: Vec<String>,
}

impl Reviews {
    /// Number of reviews.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// True when there are no reviews.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// `[negatives, positives]`.
    pub fn label_counts(&self) -> [usize; 2] {
        let pos = self.labels.iter().filter(|&&l| l == POSITIVE).count();
        [self.labels.len() - pos, pos]
    }

    /// The same reviews in a seeded random order: Fisher–Yates from the back using
    /// `Rng::stream(seed, "imdb-order")` ([`IMDB_ORDER_STREAM`]), applied to the path-sorted order.
    pub fn shuffled(self, seed: u64) -> Reviews {
        let mut order: Vec<usize> = (0..self.len()).collect();
        Rng::stream(seed, IMDB_ORDER_STREAM).shuffle(&mut order);
        self.permuted(&order)
    }

    /// Rows in the order `order` (a permutation of `0..len`).
    fn permuted(self, order: &[usize]) -> Reviews {
        let Reviews { texts, labels, paths, lossy_decoded, lossy_paths } = self;
        let mut texts: Vec<Option<String>> = texts.into_iter().map(Some).collect();
        let mut paths: Vec<Option<String>> = paths.into_iter().map(Some).collect();
        Reviews {
            texts: order.iter().map(|&i| texts[i].take().unwrap_or_default()).collect(),
            labels: order.iter().map(|&i| labels[i]).collect(),
            paths: order.iter().map(|&i| paths[i].take().unwrap_or_default()).collect(),
            lossy_decoded,
            lossy_paths,
        }
    }

    /// Sorts rows by path (byte-wise); the order [`read_aclimdb`] returns.
    fn sort_by_path(self) -> Reviews {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| self.paths[a].cmp(&self.paths[b]));
        let mut r = self.permuted(&order);
        r.lossy_paths.sort();
        r
    }

    /// Adds one review file's bytes, decoding lossily (and counting it) when not UTF-8.
    fn push(&mut self, path: String, label: u8, bytes: Vec<u8>) {
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                self.lossy_decoded += 1;
                self.lossy_paths.push(path.clone());
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        self.texts.push(text);
        self.labels.push(label);
        self.paths.push(path);
    }
}

/// Largest review accepted, in an archive or a directory alike (real ones are under 14 KB).
pub const MAX_REVIEW_BYTES: u64 = 1 << 20;

/// Most review text one read may hold in all: 128 MiB (the full training and test splits
/// together are 66 MB), so a small archive of highly compressible members cannot fill
/// memory.
pub const MAX_TOTAL_REVIEW_BYTES: u64 = 128 << 20;

/// Counts the review bytes held so far against [`MAX_TOTAL_REVIEW_BYTES`].
fn charge(total: &mut u64, more: usize, path: &Path) -> Result<()> {
    *total += more as u64;
    if *total > MAX_TOTAL_REVIEW_BYTES {
        return Err(Error::Archive {
            path: path.into(),
            problem: format!(
                "holds more than {} MiB of review text; not an aclImdb data set?",
                MAX_TOTAL_REVIEW_BYTES >> 20
            ),
        });
    }
    Ok(())
}

/// Reads one split of aclImdb from `path`, sorted by member path.
///
/// `path` may be an `aclImdb_v1.tar.gz` / `.tgz` / `.tar` archive (streamed), an extracted
/// `aclImdb/` directory, its parent, or a directory holding one `aclImdb*.tar.gz`
/// (like the bundled `data/imdb-5k/`). Both `pos` and `neg` must be present and non-empty.
///
/// One rule for archives and directories: only regular files count as reviews (links,
/// FIFOs and devices are skipped — a review never leads outside the data set), each of at
/// most [`MAX_REVIEW_BYTES`], all together at most [`MAX_TOTAL_REVIEW_BYTES`].
pub fn read_aclimdb(path: &Path, split: Split) -> Result<Reviews> {
    let meta = kiln_fs::check_file_or_dir(path).map_err(Error::refused)?;
    if meta.is_dir() {
        read_dir_layout(path, split)
    } else {
        let mut splits = scan_archive(path, &[split])?;
        let reviews = splits.remove(&split).unwrap_or_default();
        check_both_classes(path, split, &reviews)?;
        Ok(reviews.sort_by_path())
    }
}

/// Streams an archive once, collecting the wanted splits (each sorted by path).
///
/// Missing splits are absent from the map (the caller decides whether that is an error).
pub(crate) fn scan_archive(path: &Path, splits: &[Split]) -> Result<BTreeMap<Split, Reviews>> {
    let file = kiln_fs::open_regular(path).map_err(Error::refused)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let gz = {
        use std::io::BufRead;
        let buf = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        if buf.is_empty() {
            return Err(Error::Format { path: path.into(), problem: "empty file (0 bytes)".into() });
        }
        buf.starts_with(&[0x1f, 0x8b])
    };
    let stream: Box<dyn Read> =
        if gz { Box::new(flate2::bufread::MultiGzDecoder::new(reader)) } else { Box::new(reader) };
    let mut archive = tar::Archive::new(stream);
    let corrupt = |members: usize, e: std::io::Error| Error::Archive {
        path: path.into(),
        problem: if members == 0 {
            format!("not a tar archive, or corrupt or truncated from its first member: {e}")
        } else {
            format!("corrupt or truncated archive (after {members} members): {e}")
        },
    };
    let mut out: BTreeMap<Split, Reviews> = BTreeMap::new();
    let (mut members, mut total) = (0usize, 0u64);
    for entry in archive.entries().map_err(|e| corrupt(0, e))? {
        let mut entry = entry.map_err(|e| corrupt(members, e))?;
        members += 1;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(|e| corrupt(members, e))?.to_string_lossy().replace('\\', "/");
        let Some((split, label)) = review_member(&name) else { continue };
        if !splits.contains(&split) {
            continue;
        }
        // The header's size is only a claim: never reserve more than the data can back.
        let declared = entry.size();
        if declared > MAX_REVIEW_BYTES {
            return Err(Error::Archive {
                path: path.into(),
                problem: format!("member {name} declares {declared} bytes; a review is a text file of a few KB"),
            });
        }
        let mut bytes = Vec::with_capacity(declared.min(1 << 16) as usize);
        entry.read_to_end(&mut bytes).map_err(|e| corrupt(members, e))?;
        charge(&mut total, bytes.len(), path)?;
        out.entry(split).or_default().push(name, label, bytes);
    }
    if members == 0 {
        return Err(Error::Archive { path: path.into(), problem: "not a tar archive, or an empty one".into() });
    }
    Ok(out.into_iter().map(|(s, r)| (s, r.sort_by_path())).collect())
}

/// `…/{train|test}/{pos|neg}/NAME.txt` → (split, label).
fn review_member(name: &str) -> Option<(Split, u8)> {
    let parts: Vec<&str> = name.trim_end_matches('/').rsplit('/').take(3).collect();
    let &[file, label, split] = parts.as_slice() else { return None };
    if !file.ends_with(".txt") {
        return None;
    }
    let label = match label {
        "pos" => POSITIVE,
        "neg" => NEGATIVE,
        _ => return None,
    };
    let split = match split {
        "train" => Split::Train,
        "test" => Split::Test,
        _ => return None,
    };
    Some((split, label))
}

/// Errors unless both classes of `split` were found.
pub(crate) fn check_both_classes(path: &Path, split: Split, r: &Reviews) -> Result<()> {
    let [neg, pos] = r.label_counts();
    let missing: Vec<&str> = [("neg", neg), ("pos", pos)].iter().filter(|(_, n)| *n == 0).map(|(c, _)| *c).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Archive {
        path: path.into(),
        problem: format!(
            "no aclImdb/{s}/{m}/*.txt reviews (found {neg} neg, {pos} pos in {s}); not an aclImdb data set or the wrong split",
            s = split.name(),
            m = missing.join(" or ")
        ),
    })
}

/// Reads an extracted layout, or the single `aclImdb*.tar*` archive inside `dir`.
fn read_dir_layout(dir: &Path, split: Split) -> Result<Reviews> {
    let s = split.name();
    for root in [dir.to_path_buf(), dir.join("aclImdb")] {
        let base = root.join(s);
        if base.join("pos").is_dir() || base.join("neg").is_dir() {
            return read_extracted(dir, &base, split);
        }
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<_>>()?;
    if entries.is_empty() {
        return Err(Error::NoData { path: dir.into(), problem: "empty directory (no aclImdb data)".into() });
    }
    entries.retain(|p| {
        let n = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        n.starts_with("aclimdb") && (n.ends_with(".tar.gz") || n.ends_with(".tgz") || n.ends_with(".tar"))
    });
    entries.sort();
    match entries.as_slice() {
        [one] => read_aclimdb(one, split),
        [] => Err(Error::NoData {
            path: dir.into(),
            problem: format!("no aclImdb/{s}/pos and neg directories and no aclImdb*.tar.gz archive"),
        }),
        many => Err(Error::NoData {
            path: dir.into(),
            problem: format!(
                "ambiguous: several aclImdb archives: {}",
                many.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Reads `base/{neg,pos}/*.txt`; paths are reported as `aclImdb/{split}/{label}/{file}`.
fn read_extracted(dir: &Path, base: &Path, split: Split) -> Result<Reviews> {
    let mut reviews = Reviews::default();
    let mut total = 0u64;
    for (class, label) in [("neg", NEGATIVE), ("pos", POSITIVE)] {
        let class_dir = base.join(class);
        if !class_dir.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&class_dir).map_err(|e| Error::io(&class_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&class_dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".txt") {
                continue;
            }
            // `file_type` does not follow links: a symlinked "review" (which could point
            // anywhere, `/etc/shadow` included) is skipped, as the tar reader skips link
            // members; so are FIFOs and devices.
            let file = entry.path();
            if !entry.file_type().map_err(|e| Error::io(&file, e))?.is_file() {
                continue;
            }
            let bytes = kiln_fs::read_regular(&file, MAX_REVIEW_BYTES).map_err(|e| Error::Archive {
                path: e.path,
                problem: format!("{}; a review is a text file of a few KB", e.message),
            })?;
            charge(&mut total, bytes.len(), dir)?;
            reviews.push(format!("aclImdb/{}/{class}/{name}", split.name()), label, bytes);
        }
    }
    check_both_classes(dir, split, &reviews)?;
    Ok(reviews.sort_by_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_map_to_split_and_label() {
        assert_eq!(review_member("aclImdb/train/pos/1_10.txt"), Some((Split::Train, 1)));
        assert_eq!(review_member("./aclImdb/test/neg/7_2.txt"), Some((Split::Test, 0)));
        assert_eq!(review_member("aclImdb/train/unsup/0_0.txt"), None);
        assert_eq!(review_member("aclImdb/train/urls_pos.txt"), None);
        assert_eq!(review_member("aclImdb/train/pos/readme.md"), None);
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut r = Reviews::default();
        for i in 0..50 {
            r.push(format!("p{i:02}"), (i % 2) as u8, format!("t{i:02}").into_bytes());
        }
        let a = r.clone().shuffled(3);
        assert_eq!(a, r.clone().shuffled(3));
        assert_ne!(a.paths, r.paths);
        assert_ne!(a.paths, r.clone().shuffled(4).paths);
        for (p, t) in a.paths.iter().zip(&a.texts) {
            assert_eq!(p[1..], t[1..]);
        }
        assert_eq!(a.sort_by_path(), r);
    }
}
