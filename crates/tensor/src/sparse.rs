//! CSR sparse matrices: the batch type for multi-hot text (about 1 % dense).

use crate::pool::{for_each_part, for_row_blocks, row_blocks, split_ranges};
use crate::sparse_blocks::{Dest, MIN_COLUMNS, blocked_sums, blocked_sums_packing};
use crate::{Accumulate, PackedColumns, Parallelism, ShapeError, View, ViewMut};

mod nonzeros;

/// Batches with fewer rows are multiplied on one thread.
const PARALLEL_MIN_ROWS: usize = 64;

/// A compressed-sparse-row `f32` matrix: row `i` holds the entries
/// `indices[indptr[i]..indptr[i+1]]` (strictly increasing columns) with their `values`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsrMatrix {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl CsrMatrix {
    /// An empty matrix with `cols` columns, ready for [`CsrMatrix::push_row`].
    pub fn with_cols(cols: usize) -> Self {
        Self { rows: 0, cols, indptr: vec![0], indices: Vec::new(), values: Vec::new() }
    }

    /// Builds a matrix from its three arrays, checking every CSR invariant.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self, ShapeError> {
        if indptr.len() != rows + 1 || indptr[0] != 0 {
            return Err(ShapeError(format!("indptr must have {} entries starting at 0", rows + 1)));
        }
        if indices.len() != values.len() || *indptr.last().unwrap() != indices.len() {
            return Err(ShapeError("indptr, indices and values disagree on the entry count".into()));
        }
        let mut m = Self::with_cols(cols);
        for i in 0..rows {
            let (s, e) = (indptr[i], indptr[i + 1]);
            if e < s {
                return Err(ShapeError(format!("indptr decreases at row {i}")));
            }
            m.push_row(&indices[s..e], &values[s..e])?;
        }
        Ok(m)
    }

    /// Appends a row given its strictly increasing column indices and values.
    pub fn push_row(&mut self, indices: &[u32], values: &[f32]) -> Result<(), ShapeError> {
        if indices.len() != values.len() {
            return Err(ShapeError("a row needs as many values as indices".into()));
        }
        if indices.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ShapeError(format!("row {}: column indices must increase", self.rows)));
        }
        if let Some(&last) = indices.last()
            && last as usize >= self.cols
        {
            return Err(ShapeError(format!("column {last} is outside {} columns", self.cols)));
        }
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        self.indptr.push(self.indices.len());
        self.rows += 1;
        Ok(())
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Stored entries over all entries.
    pub fn density(&self) -> f64 {
        if self.rows * self.cols == 0 { 0.0 } else { self.nnz() as f64 / (self.rows * self.cols) as f64 }
    }

    /// Row `i`: its column indices and values.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (s, e) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[s..e], &self.values[s..e])
    }

    /// The largest number of entries in one row.
    pub fn max_row_nnz(&self) -> usize {
        self.indptr.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }

    /// How many entries the buffers hold without reallocating.
    pub fn nnz_capacity(&self) -> usize {
        self.indices.capacity().min(self.values.capacity())
    }

    /// Reserves room for `rows` more rows holding `nnz` entries in all, so that filling a
    /// reused batch buffer never reallocates.
    pub fn reserve(&mut self, rows: usize, nnz: usize) {
        self.indptr.reserve(rows + 1);
        self.indices.reserve(nnz);
        self.values.reserve(nnz);
    }

    /// Overwrites `out` with the rows `idx` of `self`, in that order, reusing its buffers.
    pub fn gather_rows_into(&self, idx: &[usize], out: &mut CsrMatrix) {
        out.rows = 0;
        out.cols = self.cols;
        out.indptr.clear();
        out.indptr.push(0);
        out.indices.clear();
        out.values.clear();
        for &i in idx {
            let (ind, val) = self.row(i);
            out.indices.extend_from_slice(ind);
            out.values.extend_from_slice(val);
            out.indptr.push(out.indices.len());
            out.rows += 1;
        }
    }

    /// The same matrix with every value stored (tests, small data).
    pub fn to_dense(&self) -> crate::Matrix {
        let mut m = crate::Matrix::zeros(self.rows, self.cols);
        for i in 0..self.rows {
            let (ind, val) = self.row(i);
            let row = m.row_mut(i);
            for (&j, &v) in ind.iter().zip(val) {
                row[j as usize] = v;
            }
        }
        m
    }

    /// `dst (m×n) ⟵ self (m×k) · b (k×n)`; each stored entry adds a scaled row of `b`.
    pub fn matmul(&self, dst: ViewMut<'_>, b: View<'_>, accum: Accumulate) {
        assert_eq!((self.cols, dst.rows, dst.cols), (b.rows, self.rows, b.cols), "csr matmul shapes");
        if accum == Accumulate::Replace {
            dst.data.fill(0.0);
        }
        csr_matmul(&self.indptr, &self.indices, &self.values, b.data, b.cols, dst.data);
    }

    /// `dst (m×n) ⟵ self (m×k) · b (k×n)` with the register-blocked kernel
    /// (`sparse_blocks.rs`), each 64-column strip of `b` packed into `scratch` when its
    /// layout needs it (below 64 columns, the plain loop of [`CsrMatrix::matmul`]);
    /// bitwise equal to [`CsrMatrix::matmul`], on any number of threads (each takes a
    /// block of rows, or, through the blocked kernel, a block of `b`'s strips).
    pub fn matmul_blocked(
        &self,
        dst: ViewMut<'_>,
        b: View<'_>,
        accum: Accumulate,
        scratch: &mut PackedColumns,
        par: Parallelism,
    ) {
        assert_eq!((self.cols, dst.rows, dst.cols), (b.rows, self.rows, b.cols), "csr matmul shapes");
        if accum == Accumulate::Replace {
            dst.data.fill(0.0);
        }
        let n = b.cols;
        // A block of rows a thread, each row's sums in the same order.
        let blocks = split_ranges(self.rows, par.thread_count(), PARALLEL_MIN_ROWS);
        if n > MIN_COLUMNS && b.rows > 0 {
            // The blocked kernel, each strip of `b` packed just before it is read. Threads
            // split the strips (each packs and reads its own: none crosses between cores)
            // and write their columns of every output row.
            let (ptr, indices, values) = (&self.indptr[..], &self.indices[..], &self.values[..]);
            let strips = row_blocks(par, n.div_ceil(MIN_COLUMNS), 1);
            let mut buffers = scratch.strip_buffers(strips.len(), b.rows);
            if blocks.len() <= 1 || strips.len() <= 1 {
                let (all, strip) = (0..n.div_ceil(MIN_COLUMNS), buffers.next().expect("one strip buffer"));
                return blocked_sums_packing(ptr, indices, values, b, all, strip, dst.into_faer());
            }
            let (mut rest, mut first) = (Some(dst.into_faer()), 0);
            let parts = strips.iter().zip(buffers).map(|(s, strip)| {
                let end = (s.end * MIN_COLUMNS).min(n);
                let (mine, tail) = rest.take().expect("the columns left").split_at_col_mut(end - first);
                (rest, first) = (Some(tail), end);
                (s.clone(), strip, mine)
            });
            return for_each_part(parts, |(s, strip, out)| {
                blocked_sums_packing(ptr, indices, values, b, s, strip, out)
            });
        }
        // Narrower than one block, the plain loop is faster; at one block, the blocked
        // kernel reads `b` in place.
        let packed = (n == MIN_COLUMNS).then(|| scratch.of(b, par));
        let rows = |ptr: &[usize], out: &mut [f32]| match packed {
            Some(packed) => blocked_sums(ptr, &self.indices, &self.values, packed, Dest::Same, true, usize::MAX, out),
            None => csr_matmul(ptr, &self.indices, &self.values, b.data, n, out),
        };
        if blocks.len() <= 1 || n == 0 {
            return rows(&self.indptr, dst.data);
        }
        // (A block of rows is `out.len() / n` of them.)
        for_row_blocks(par, dst.data, n, &blocks, |first, out| rows(&self.indptr[first..=first + out.len() / n], out));
    }

    /// `dst (k×n) ⟵ selfᵀ (k×m) · b (m×n)`: the weight gradient of a layer fed sparse input.
    pub fn t_matmul(&self, dst: ViewMut<'_>, b: View<'_>, accum: Accumulate) {
        assert_eq!((self.rows, dst.rows, dst.cols), (b.rows, self.cols, b.cols), "csr t_matmul shapes");
        if accum == Accumulate::Replace {
            dst.data.fill(0.0);
        }
        csr_t_matmul(&self.indptr, &self.indices, &self.values, b.data, b.cols, dst.data);
    }
}

