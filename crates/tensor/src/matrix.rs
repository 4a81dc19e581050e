//! The owned row-major matrix and its borrowed views.

use serde::{Deserialize, Serialize};

use crate::ShapeError;

/// A row-major `f32` matrix: `rows × cols` values, row `i` at `data[i*cols .. (i+1)*cols]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// A borrowed, contiguous, row-major view of `rows × cols` values.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// The values, row after row.
    pub data: &'a [f32],
}

/// A mutable, contiguous, row-major view of `rows × cols` values.
#[derive(Debug)]
pub struct ViewMut<'a> {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// The values, row after row.
    pub data: &'a mut [f32],
}

impl Matrix {
    /// A `rows × cols` matrix of zeros, asking for 2 MiB pages when large ([`huge_pages`](crate::huge_pages)).
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: crate::huge_pages::zeroed(rows * cols) }
    }

    /// Wraps `data` (row-major) as a `rows × cols` matrix; fails when the length disagrees.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, ShapeError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ShapeError(format!("{} values cannot form a {rows}×{cols} matrix", data.len())));
        }
        Ok(Self { rows, cols, data })
    }

    /// Builds a matrix from equally long rows; fails on ragged input.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Result<Self, ShapeError> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != cols {
                return Err(ShapeError(format!("row {i} has {} values, row 0 has {cols}", r.len())));
            }
            data.extend_from_slice(r);
        }
        Ok(Self { rows: rows.len(), cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The values, row after row.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The values, row after row, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the matrix and returns its row-major values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i` as a mutable slice.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The value at row `i`, column `j`.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.cols + j]
    }

    /// A borrowed view of the whole matrix.
    pub fn view(&self) -> View<'_> {
        View { rows: self.rows, cols: self.cols, data: &self.data }
    }

    /// A mutable view of the whole matrix.
    pub fn view_mut(&mut self) -> ViewMut<'_> {
        ViewMut { rows: self.rows, cols: self.cols, data: &mut self.data }
    }

    /// Changes the number of rows, keeping the columns; grows the buffer only when needed,
    /// so a per-batch buffer reaches its largest size once and is then reused.
    pub fn resize_rows(&mut self, rows: usize) {
        self.rows = rows;
        self.data.resize(rows * self.cols, 0.0);
    }

    /// Reshapes to `rows × cols`, reusing the allocation; values are left unspecified
    /// (callers overwrite them), so no memory is touched when the size does not grow.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, 0.0);
    }

    /// Reshapes to `rows × cols`, reusing the allocation; new values are zero.
    pub fn reshape_zeroed(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.clear();
        self.data.resize(rows * cols, 0.0);
    }

    /// Sets every value to `value`.
    pub fn fill(&mut self, value: f32) {
        self.data.fill(value);
    }

    /// Copies rows `start..end` into a new matrix.
    pub fn slice_rows(&self, start: usize, end: usize) -> Matrix {
        Matrix { rows: end - start, cols: self.cols, data: self.data[start * self.cols..end * self.cols].to_vec() }
    }
}

impl<'a> View<'a> {
    /// Wraps a row-major slice; fails when the length disagrees with the shape.
    pub fn new(rows: usize, cols: usize, data: &'a [f32]) -> Result<Self, ShapeError> {
        if rows * cols != data.len() {
            return Err(ShapeError(format!("{} values cannot form a {rows}×{cols} view", data.len())));
        }
        Ok(Self { rows, cols, data })
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The same contiguous values read as `rows·cols / width` rows of `width`: a batch of
    /// `[t, f]` samples as `[batch·t, f]`. Panics when `width` does not divide a row.
    pub fn regroup(self, width: usize) -> View<'a> {
        assert!(
            width > 0 && self.cols.is_multiple_of(width),
            "cannot regroup rows of {} as rows of {width}",
            self.cols
        );
        View { rows: self.rows * (self.cols / width), cols: width, data: self.data }
    }

    /// The faer view of the same memory (row-major strides).
    pub(crate) fn as_faer(&self) -> faer::MatRef<'a, f32> {
        faer::MatRef::from_row_major_slice(self.data, self.rows, self.cols)
    }
}

impl<'a> ViewMut<'a> {
    /// Wraps a mutable row-major slice; fails when the length disagrees with the shape.
    pub fn new(rows: usize, cols: usize, data: &'a mut [f32]) -> Result<Self, ShapeError> {
        if rows * cols != data.len() {
            return Err(ShapeError(format!("{} values cannot form a {rows}×{cols} view", data.len())));
        }
        Ok(Self { rows, cols, data })
    }

    /// The same contiguous values read as rows of `width` (see [`View::regroup`]).
    pub fn regroup(self, width: usize) -> ViewMut<'a> {
        assert!(
            width > 0 && self.cols.is_multiple_of(width),
            "cannot regroup rows of {} as rows of {width}",
            self.cols
        );
        ViewMut { rows: self.rows * (self.cols / width), cols: width, data: self.data }
    }

    /// The faer view of the same memory (row-major strides).
    pub(crate) fn into_faer(self) -> faer::MatMut<'a, f32> {
        faer::MatMut::from_row_major_slice_mut(self.data, self.rows, self.cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_rejects_wrong_length() {
        assert!(Matrix::from_vec(2, 3, vec![0.0; 5]).is_err());
        assert!(Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]).is_err());
    }

    #[test]
    fn rows_are_contiguous() {
        let m = Matrix::from_rows(&[[1.0, 2.0], [3.0, 4.0]]).unwrap();
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.get(0, 1), 2.0);
        assert_eq!(m.slice_rows(1, 2).as_slice(), &[3.0, 4.0]);
    }

    #[test]
    fn resize_rows_keeps_columns() {
        let mut m = Matrix::zeros(4, 3);
        m.resize_rows(2);
        assert_eq!(m.shape(), (2, 3));
        assert_eq!(m.as_slice().len(), 6);
    }
}
