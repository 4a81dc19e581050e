//! `data inspect` for Keras' `.npz` archives and CSV tables: what each holds, read
//! without materialising it (npz members by header only; CSV columns as running stats).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::idx::open_maybe_gzip;
use crate::npz::{NpyKind, NpzArchive};
use crate::{Error, Result, sha256_file};

/// Distinct values listed for a text column; more are counted, not listed.
const MAX_LISTED_CATEGORIES: usize = 20;

/// The members of an `.npz` archive (`numpy.savez`, Keras' `mnist.npz`, `imdb.npz`): each
/// one's shape and dtype, from its header.
pub(crate) fn summarize_npz(path: &Path) -> Result<Value> {
    let mut archive = NpzArchive::open(path)?;
    let mut arrays = serde_json::Map::new();
    for name in archive.names() {
        let header = archive.header(&name)?;
        let kind = match header.kind {
            NpyKind::U8 => "uint8",
            NpyKind::Int => "integer",
            NpyKind::Object => "object (pickled sequences)",
        };
        arrays.insert(name, json!({ "shape": header.shape, "dtype": header.descr, "read_as": kind }));
    }
    Ok(json!({ "kind": "npz", "path": path.display().to_string(), "sha256": sha256_file(path)?, "arrays": arrays }))
}

/// One column's running summary.
#[derive(Default)]
struct ColumnStats {
    numbers: usize,
    missing: usize,
    non_finite: usize,
    min: f64,
    max: f64,
    text: BTreeSet<String>,
    text_count: usize,
}

/// A CSV table (gzipped or not): rows, and per column whether it is numeric (with its
/// range, missing fields and NaN/inf counts) or text (its distinct values). A ragged row is
/// an error naming its line.
pub(crate) fn summarize_csv(path: &Path) -> Result<Value> {
    let csv_error = |line: Option<u64>, problem: String| Error::Csv { path: path.into(), line, column: None, problem };
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(open_maybe_gzip(path)?);
    let names: Vec<String> =
        reader.headers().map_err(|e| csv_error(Some(1), e.to_string()))?.iter().map(str::to_string).collect();
    let mut stats: Vec<ColumnStats> = names
        .iter()
        .map(|_| ColumnStats { min: f64::INFINITY, max: f64::NEG_INFINITY, ..Default::default() })
        .collect();
    let mut rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(e.position().map(|p| p.line()), e.to_string())),
        }
        rows += 1;
        for (s, field) in stats.iter_mut().zip(record.iter()) {
            let field = field.trim();
            if field.is_empty() || matches!(field, "NA" | "N/A" | "nan" | "NaN" | "null") {
                s.missing += 1;
            } else if let Ok(v) = field.parse::<f64>() {
                if v.is_finite() {
                    s.numbers += 1;
                    s.min = s.min.min(v);
                    s.max = s.max.max(v);
                } else {
                    s.non_finite += 1;
                }
            } else {
                s.text_count += 1;
                if s.text.len() <= MAX_LISTED_CATEGORIES {
                    s.text.insert(field.to_string());
                }
            }
        }
    }
    let columns: Vec<Value> = names
        .iter()
        .zip(&stats)
        .map(|(name, s)| {
            if s.text_count > 0 {
                let listed: Vec<&String> = s.text.iter().take(MAX_LISTED_CATEGORIES).collect();
                json!({ "name": name, "kind": "text", "text_fields": s.text_count, "numeric_fields": s.numbers,
                        "missing": s.missing, "values": listed, "more_values": s.text.len() > MAX_LISTED_CATEGORIES })
            } else {
                let range = if s.numbers > 0 { json!([s.min, s.max]) } else { Value::Null };
                json!({ "name": name, "kind": "numeric", "missing": s.missing, "nan_or_inf": s.non_finite, "range": range })
            }
        })
        .collect();
    Ok(json!({ "kind": "csv", "path": path.display().to_string(), "sha256": sha256_file(path)?, "rows": rows,
               "columns": columns }))
}