/// `out[i,:] += Σ_j v_ij · b[j,:]` over the stored entries of each row.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn csr_matmul(indptr: &[usize], indices: &[u32], values: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    for (i, range) in indptr.windows(2).enumerate() {
        let row = &mut out[i * n..(i + 1) * n];
        for k in range[0]..range[1] {
            let (j, v) = (indices[k] as usize, values[k]);
            let brow = &b[j * n..(j + 1) * n];
            if v == 1.0 {
                row.iter_mut().zip(brow).for_each(|(o, &x)| *o += x);
            } else {
                row.iter_mut().zip(brow).for_each(|(o, &x)| *o = v.mul_add(x, *o));
            }
        }
    }
}

/// `out[j,:] += v_ij · b[i,:]` over the stored entries of each row `i`.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn csr_t_matmul(indptr: &[usize], indices: &[u32], values: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    for (i, range) in indptr.windows(2).enumerate() {
        let brow = &b[i * n..(i + 1) * n];
        for k in range[0]..range[1] {
            let (j, v) = (indices[k] as usize, values[k]);
            let row = &mut out[j * n..(j + 1) * n];
            row.iter_mut().zip(brow).for_each(|(o, &x)| *o = v.mul_add(x, *o));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Matrix, Parallelism, matmul};

    #[test]
    fn assign_nonzeros_keeps_only_non_zero_values() {
        let rows: [&[f32]; 2] = [&[0.0, 1.5, -0.0, f32::NAN], &[0.0; 4]];
        let mut m = CsrMatrix::with_cols(9);
        m.push_row(&[8], &[1.0]).unwrap();
        m.assign_nonzeros(4, 2, |i| rows[i], |x| x, Parallelism::Sequential);
        assert_eq!((m.rows(), m.cols(), m.nnz()), (2, 4, 2));
        assert_eq!(m.row(0).0, &[1, 3]);
        assert!(m.row(0).1[1].is_nan());
        assert_eq!(m.row(1).0.len(), 0);
        let bytes: [&[u8]; 1] = [&[0, 51, 255]];
        m.assign_nonzeros(3, 1, |i| bytes[i], |b| b as f32 / 255.0, Parallelism::Sequential);
        assert_eq!(m.to_dense().as_slice(), &[0.0, 0.2, 1.0]);
        // Rows long enough for chunks of 16 (all-zero ones skipped), on two threads (1,200
        // rows of 70: two blocks of rows, each filling its own part of the entries).
        let wide: Vec<u8> =
            (0..1200 * 70).map(|k| if k % 7 == 0 || (k / 70) % 5 == 0 { (k % 251) as u8 } else { 0 }).collect();
        let (mut one, mut two) = (CsrMatrix::with_cols(70), CsrMatrix::with_cols(70));
        let row = |i: usize| &wide[i * 70..(i + 1) * 70];
        one.assign_nonzeros(70, 1200, row, f32::from, Parallelism::Sequential);
        Parallelism::threads(2).install(|| two.assign_nonzeros(70, 1200, row, f32::from, Parallelism::threads(2)));
        assert_eq!(one, two);
        let want: Vec<f32> = wide.iter().map(|&b| f32::from(b)).collect();
        assert_eq!(one.to_dense().as_slice(), &want[..]);
    }

    fn sample() -> CsrMatrix {
        let mut m = CsrMatrix::with_cols(5);
        m.push_row(&[0, 3], &[1.0, 2.0]).unwrap();
        m.push_row(&[], &[]).unwrap();
        m.push_row(&[1, 2, 4], &[1.0, 1.0, -1.0]).unwrap();
        m
    }

    #[test]
    fn products_match_dense() {
        let s = sample();
        let d = s.to_dense();
        let b = Matrix::from_vec(5, 2, (0..10).map(|i| i as f32 * 0.5 - 1.0).collect()).unwrap();
        let (mut want, mut got) = (Matrix::zeros(3, 2), Matrix::zeros(3, 2));
        matmul::ab(want.view_mut(), d.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        s.matmul(got.view_mut(), b.view(), Accumulate::Replace);
        assert_eq!(want, got);

        let dy = Matrix::from_vec(3, 2, vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.5]).unwrap();
        let (mut want, mut got) = (Matrix::zeros(5, 2), Matrix::zeros(5, 2));
        matmul::atb(want.view_mut(), d.view(), dy.view(), Accumulate::Replace, Parallelism::Sequential);
        s.t_matmul(got.view_mut(), dy.view(), Accumulate::Replace);
        assert_eq!(want, got);
    }

    #[test]
    fn gather_reuses_and_reorders() {
        let s = sample();
        let mut out = CsrMatrix::default();
        s.gather_rows_into(&[2, 0], &mut out);
        assert_eq!(out.rows(), 2);
        assert_eq!(out.row(0).0, &[1, 2, 4]);
        assert_eq!(out.row(1).1, &[1.0, 2.0]);
    }

    #[test]
    fn invalid_rows_are_refused() {
        let mut m = CsrMatrix::with_cols(3);
        assert!(m.push_row(&[2, 1], &[1.0, 1.0]).is_err());
        assert!(m.push_row(&[3], &[1.0]).is_err());
        assert!(CsrMatrix::from_parts(1, 3, vec![0, 2], vec![0], vec![1.0]).is_err());
    }
}
