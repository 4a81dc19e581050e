//! `predict`'s `--input`: a JSON list of samples parsed straight into one flat `f32`
//! buffer, each checked (shape, finite numbers) as it is read. A sample is a flat row of
//! the model's input width, or a nested list in its input shape (`[28][28][1]`). Memory is the values kiln
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

/// Reads `path` as a list of samples of finite float32 numbers: flat rows of exactly
/// `dims.product()` values, or lists nested in `dims` (row-major, as Keras' arrays are).
/// Errors name the file and the first bad row (and column).
pub fn read_rows(path: &Path, dims: &[usize]) -> anyhow::Result<Matrix> {
    let width = dims.iter().product();
    let file = kiln_fs::open_regular(path)?;
    let len = file.metadata().with_context(|| format!("{}: reading its size", path.display()))?.len();
    if len > MAX_INPUT_BYTES {
        bail!("{}: {len} bytes, more than the {MAX_INPUT_BYTES} `predict` reads", path.display());
    }
    // `take` bounds a file that grows while it is read.
    let reader = BufReader::new(file.take(MAX_INPUT_BYTES));
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut values = Vec::new();
    let rows = Rows { dims, width, values: &mut values }
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
    dims: &'a [usize],
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
        let (dims, width) = (self.dims, self.width);
        while seq.next_element_seed(Row { index: row, dims, width, values: &mut *self.values })?.is_some() {
            row += 1;
        }
        Ok(row)
    }
}

/// One sample: exactly `width` finite float32 numbers, flat or nested in `dims`, pushed
/// onto `values`.
struct Row<'a> {
    index: usize,
    dims: &'a [usize],
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
        let (i, width, dims) = (self.index, self.width, self.dims);
        let start = self.values.len();
        let mut n = 0;
        // The first element says which form the sample takes: a number (flat) or a list
        // (nested in `dims`); every other element must take the same form.
        let mut nested = None;
        while let Some(()) = seq.next_element_seed(Elem {
            row: i,
            at: vec![n],
            // One entry of the first axis: the rest of the shape (ignored by a flat row).
            dims: &dims[1..],
            nested: &mut nested,
            values: &mut *self.values,
        })? {
            n += 1;
            if nested == Some(true) && n > dims[0] {
                return Err(de::Error::custom(format!(
                    "row {i} has more than {} entries on its first axis, the model takes {dims:?}",
                    dims[0]
                )));
            }
            if nested != Some(true) && n > width {
                return Err(de::Error::custom(format!(
                    "row {i} has more than {width} values, the model takes {width}"
                )));
            }
        }
        let got = self.values.len() - start;
        if nested == Some(true) && n != dims[0] {
            return Err(de::Error::custom(format!(
                "row {i} has {n} entries on its first axis, the model takes {dims:?}"
            )));
        }
        if got != width {
            return Err(de::Error::custom(format!("row {i} has {got} values, the model takes {width}")));
        }
        Ok(())
    }
}

/// An element of a sample: a number, or (nested) a list in `dims`. `nested` records the
/// form of the sample's first element, which the others must share.
struct Elem<'a> {
    row: usize,
    at: Vec<usize>,
    dims: &'a [usize],
    nested: &'a mut Option<bool>,
    values: &'a mut Vec<f32>,
}

impl Elem<'_> {
    fn form<E: de::Error>(&mut self, list: bool) -> Result<(), E> {
        match *self.nested {
            None => {
                *self.nested = Some(list);
                Ok(())
            }
            Some(was) if was == list => Ok(()),
            Some(_) => Err(E::custom(format!("row {} mixes numbers and lists at {:?}", self.row, self.at))),
        }
    }

    fn number<E: de::Error>(mut self, x: f64) -> Result<(), E> {
        if self.at.len() == 1 {
            self.form(false)?;
        } else if !self.dims.is_empty() {
            return Err(E::custom(format!(
                "row {}, entry {:?}: a number where a list was expected",
                self.row, self.at
            )));
        }
        let cell = Cell { row: self.row, column: self.values.len() };
        self.values.push(cell.check(x)?);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Elem<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Elem<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at[..] {
            [column] => write!(f, "a number or a list at row {}, column {column}", self.row),
            _ => write!(f, "a number at row {}, entry {:?}", self.row, self.at),
        }
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<(), E> {
        self.number(x)
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<(), E> {
        self.number(x as f64)
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<(), E> {
        self.number(x as f64)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.at.len() == 1 {
            self.form(true)?;
        }
        let Some((&len, rest)) = self.dims.split_first() else {
            return Err(de::Error::custom(format!(
                "row {}, entry {:?}: a list where a number was expected",
                self.row, self.at
            )));
        };
        let mut k = 0;
        loop {
            let mut at = self.at.clone();
            at.push(k);
            let elem = Elem { row: self.row, at, dims: rest, nested: &mut *self.nested, values: &mut *self.values };
            if seq.next_element_seed(elem)?.is_none() {
                break;
            }
            k += 1;
            if k > len {
                return Err(de::Error::custom(format!(
                    "row {}, entry {:?}: more than {len} entries",
                    self.row, self.at
                )));
            }
        }
        if k != len {
            return Err(de::Error::custom(format!("row {}, entry {:?}: {k} entries, not {len}", self.row, self.at)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str, dims: &[usize]) -> anyhow::Result<Matrix> {
        let path = std::env::temp_dir().join(format!("kiln-rows-{}-{}.json", std::process::id(), json.len()));
        std::fs::write(&path, json).unwrap();
        let out = read_rows(&path, dims);
        std::fs::remove_file(&path).unwrap();
        out
    }

    #[test]
    fn samples_may_be_flat_or_nested_in_the_input_shape() {
        let flat = read("[[1, 2, 3, 4, 5, 6]]", &[2, 3]).unwrap();
        let nested = read("[[[1, 2, 3], [4, 5, 6]]]", &[2, 3]).unwrap();
        assert_eq!(flat, nested);
        assert_eq!(nested.as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let err = |json: &str| read(json, &[2, 3]).unwrap_err().to_string();
        assert!(err("[[[1, 2, 3], [4, 5]]]").contains("2 entries, not 3"));
        assert!(err("[[[1, 2, 3]]]").contains("1 entries on its first axis"));
        assert!(err("[[1, [2, 3]]]").contains("mixes numbers and lists"));
        assert!(err("[[[1, 2, [3]], [4, 5, 6]]]").contains("a list where a number was expected"));
        assert!(err("[[1, 2, 3, 4, 5]]").contains("row 0 has 5 values"));
        assert!(read("[[[1], [2]]]", &[2]).unwrap_err().to_string().contains("a list where a number"));
    }
}
