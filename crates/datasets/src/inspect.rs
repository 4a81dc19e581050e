//! The library side of `cargo xtask data inspect PATH` and `cargo xtask data vocab ARCHIVE`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use crate::idx::{classify, find_idx_pair, open_maybe_gzip, read_idx, read_idx_pair};
use crate::imdb::{Reviews, check_both_classes, read_aclimdb, scan_archive};
use crate::{Error, OutputMode, Result, Split, TextVectorization, sha256_file};

/// Validates a file, archive or directory and summarises it as JSON (kind, rows, shape,
/// label counts).
///
/// Recognised by content, except CSV by its name (`.csv`, `.csv.gz`): an `.npz` archive
/// (zip magic; its members' shapes and dtypes), a CSV table (rows, numeric and text
/// columns), an IDX file (gzipped or not), a tar(.gz) archive in the aclImdb layout, a
/// directory of IDX files, or an aclImdb directory.
pub fn summarize(path: &Path) -> Result<Value> {
    let meta = kiln_fs::check_file_or_dir(path).map_err(Error::refused)?;
    if meta.is_dir() {
        return summarize_dir(path);
    }
    if is_zip(path)? {
        return crate::inspect_tables::summarize_npz(path);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        return crate::inspect_tables::summarize_csv(path);
    }
    if is_tar(path)? {
        let splits = scan_archive(path, &[Split::Train, Split::Test])?;
        return Ok(json!({
            "kind": "aclImdb",
            "path": path.display().to_string(),
            "sha256": sha256_file(path)?,
            "splits": imdb_splits(path, &splits)?,
        }));
    }
    let arr = read_idx(path)?;
    let rows = arr.dims.first().copied().unwrap_or(0);
    let mut v = json!({
        "kind": match arr.dims.len() { 3 => "idx-images", 1 => "idx-labels", _ => "idx" },
        "path": path.display().to_string(),
        "sha256": sha256_file(path)?,
        "dtype": "u8",
        "rows": rows,
        "shape": arr.dims,
    });
    if arr.dims.len() == 1 {
        v["label_counts"] = counts_json(&crate::label_counts(&arr.data));
    }
    Ok(v)
}

/// The vocabulary of `Keras TextVectorization(max_tokens, output_mode="multi_hot")` adapted
/// on the train split of an aclImdb archive or directory, index 0 (`[UNK]`) first.
pub fn vocabulary(path: &Path, max_tokens: usize) -> Result<Vec<String>> {
    let mut tv = TextVectorization::new(OutputMode::MultiHot, Some(max_tokens))?;
    let reviews = read_aclimdb(path, Split::Train)?;
    tv.adapt(&reviews.texts);
    Ok(tv.vocabulary().to_vec())
}

/// True when the file starts with a zip member's magic (`PK\x03\x04`): an `.npz`.
fn is_zip(path: &Path) -> Result<bool> {
    let mut head = [0u8; 4];
    let mut file = kiln_fs::open_regular(path).map_err(Error::refused)?;
    let n = file.read(&mut head).map_err(|e| Error::Format { path: path.into(), problem: e.to_string() })?;
    Ok(n == 4 && head == *b"PK\x03\x04")
}

/// True when the (possibly gzipped) content carries the `ustar` magic of a tar header.
///
/// Opens regular files only, so a FIFO or a device is refused instead of read forever.
fn is_tar(path: &Path) -> Result<bool> {
    if kiln_fs::check_regular_file(path).map_err(Error::refused)?.len() == 0 {
        return Err(Error::Format { path: path.into(), problem: "empty file (0 bytes)".into() });
    }
    let mut head = Vec::with_capacity(512);
    open_maybe_gzip(path)?
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| Error::Gzip { path: path.into(), detail: e.to_string() })?;
    if head.is_empty() {
        return Err(Error::Format { path: path.into(), problem: "the gzip stream decompresses to 0 bytes".into() });
    }
    Ok(head.len() >= 262 && &head[257..262] == b"ustar")
}

/// `{"0": n0, "1": n1, …}` (label → count).
fn counts_json(counts: &[usize]) -> Value {
    Value::Object(counts.iter().enumerate().map(|(k, &n)| (k.to_string(), json!(n))).collect())
}

/// Per-split IMDB summaries; errors when no split has reviews or one lacks a class.
fn imdb_splits(path: &Path, splits: &BTreeMap<Split, Reviews>) -> Result<Value> {
    if splits.is_empty() {
        return Err(Error::Archive {
            path: path.into(),
            problem: "no aclImdb/{train,test}/{pos,neg}/*.txt reviews".into(),
        });
    }
    let mut out = serde_json::Map::new();
    for (split, r) in splits {
        check_both_classes(path, *split, r)?;
        let [neg, pos] = r.label_counts();
        out.insert(
            split.name().into(),
            json!({
                "rows": r.len(),
                "shape": [r.len()],
                "label_counts": {"neg": neg, "pos": pos},
                "lossy_decoded": r.lossy_decoded,
                "lossy_paths": r.lossy_paths,
            }),
        );
    }
    Ok(Value::Object(out))
}

/// A directory of IDX files or an aclImdb layout.
fn summarize_dir(dir: &Path) -> Result<Value> {
    let names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<_>>()?;
    if names.is_empty() {
        return Err(Error::NoData { path: dir.into(), problem: "empty directory".into() });
    }
    if names.iter().any(|n| classify(&n.to_ascii_lowercase()).is_some()) {
        let mut splits = serde_json::Map::new();
        for split in [Split::Train, Split::Test] {
            if !names.iter().any(|n| classify(&n.to_ascii_lowercase()).is_some_and(|(s, _)| s == split)) {
                continue;
            }
            let (images, labels) = find_idx_pair(dir, split)?;
            let set = read_idx_pair(&images, &labels)?;
            splits.insert(
                split.name().into(),
                json!({
                    "rows": set.len(),
                    "shape": [set.len(), set.height, set.width],
                    "label_counts": counts_json(&set.label_counts()),
                    "images": images.display().to_string(),
                    "labels": labels.display().to_string(),
                }),
            );
        }
        return Ok(json!({"kind": "idx-dir", "path": dir.display().to_string(), "splits": splits}));
    }
    let mut splits = BTreeMap::new();
    for split in [Split::Train, Split::Test] {
        let s = split.name();
        if dir.join(s).is_dir() || dir.join("aclImdb").join(s).is_dir() {
            splits.insert(split, read_aclimdb(dir, split)?);
        }
    }
    if splits.is_empty() {
        let archives: Vec<&String> = names
            .iter()
            .filter(|n| {
                let n = n.to_ascii_lowercase();
                n.starts_with("aclimdb") && (n.ends_with(".tar.gz") || n.ends_with(".tgz") || n.ends_with(".tar"))
            })
            .collect();
        if let [one] = archives.as_slice() {
            return summarize(&dir.join(one.as_str()));
        }
        return Err(Error::NoData {
            path: dir.into(),
            problem: "no IDX files, no aclImdb/{train,test} directories and no single aclImdb*.tar.gz".into(),
        });
    }
    Ok(json!({"kind": "aclImdb", "path": dir.display().to_string(), "splits": imdb_splits(dir, &splits)?}))
}
