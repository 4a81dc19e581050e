//! A column-major index of a CSR batch, so products with a tall weight matrix read each
//! of its rows once per batch instead of once per stored entry.
//!
//! A multi-hot batch of 512 reviews touches almost every row of a 10,000×512 kernel, each
//! about six times; walking the entries column by column keeps the kernel row in L1
//! while it is used and streams the kernel once per batch, the batch-sized operand
//! (1 MB at 512×512) staying mostly in L2. Entries of a column are visited in increasing
//! row order and columns in increasing order, so every output element sums its terms in
//! exactly the order [`CsrMatrix::matmul`] and [`CsrMatrix::t_matmul`] do: the results are
//! bitwise equal.

use crate::{Accumulate, CsrMatrix, View, ViewMut};

/// The entries of a [`CsrMatrix`] grouped by column; buffers are reused across batches.
#[derive(Debug, Clone, Default)]
pub struct ColumnIndex {
    rows: usize,
    cols: usize,
    /// Columns with at least one entry, increasing.
    touched: Vec<u32>,
    /// Entries of `touched[t]` are `ptr[t]..ptr[t + 1]` of `row_of` / `value_of`.
    ptr: Vec<usize>,
    row_of: Vec<u32>,
    value_of: Vec<f32>,
    /// Per column: entry count, then the next free slot while filling.
    cursor: Vec<usize>,
}

impl ColumnIndex {
    /// Rebuilds the index for `m` (a counting sort, `O(nnz + cols)`).
    pub fn build(&mut self, m: &CsrMatrix) {
        let (rows, cols) = (m.rows(), m.cols());
        self.rows = rows;
        self.cols = cols;
        // Reserve what the batch's own buffers can hold, so later (larger) batches drawn
        // from the same data set never reallocate.
        let cap = m.nnz_capacity().max(m.nnz());
        self.row_of.reserve(cap.saturating_sub(self.row_of.len()));
        self.value_of.reserve(cap.saturating_sub(self.value_of.len()));
        self.cursor.clear();
        self.cursor.resize(cols, 0);
        for i in 0..rows {
            for &j in m.row(i).0 {
                self.cursor[j as usize] += 1;
            }
        }
        self.touched.clear();
        self.touched.reserve(cols);
        self.ptr.clear();
        self.ptr.reserve(cols + 1);
        self.ptr.push(0);
        let mut next = 0;
        for (j, slot) in self.cursor.iter_mut().enumerate() {
            if *slot > 0 {
                self.touched.push(j as u32);
                let count = *slot;
                *slot = next;
                next += count;
                self.ptr.push(next);
            }
        }
        self.row_of.clear();
        self.row_of.resize(next, 0);
        self.value_of.clear();
        self.value_of.resize(next, 0.0);
        for i in 0..rows {
            let (ind, val) = m.row(i);
            for (&j, &v) in ind.iter().zip(val) {
                let slot = &mut self.cursor[j as usize];
                self.row_of[*slot] = i as u32;
                self.value_of[*slot] = v;
                *slot += 1;
            }
        }
    }

    /// Whether the index was last built from a matrix of `m`'s shape and entry count: a
    /// cheap plausibility check (not proof it is `m`) for a layer reusing its forward
    /// pass's index in the backward pass of the same batch.
    pub fn matches(&self, m: &CsrMatrix) -> bool {
        (self.rows, self.cols, self.row_of.len()) == (m.rows(), m.cols(), m.nnz())
    }

    /// Columns of the indexed matrix that hold at least one entry, increasing.
    pub fn touched(&self) -> &[u32] {
        &self.touched
    }

    /// `dst (m×n) ⟵ M (m×k) · b (k×n)` for the indexed matrix `M`; equals
    /// [`CsrMatrix::matmul`] bit for bit.
    pub fn matmul(&self, dst: ViewMut<'_>, b: View<'_>, accum: Accumulate) {
        assert_eq!((self.cols, dst.rows, dst.cols), (b.rows, self.rows, b.cols), "column-index matmul shapes");
        if accum == Accumulate::Replace {
            dst.data.fill(0.0);
        }
        columns_matmul(&self.touched, &self.ptr, &self.row_of, &self.value_of, b.data, b.cols, dst.data);
    }

    /// Writes row `j` of `dst (k×n)` with row `j` of `Mᵀ · b` for every touched column `j`
    /// of `M`, leaving the other rows of `dst` as they are: the weight gradient of a layer
    /// fed sparse input, touching only the rows the batch uses. On rows the caller keeps
    /// at zero, equals [`CsrMatrix::t_matmul`] bit for bit.
    pub fn t_matmul_touched(&self, dst: ViewMut<'_>, b: View<'_>) {
        assert_eq!((self.rows, dst.rows, dst.cols), (b.rows, self.cols, b.cols), "column-index t_matmul shapes");
        columns_t_matmul(&self.touched, &self.ptr, &self.row_of, &self.value_of, b.data, b.cols, dst.data);
    }
}

