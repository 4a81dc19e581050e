//! Integer token ids, one sequence per row: `[samples, time]` as `u32`, 4 bytes an id
//! (never `f32`, which loses ids above 2²⁴).

use crate::ShapeError;

/// A row-major matrix of token ids (Keras' integer inputs to `Embedding`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMatrix {
    rows: usize,
    cols: usize,
    data: Vec<u32>,
}

/// A borrowed block of id rows.
#[derive(Debug, Clone, Copy)]
pub struct IdView<'a> {
    /// Number of rows (samples).
    pub rows: usize,
    /// Ids per row (timesteps).
    pub cols: usize,
    /// The ids, row after row.
    pub data: &'a [u32],
}

impl IdMatrix {
    /// Wraps row-major ids; fails when the length disagrees with the shape.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<u32>) -> Result<Self, ShapeError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ShapeError(format!("{} ids cannot form a {rows}×{cols} matrix", data.len())));
        }
        Ok(Self { rows, cols, data })
    }

    /// Ids from signed values (as Keras' arrays hold them), refusing a negative one by
    /// row, column and value.
    pub fn from_signed(rows: usize, cols: usize, values: &[i64]) -> Result<Self, ShapeError> {
        let mut data = Vec::with_capacity(values.len());
        for (k, &v) in values.iter().enumerate() {
            let id = u32::try_from(v).map_err(|_| {
                ShapeError(format!(
                    "row {}, column {}: token id {v} is not in 0..{}",
                    k / cols.max(1),
                    k % cols.max(1),
                    u32::MAX
                ))
            })?;
            data.push(id);
        }
        Self::from_vec(rows, cols, data)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Ids per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// All ids, row-major.
    pub fn as_slice(&self) -> &[u32] {
        &self.data
    }

    /// The whole matrix as a view.
    pub fn view(&self) -> IdView<'_> {
        IdView { rows: self.rows, cols: self.cols, data: &self.data }
    }

    /// Reshapes to `rows × cols` for reuse as a batch buffer: the allocation only grows.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, 0);
    }

    /// Row `i`, mutably.
    pub fn row_mut(&mut self, i: usize) -> &mut [u32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The first id `≥ limit`, as `(row, column, id)`.
    pub fn first_at_least(&self, limit: u32) -> Option<(usize, usize, u32)> {
        let k = self.data.iter().position(|&id| id >= limit)?;
        Some((k / self.cols, k % self.cols, self.data[k]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_shape_and_refuse_negatives_by_position() {
        let m = IdMatrix::from_signed(2, 3, &[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!((m.row(1), m.first_at_least(5)), (&[4, 5, 6][..], Some((1, 1, 5))));
        let err = IdMatrix::from_signed(2, 2, &[0, 1, -3, 2]).unwrap_err().0;
        assert!(err.contains("row 1, column 0") && err.contains("-3"), "{err}");
        assert!(IdMatrix::from_vec(2, 2, vec![0; 3]).is_err());
    }
}
