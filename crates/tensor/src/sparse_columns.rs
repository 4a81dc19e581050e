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

use crate::pool::{Blocks, for_blocks, for_each_part, for_row_blocks, split_ranges};
use crate::sparse_blocks::{Dest, MIN_COLUMNS, blocked_sums};
use crate::{Accumulate, CsrMatrix, PackedColumns, Parallelism, View, ViewMut};

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
    /// The dense operand of [`ColumnIndex::t_matmul_touched`], packed for its kernel.
    packed: PackedColumns,
}

impl ColumnIndex {
    /// Rebuilds the index for `m` (a counting sort, `O(nnz + cols)`).
    pub fn build(&mut self, m: &CsrMatrix) {
        self.build_par(m, Parallelism::Sequential);
    }

    /// [`ColumnIndex::build`] with the columns split between `par`'s threads: each counts
    /// and places the entries of its own columns (found in every row by binary search, the
    /// rows' columns being sorted), into its own part of the index. The same index on any
    /// number of threads.
    pub fn build_par(&mut self, m: &CsrMatrix, par: Parallelism) {
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
        let parts = if m.nnz() < PARALLEL_MIN_BUILD_ENTRIES { 1 } else { par.thread_count() };
        let blocks = split_ranges(cols, parts, PARALLEL_MIN_BUILD_COLUMNS);
        // Entries per column.
        for_blocks(par, &blocks, &mut self.cursor, |r, counts| {
            for i in 0..rows {
                for &j in own_entries(m.row(i).0, &r).0 {
                    counts[j as usize - r.start] += 1;
                }
            }
        });
        self.touched.clear();
        self.touched.reserve(cols);
        self.ptr.clear();
        self.ptr.reserve(cols + 1);
        self.ptr.push(0);
        let mut next = 0;
        for (j, slot) in self.cursor.iter_mut().enumerate() {
            let count = *slot;
            // (An untouched column keeps the next slot too: where its block starts.)
            *slot = next;
            if count > 0 {
                self.touched.push(j as u32);
                next += count;
                self.ptr.push(next);
            }
        }
        self.row_of.clear();
        self.row_of.resize(next, 0);
        self.value_of.clear();
        self.value_of.resize(next, 0.0);
        // Each block's columns own one contiguous run of slots: place its entries there.
        let place = |r: std::ops::Range<usize>, cursor: &mut [usize], row_of: &mut [u32], value_of: &mut [f32]| {
            let base = cursor.first().copied().unwrap_or(0);
            for i in 0..rows {
                let (ind, val) = own_entries(m.row(i).0, &r);
                let val = &m.row(i).1[val..val + ind.len()];
                for (&j, &v) in ind.iter().zip(val) {
                    let slot = &mut cursor[j as usize - r.start];
                    row_of[*slot - base] = i as u32;
                    value_of[*slot - base] = v;
                    *slot += 1;
                }
            }
        };
        if par == Parallelism::Sequential || blocks.len() <= 1 {
            return place(0..cols, &mut self.cursor, &mut self.row_of, &mut self.value_of);
        }
        let (mut cursor, mut row_of, mut value_of) =
            (&mut self.cursor[..], &mut self.row_of[..], &mut self.value_of[..]);
        let mut placed = 0;
        let parts = blocks.iter().map(|r| {
            let (mine, rest) = std::mem::take(&mut cursor).split_at_mut(r.len());
            // The block's slots end where the next block's first column starts.
            let end = rest.first().copied().unwrap_or(next);
            let (mine_rows, rest_rows) = std::mem::take(&mut row_of).split_at_mut(end - placed);
            let (mine_values, rest_values) = std::mem::take(&mut value_of).split_at_mut(end - placed);
            (cursor, row_of, value_of, placed) = (rest, rest_rows, rest_values, end);
            (r.clone(), mine, mine_rows, mine_values)
        });
        for_each_part(parts, |(r, mine, mine_rows, mine_values)| place(r, mine, mine_rows, mine_values));
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
    /// [`CsrMatrix::matmul`] bit for bit, on any number of threads (each thread takes a
    /// block of output rows and still adds their terms column by column).
    pub fn matmul(&self, dst: ViewMut<'_>, b: View<'_>, accum: Accumulate, par: Parallelism) {
        assert_eq!((self.cols, dst.rows, dst.cols), (b.rows, self.rows, b.cols), "column-index matmul shapes");
        if accum == Accumulate::Replace {
            dst.data.fill(0.0);
        }
        let n = b.cols;
        let blocks = split_ranges(self.rows, par.thread_count(), PARALLEL_MIN_ROWS);
        if blocks.len() <= 1 || n == 0 {
            let all = 0..self.rows;
            columns_matmul(&self.touched, &self.ptr, &self.row_of, &self.value_of, b.data, n, all, dst.data);
            return;
        }
        // (A block of rows is `out.len() / n` of them.)
        for_row_blocks(par, dst.data, n, &blocks, |first, out| {
            let rows = first..first + out.len() / n;
            columns_matmul(&self.touched, &self.ptr, &self.row_of, &self.value_of, b.data, n, rows, out)
        });
    }

    /// Writes row `j` of `dst (k×n)` with row `j` of `Mᵀ · b` for every touched column `j`
    /// of `M`, leaving the other rows of `dst` as they are: the weight gradient of a layer
    /// fed sparse input, touching only the rows the batch uses. On rows the caller keeps
    /// at zero, equals [`CsrMatrix::t_matmul`] bit for bit, on any number of threads
    /// (each takes a block of the touched columns, i.e. of `dst`'s rows). The rows listed
    /// in `clear` (increasing, none of them touched: a previous batch's) are zeroed on the
    /// way, by the thread that owns them.
    /// Each touched row's sums run in the register-blocked kernel (`sparse_blocks.rs`), `b`
    /// packed into this index's scratch when its layout needs it.
    pub fn t_matmul_touched(&mut self, dst: ViewMut<'_>, b: View<'_>, par: Parallelism, clear: &[u32]) {
        assert_eq!((self.rows, dst.rows, dst.cols), (b.rows, self.cols, b.cols), "column-index t_matmul shapes");
        let n = b.cols;
        let Self { touched, ptr, row_of, value_of, packed, cols, .. } = self;
        let (touched, ptr, row_of, value_of, cols) = (&touched[..], &ptr[..], &row_of[..], &value_of[..], *cols);
        if touched.is_empty() {
            // An all-zero batch (or an index never built): only the stale rows to clear.
            return zero_rows(clear, 0, n, dst.data);
        }
        // The blocked kernel pays when columns have many entries (pixels: 37 a column in a
        // batch of 128 digits); with a few (multi-hot words: 6 in a batch of 512 reviews),
        // packing the batch and the per-block passes cost more than they save (1.6× slower
        // on W2L's gradient), and the plain loop keeps each row in L1.
        let blocked = n >= MIN_COLUMNS && row_of.len() >= BLOCKED_MIN_ENTRIES_PER_COLUMN * touched.len();
        let packed = blocked.then(|| packed.of(b, par));
        let sums = |touched: &[u32], ptr: &[usize], row0: usize, out: &mut [f32]| match packed {
            Some(packed) => {
                blocked_sums(ptr, row_of, value_of, packed, Dest::Listed(touched, row0), false, GRADIENT_GROUP, out)
            }
            None => columns_t_matmul(touched, ptr, row_of, value_of, b.data, n, row0, out),
        };
        let blocks = balanced_ranges(ptr, par.thread_count(), PARALLEL_MIN_COLUMNS);
        if blocks.len() <= 1 {
            zero_rows(clear, 0, n, dst.data);
            return sums(touched, ptr, 0, dst.data);
        }
        let mut rest = dst.data;
        let mut first_row = 0;
        let parts = blocks.iter().map(|t| {
            // Rows of `dst` from this block's first touched column up to the next block's.
            let end_row = touched.get(t.end).map_or(cols, |&j| j as usize);
            let (out, tail) = std::mem::take(&mut rest).split_at_mut((end_row - first_row) * n);
            let row0 = first_row;
            (rest, first_row) = (tail, end_row);
            let first = if t.start == 0 { 0 } else { row0 as u32 };
            let mine =
                &clear[clear.partition_point(|&r| r < first)..clear.partition_point(|&r| (r as usize) < end_row)];
            (t.clone(), row0, mine, out)
        });
        for_each_part(parts, |(t, row0, mine, out)| {
            zero_rows(mine, row0, n, out);
            sums(&touched[t.clone()], &ptr[t.start..=t.end], row0, out);
        });
    }
}

/// The touched columns (`ptr.len() − 1` of them, column `t` holding entries
/// `ptr[t]..ptr[t + 1]`) in at most `parts` ranges of about equal entry counts, and no
/// more ranges than one per `min_len` columns (a range itself may be narrower): digits'
/// central pixels have far more entries than the rim's, so equal column counts would
/// leave one thread waiting.
fn balanced_ranges(ptr: &[usize], parts: usize, min_len: usize) -> Blocks {
    let columns = ptr.len() - 1;
    let parts = parts.min(columns / min_len.max(1)).max(1);
    let total = ptr[columns];
    Blocks::from_cuts(columns, (1..parts).map(|p| ptr.partition_point(|&e| e < p * total / parts)))
}

/// `out[j − row0,:] = Σ_i v_ij · b[i,:]` for each touched column `j` (from zero, `i`
/// increasing); `ptr` holds the touched columns' entry ranges (`ptr[t]..ptr[t + 1]`). Each
/// row stays in L1 while its few terms are added: the kernel for columns of a few entries.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn columns_t_matmul(
    touched: &[u32],
    ptr: &[usize],
    row_of: &[u32],
    value_of: &[f32],
    b: &[f32],
    n: usize,
    row0: usize,
    out: &mut [f32],
) {
    for (t, &j) in touched.iter().enumerate() {
        let j = j as usize - row0;
        let row = &mut out[j * n..(j + 1) * n];
        let (first, rest) = (ptr[t], ptr[t] + 1..ptr[t + 1]);
        // The first term overwrites the row as `0 + v·x` (not `v·x`, which keeps a −0
        // the accumulating loop would turn into +0), saving a separate clearing pass.
        let (i, v) = (row_of[first] as usize, value_of[first]);
        row.iter_mut().zip(&b[i * n..(i + 1) * n]).for_each(|(o, &x)| *o = v.mul_add(x, 0.0));
        for k in rest {
            let (i, v) = (row_of[k] as usize, value_of[k]);
            let brow = &b[i * n..(i + 1) * n];
            row.iter_mut().zip(brow).for_each(|(o, &x)| *o = v.mul_add(x, *o));
        }
    }
}