/// `out[i,:] += v_ij · b[j,:]`, column `j` by column, each `b` row read once.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn columns_matmul(
    touched: &[u32],
    ptr: &[usize],
    row_of: &[u32],
    value_of: &[f32],
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    for (t, &j) in touched.iter().enumerate() {
        let brow = &b[j as usize * n..(j as usize + 1) * n];
        for k in ptr[t]..ptr[t + 1] {
            let (i, v) = (row_of[k] as usize, value_of[k]);
            let row = &mut out[i * n..(i + 1) * n];
            if v == 1.0 {
                row.iter_mut().zip(brow).for_each(|(o, &x)| *o += x);
            } else {
                row.iter_mut().zip(brow).for_each(|(o, &x)| *o += v * x);
            }
        }
    }
}

/// `out[j,:] = Σ_i v_ij · b[i,:]` for each touched column `j` (from zero, `i` increasing).
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn columns_t_matmul(
    touched: &[u32],
    ptr: &[usize],
    row_of: &[u32],
    value_of: &[f32],
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    for (t, &j) in touched.iter().enumerate() {
        let row = &mut out[j as usize * n..(j as usize + 1) * n];
        let (first, rest) = (ptr[t], ptr[t] + 1..ptr[t + 1]);
        // The first term overwrites the row as `0 + v·x` (not `v·x`, which keeps a −0
        // the accumulating loop would turn into +0), saving a separate clearing pass.
        let (i, v) = (row_of[first] as usize, value_of[first]);
        row.iter_mut().zip(&b[i * n..(i + 1) * n]).for_each(|(o, &x)| *o = 0.0 + v * x);
        for k in rest {
            let (i, v) = (row_of[k] as usize, value_of[k]);
            let brow = &b[i * n..(i + 1) * n];
            row.iter_mut().zip(brow).for_each(|(o, &x)| *o += v * x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Matrix, Rng};

    /// A random batch with sorted, distinct columns and some non-unit values.
    fn random_csr(rows: usize, cols: usize, per_row: usize, seed: u64) -> CsrMatrix {
        let mut rng = Rng::seed_from_u64(seed);
        let mut m = CsrMatrix::with_cols(cols);
        for _ in 0..rows {
            let mut idx: Vec<u32> = (0..per_row).map(|_| rng.below(cols as u64) as u32).collect();
            idx.sort_unstable();
            idx.dedup();
            let vals: Vec<f32> = idx.iter().map(|_| if rng.below(3) == 0 { rng.uniform() } else { 1.0 }).collect();
            m.push_row(&idx, &vals).unwrap();
        }
        m
    }

    fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
        let mut rng = Rng::seed_from_u64(seed);
        Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap()
    }

    #[test]
    fn products_equal_the_row_wise_ones_bitwise() {
        let m = random_csr(37, 200, 15, 1);
        let mut index = ColumnIndex::default();
        index.build(&m);
        let b = random_matrix(200, 9, 2);
        let (mut want, mut got) = (Matrix::zeros(37, 9), Matrix::zeros(37, 9));
        m.matmul(want.view_mut(), b.view(), Accumulate::Replace);
        index.matmul(got.view_mut(), b.view(), Accumulate::Replace);
        assert_eq!(want, got);

        let dy = random_matrix(37, 9, 3);
        let (mut want, mut got) = (Matrix::zeros(200, 9), Matrix::zeros(200, 9));
        m.t_matmul(want.view_mut(), dy.view(), Accumulate::Replace);
        index.t_matmul_touched(got.view_mut(), dy.view());
        assert_eq!(want, got);
    }

    #[test]
    fn only_touched_rows_are_written() {
        let mut m = CsrMatrix::with_cols(6);
        m.push_row(&[1, 4], &[1.0, 2.0]).unwrap();
        m.push_row(&[4], &[1.0]).unwrap();
        let mut index = ColumnIndex::default();
        index.build(&m);
        assert_eq!(index.touched(), &[1, 4]);
        let dy = Matrix::from_vec(2, 1, vec![3.0, 5.0]).unwrap();
        let mut dk = Matrix::from_vec(6, 1, vec![-7.0; 6]).unwrap();
        index.t_matmul_touched(dk.view_mut(), dy.view());
        assert_eq!(dk.as_slice(), &[-7.0, 3.0, -7.0, -7.0, 11.0, -7.0]);
    }

    #[test]
    fn rebuilding_for_a_smaller_batch_forgets_the_old_one() {
        let mut index = ColumnIndex::default();
        index.build(&random_csr(50, 30, 10, 4));
        let small = random_csr(3, 30, 4, 5);
        index.build(&small);
        let b = random_matrix(30, 4, 6);
        let (mut want, mut got) = (Matrix::zeros(3, 4), Matrix::zeros(3, 4));
        small.matmul(want.view_mut(), b.view(), Accumulate::Replace);
        index.matmul(got.view_mut(), b.view(), Accumulate::Replace);
        assert_eq!(want, got);
    }
}
