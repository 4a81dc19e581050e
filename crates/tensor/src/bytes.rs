//! Raw `u8` matrices (images), scaled to `f32` only when a batch is gathered.

use crate::{Matrix, ShapeError};

/// A row-major `u8` matrix, e.g. 28×28 MNIST digits flattened to 784 columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ByteMatrix {
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl ByteMatrix {
    /// Wraps `data` (row-major) as a `rows × cols` matrix; fails when the length disagrees.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<u8>) -> Result<Self, ShapeError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ShapeError(format!("{} bytes cannot form a {rows}×{cols} matrix", data.len())));
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The bytes, row after row.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Overwrites `out` with rows `idx` as `f32`, each byte divided by `divisor`
    /// (255 for pixels). Division, not multiplication by a reciprocal, matches NumPy's
    /// `x / 255.0` bit for bit.
    pub fn gather_scaled_into(&self, idx: &[usize], divisor: f32, out: &mut Matrix) {
        out.reshape_zeroed(idx.len(), self.cols);
        for (k, &i) in idx.iter().enumerate() {
            out.row_mut(k).iter_mut().zip(self.row(i)).for_each(|(o, &b)| *o = b as f32 / divisor);
        }
    }

    /// The whole matrix as `f32`, each byte divided by `divisor`.
    pub fn to_f32(&self, divisor: f32) -> Matrix {
        let idx: Vec<usize> = (0..self.rows).collect();
        let mut out = Matrix::default();
        self.gather_scaled_into(&idx, divisor, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_scales_selected_rows() {
        let b = ByteMatrix::from_vec(2, 2, vec![0, 255, 51, 102]).unwrap();
        let mut out = Matrix::default();
        b.gather_scaled_into(&[1], 255.0, &mut out);
        assert_eq!(out.as_slice(), &[0.2, 0.4]);
        assert!(ByteMatrix::from_vec(2, 2, vec![0; 3]).is_err());
    }
}