/// Columns with at least this many entries on average take the blocked kernel.
const BLOCKED_MIN_ENTRIES_PER_COLUMN: usize = 16;

/// Kernel-gradient rows finished at a time, block by block (`sparse_blocks::blocked_sums`):
/// 32 rows of 512 values are 64 KB, written while in cache.
const GRADIENT_GROUP: usize = 32;

/// Batches with fewer entries are indexed on one thread…
const PARALLEL_MIN_BUILD_ENTRIES: usize = 4096;
/// …and a thread indexes at least this many columns.
const PARALLEL_MIN_BUILD_COLUMNS: usize = 64;

/// The entries of a row (its sorted `columns`) that fall in the column range `r`: their
/// columns, and the position of the first one in the row.
fn own_entries<'a>(columns: &'a [u32], r: &std::ops::Range<usize>) -> (&'a [u32], usize) {
    let a = columns.partition_point(|&j| (j as usize) < r.start);
    let z = columns.partition_point(|&j| (j as usize) < r.end);
    (&columns[a..z], a)
}

/// Zeroes rows `rows` (absolute, ≥ `row0`) of `out`, whose first row is `row0`.
fn zero_rows(rows: &[u32], row0: usize, n: usize, out: &mut [f32]) {
    for &r in rows {
        let r = r as usize - row0;
        out[r * n..(r + 1) * n].fill(0.0);
    }
}

