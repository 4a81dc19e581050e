//! `predict`'s `--input`: a JSON list of rows parsed straight into one flat `f32` buffer,
//! each row checked (width, finite numbers) as it is read. Memory is the values kiln
//! keeps, never a reservation from a count the data has not backed, nor a tree of JSON
//! values 19× the file.

use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use kiln_tensor::Matrix;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};

/// Largest `--input` file read (a list of rows as JSON).
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Reads `path` as a list of rows of finite float32 numbers, each exactly `width` wide.
/// Errors name the file and the first bad row (and column).
pub fn read_rows(path: &Path, width: usize) -> anyhow::Result<Matrix> {
    let file = kiln_fs::open_regular(path)?;
    let len = file.metadata().with_context(|| format!("{}: reading its size", path.display()))?.len();
    if len > MAX_INPUT_BYTES {
        bail!("{}: {len} bytes, more than the {MAX_INPUT_BYTES} `predict` reads", path.display());
    }
    // `take` bounds a file that grows while it is read.
    let reader = BufReader::new(file.take(MAX_INPUT_BYTES));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut values = Vec::new();
    let rows = Rows { width, values: &mut values }
        .deserialize(&mut de)
        .and_then(|rows| de.end().map(|()| rows))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if rows == 0 {
        bail!("{}: the list of rows is empty", path.display());
    }
    Ok(Matrix::from_vec(rows, width, values)?)
}

/// The outer list: each element is a row appended to `values`; yields the row count.
struct Rows<'a> {
    width: usize,
    values: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of rows (a JSON array of arrays of numbers)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut row = 0;
        while seq.next_element_seed(Row { index: row, width: self.width, values: &mut *self.values })?.is_some() {
            row += 1;
        }
        Ok(row)
    }
}

/// One row: exactly `width` finite float32 numbers, pushed onto `values`.
struct Row<'a> {
    index: usize,
    width: usize,
    values: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} as a list of {} numbers", self.index, self.width)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (i, width) = (self.index, self.width);
        let mut n = 0;
        while let Some(x) = seq.next_element_seed(Cell { row: i, column: n })? {
            if n == width {
                return Err(de::Error::custom(format!(
                    "row {i} has more than {width} values, the model takes {width}"
                )));
            }
            self.values.push(x);
            n += 1;
        }
        if n != width {
            return Err(de::Error::custom(format!("row {i} has {n} values, the model takes {width}")));
        }
        Ok(())
    }
}

/// One value: a number that is finite as a float32.
struct Cell {
    row: usize,
    column: usize,
}

impl Cell {
    fn check<E: de::Error>(&self, x: f64) -> Result<f32, E> {
        if x.is_finite() && (x as f32).is_finite() {
            Ok(x as f32)
        } else {
            Err(E::custom(format!("row {}, column {} is {x}, not a finite float32 number", self.row, self.column)))
        }
    }
}

impl<'de> DeserializeSeed<'de> for Cell {
    type Value = f32;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<f32, D::Error> {
        d.deserialize_f64(self)
    }
}

impl<'de> Visitor<'de> for Cell {
    type Value = f32;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a number at row {}, column {}", self.row, self.column)
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<f32, E> {
        self.check(x)
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<f32, E> {
        self.check(x as f64)
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<f32, E> {
        self.check(x as f64)
    }
}