/// Batches with fewer rows are multiplied on one thread.
const PARALLEL_MIN_ROWS: usize = 64;
/// Batches touching fewer columns have their gradient computed on one thread.
const PARALLEL_MIN_COLUMNS: usize = 256;

/// `out[i − rows.start,:] += v_ij · b[j,:]` for the output rows `rows`, column `j` by
/// column, each `b` row read once. A column's entries are sorted by row, so the block's
/// are one run of them, found by binary search.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn columns_matmul(
    touched: &[u32],
    ptr: &[usize],
    row_of: &[u32],
    value_of: &[f32],
    b: &[f32],
    n: usize,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let (lo, hi, row0) = (rows.start as u32, rows.end as u32, rows.start);
    for (t, &j) in touched.iter().enumerate() {
        let brow = &b[j as usize * n..(j as usize + 1) * n];
        let col = ptr[t]..ptr[t + 1];
        let col_rows = &row_of[col.clone()];
        let (a, z) = (col_rows.partition_point(|&r| r < lo), col_rows.partition_point(|&r| r < hi));
        for k in col.start + a..col.start + z {
            let (i, v) = (row_of[k] as usize - row0, value_of[k]);
            let row = &mut out[i * n..(i + 1) * n];
            if v == 1.0 {
                row.iter_mut().zip(brow).for_each(|(o, &x)| *o += x);
            } else {
                row.iter_mut().zip(brow).for_each(|(o, &x)| *o = v.mul_add(x, *o));
            }
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

    /// Both gradient kernels (columns of a few entries take the plain loop, of many the
    /// blocked kernel) equal the row-wise product bit for bit, on one thread and several.
    #[test]
    fn both_gradient_kernels_equal_the_row_wise_product() {
        // 3 and about 85 entries per column; 600 columns split between 2 threads.
        for (rows, cols, per_row) in [(37, 200, 15), (200, 600, 300)] {
            let m = random_csr(rows, cols, per_row, 13);
            for n in [40, 150] {
                let dy = random_matrix(rows, n, 14);
                let mut want = Matrix::zeros(cols, n);
                m.t_matmul(want.view_mut(), dy.view(), Accumulate::Replace);
                let mut index = ColumnIndex::default();
                index.build(&m);
                for threads in [1, 2] {
                    let par = Parallelism::threads(threads);
                    let mut got = Matrix::zeros(cols, n);
                    par.install(|| index.t_matmul_touched(got.view_mut(), dy.view(), par, &[]));
                    assert_eq!(want, got, "{per_row} a row, {n} columns, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn products_equal_the_row_wise_ones_bitwise() {
        let m = random_csr(37, 200, 15, 1);
        // 9 and 40 columns: the plain loop forward, one padded block for the gradient;
        // 64: used in place; 150: two full blocks and a padded one.
        for n in [9, 40, 64, 150] {
            let b = random_matrix(200, n, 2);
            let (mut want, mut got) = (Matrix::zeros(37, n), Matrix::zeros(37, n));
            m.matmul(want.view_mut(), b.view(), Accumulate::Replace);
            m.matmul_blocked(
                got.view_mut(),
                b.view(),
                Accumulate::Replace,
                &mut PackedColumns::default(),
                Parallelism::Sequential,
            );
            assert_eq!(want, got, "{n} columns");
            let dy = random_matrix(37, n, 3);
            let mut index = ColumnIndex::default();
            index.build(&m);
            let (mut want, mut got) = (Matrix::zeros(200, n), Matrix::zeros(200, n));
            m.t_matmul(want.view_mut(), dy.view(), Accumulate::Replace);
            index.t_matmul_touched(got.view_mut(), dy.view(), Parallelism::Sequential, &[]);
            assert_eq!(want, got, "{n} columns");
        }
        let mut index = ColumnIndex::default();
        index.build(&m);
        let b = random_matrix(200, 9, 2);
        let (mut want, mut got) = (Matrix::zeros(37, 9), Matrix::zeros(37, 9));
        m.matmul(want.view_mut(), b.view(), Accumulate::Replace);
        index.matmul(got.view_mut(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        assert_eq!(want, got);

        let dy = random_matrix(37, 9, 3);
        let (mut want, mut got) = (Matrix::zeros(200, 9), Matrix::zeros(200, 9));
        m.t_matmul(want.view_mut(), dy.view(), Accumulate::Replace);
        index.t_matmul_touched(got.view_mut(), dy.view(), Parallelism::Sequential, &[]);
        assert_eq!(want, got);
    }

    #[test]
    fn threads_give_the_same_bits() {
        let m = random_csr(300, 2000, 40, 7);
        let mut index = ColumnIndex::default();
        index.build(&m);
        let b = random_matrix(2000, 33, 8);
        let (mut one, mut two) = (Matrix::zeros(300, 33), Matrix::zeros(300, 33));
        index.matmul(one.view_mut(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        Parallelism::threads(2)
            .install(|| index.matmul(two.view_mut(), b.view(), Accumulate::Replace, Parallelism::threads(2)));
        assert_eq!(one, two);
        let dy = random_matrix(300, 33, 9);
        let (mut one, mut two) = (Matrix::zeros(2000, 33), Matrix::zeros(2000, 33));
        index.t_matmul_touched(one.view_mut(), dy.view(), Parallelism::Sequential, &[]);
        Parallelism::threads(3)
            .install(|| index.t_matmul_touched(two.view_mut(), dy.view(), Parallelism::threads(3), &[]));
        assert_eq!(one, two);
        // The row-wise forward: the plain loop below 64 columns splits the batch rows
        // between threads, the blocked kernel from 65 its 64-column strips (2 strips
        // for 2 threads at 70 columns, 3 strips for 2 and 3 threads at 150).
        for n in [9, 70, 150] {
            let b = random_matrix(2000, n, 10);
            let mut scratch = PackedColumns::default();
            let mut one = Matrix::zeros(300, n);
            m.matmul_blocked(one.view_mut(), b.view(), Accumulate::Replace, &mut scratch, Parallelism::Sequential);
            for threads in [2, 3] {
                let (par, mut many) = (Parallelism::threads(threads), Matrix::zeros(300, n));
                par.install(|| m.matmul_blocked(many.view_mut(), b.view(), Accumulate::Replace, &mut scratch, par));
                assert_eq!(one, many, "{n} columns, {threads} threads");
            }
        }
    }

    #[test]
    fn building_on_threads_gives_the_same_index() {
        // Wide enough to split (≥ 4096 entries, 64 columns a thread), with untouched
        // columns at and around the blocks' edges (350 for 2 threads; 233, 466 for 3).
        let full = random_csr(400, 700, 30, 12);
        let mut m = CsrMatrix::with_cols(700);
        let empty = |j: u32| (230..240).contains(&j) || (345..355).contains(&j) || (460..470).contains(&j);
        for i in 0..full.rows() {
            let (idx, val) = full.row(i);
            let (idx, val): (Vec<u32>, Vec<f32>) = idx.iter().zip(val).filter(|&(&j, _)| !empty(j)).unzip();
            m.push_row(&idx, &val).unwrap();
        }
        let mut one = ColumnIndex::default();
        one.build(&m);
        for threads in [2, 3] {
            let mut many = ColumnIndex::default();
            let par = Parallelism::threads(threads);
            par.install(|| many.build_par(&m, par));
            assert_eq!(
                (&one.touched, &one.ptr, &one.row_of, &one.value_of),
                (&many.touched, &many.ptr, &many.row_of, &many.value_of)
            );
        }
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
        index.t_matmul_touched(dk.view_mut(), dy.view(), Parallelism::Sequential, &[]);
        assert_eq!(dk.as_slice(), &[-7.0, 3.0, -7.0, -7.0, 11.0, -7.0]);
        // Stale rows listed in `clear` are zeroed, the others kept.
        index.t_matmul_touched(dk.view_mut(), dy.view(), Parallelism::Sequential, &[0, 5]);
        assert_eq!(dk.as_slice(), &[0.0, 3.0, -7.0, -7.0, 11.0, 0.0]);
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
        index.matmul(got.view_mut(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        assert_eq!(want, got);
    }
}
