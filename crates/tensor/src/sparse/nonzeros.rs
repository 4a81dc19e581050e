//! CSR rows from the non-zero values of dense rows (a mostly-zero batch of pixels handed to
//! a first layer as its non-zero values), gathered on several threads: each row's
//! non-zeros are counted first, then every thread writes its rows' entries in place.

use std::ops::Range;

use super::CsrMatrix;
use crate::Parallelism;
use crate::pool::{for_blocks, for_each_part, row_blocks};
use crate::prefetch::prefetch;

/// How many rows ahead of the one being read the gather prefetches (see [`prefetch`]).
const AHEAD: usize = 1;

/// Fewest values a thread gathers (below that, one thread is faster).
const MIN_VALUES_PER_THREAD: usize = 32 * 1024;

impl CsrMatrix {
    /// Overwrites `self` with the non-zero entries of the dense rows `row(0..rows)` (each
    /// `cols` wide), each stored as `value(x)`, rows split between `par`'s threads;
    /// reuses the buffers (reserve `rows × cols` entries once and no batch reallocates).
    /// `-0.0` counts as zero; NaN does not. The same entries on any number of threads.
    pub fn assign_nonzeros<'r, T>(
        &mut self,
        cols: usize,
        rows: usize,
        row: impl Fn(usize) -> &'r [T] + Sync,
        value: impl Fn(T) -> f32 + Sync,
        par: Parallelism,
    ) where
        T: Copy + PartialEq + Default + Sync + 'r,
    {
        let blocks = row_blocks(par, rows, MIN_VALUES_PER_THREAD / cols.max(1));
        self.rows = rows;
        self.cols = cols;
        if par == Parallelism::Sequential || blocks.len() <= 1 {
            // One pass: the rows are read once (a random row is a trip to memory).
            self.indptr.clear();
            self.indptr.push(0);
            self.indices.clear();
            self.values.clear();
            for i in 0..rows {
                if i + AHEAD < rows {
                    prefetch(row(i + AHEAD));
                }
                push_row(self, row(i), &value);
            }
            return;
        }
        self.indptr.clear();
        self.indptr.resize(rows + 1, 0);
        // Count each row's non-zeros, then place the rows one after another.
        for_blocks(par, &blocks, &mut self.indptr[1..], |r, counts| {
            let end = r.end;
            for (i, count) in r.zip(counts) {
                if i + AHEAD < end {
                    prefetch(row(i + AHEAD));
                }
                *count = count_nonzeros(row(i));
            }
        });
        for i in 0..rows {
            self.indptr[i + 1] += self.indptr[i];
        }
        let nnz = self.indptr[rows];
        self.indices.resize(nnz, 0);
        self.values.resize(nnz, 0.0);
        let indptr = &self.indptr;
        let (mut idx, mut val) = (&mut self.indices[..], &mut self.values[..]);
        let parts = blocks.iter().map(|r| {
            let len = indptr[r.end] - indptr[r.start];
            let (mine_idx, rest_idx) = std::mem::take(&mut idx).split_at_mut(len);
            let (mine_val, rest_val) = std::mem::take(&mut val).split_at_mut(len);
            (idx, val) = (rest_idx, rest_val);
            (r.clone(), mine_idx, mine_val)
        });
        for_each_part(parts, |(r, mine_idx, mine_val)| fill(r, &row, &value, indptr, mine_idx, mine_val));
    }
}

/// Appends the non-zero values of one row to `m` as its next row.
fn push_row<T: Copy + PartialEq + Default>(m: &mut CsrMatrix, values: &[T], value: &impl Fn(T) -> f32) {
    let zero = T::default();
    let (chunks, tail) = chunks16(values);
    for (c, chunk) in chunks.enumerate() {
        if !chunk.iter().fold(false, |any, &x| any | (x != zero)) {
            continue;
        }
        let (kept_idx, kept_val, kept) = compact(c * 16, chunk, value);
        // All 16 appended (a copy of known length, not a `memcpy` call), then cut back.
        let len = m.indices.len();
        m.indices.extend_from_slice(&kept_idx);
        m.values.extend_from_slice(&kept_val);
        m.indices.truncate(len + kept);
        m.values.truncate(len + kept);
    }
    for (j, &x) in tail.iter().enumerate() {
        if x != zero {
            m.indices.push((values.len() - tail.len() + j) as u32);
            m.values.push(value(x));
        }
    }
    m.indptr.push(m.indices.len());
}

/// The non-zero values of a chunk (columns from `first`), moved to the front of two
/// arrays, and how many there are: every value scaled at once (vector instructions), then
/// the non-zero ones kept without a branch per value.
#[inline(always)]
fn compact<T: Copy + PartialEq + Default>(
    first: usize,
    chunk: &[T; 16],
    value: &impl Fn(T) -> f32,
) -> ([u32; 16], [f32; 16], usize) {
    let scaled = chunk.map(value);
    let (mut idx, mut val, mut kept) = ([0u32; 16], [0.0f32; 16], 0);
    for j in 0..16 {
        (idx[kept], val[kept]) = ((first + j) as u32, scaled[j]);
        kept += usize::from(chunk[j] != T::default());
    }
    (idx, val, kept)
}

/// `values` as arrays of 16, and the rest (`<[T]>::as_chunks`, which needs Rust 1.88).
fn chunks16<T>(values: &[T]) -> (impl Iterator<Item = &[T; 16]>, &[T]) {
    let chunks = values.chunks_exact(16);
    let tail = chunks.remainder();
    (chunks.map(|c| c.try_into().expect("16 values")), tail)
}

/// The non-zero values of `values`, counted 16 at a time (vector instructions).
fn count_nonzeros<T: Copy + PartialEq + Default>(values: &[T]) -> usize {
    let (chunks, tail) = chunks16(values);
    let zero = T::default();
    let per_chunk = |c: &[T; 16]| c.iter().map(|&x| usize::from(x != zero)).sum::<usize>();
    chunks.map(per_chunk).sum::<usize>() + tail.iter().filter(|&&x| x != zero).count()
}

/// Writes the entries of `rows` into `idx`/`val`, which start at row `rows.start`'s first
/// entry (`indptr` already holds every row's place).
fn fill<'r, T: Copy + PartialEq + Default + 'r>(
    rows: Range<usize>,
    row: &impl Fn(usize) -> &'r [T],
    value: &impl Fn(T) -> f32,
    indptr: &[usize],
    idx: &mut [u32],
    val: &mut [f32],
) {
    let zero = T::default();
    let base = indptr[rows.start];
    for i in rows {
        let mut at = indptr[i] - base;
        let values = row(i);
        // Zeros come in runs (an image's background): a chunk of 16 that is all zero is
        // skipped with one test (a fold without early exit: a few vector instructions).
        let (chunks, tail) = chunks16(values);
        for (c, chunk) in chunks.enumerate() {
            if !chunk.iter().fold(false, |any, &x| any | (x != zero)) {
                continue;
            }
            let (kept_idx, kept_val, kept) = compact(c * 16, chunk, value);
            if at + 16 <= idx.len() {
                // All 16 at once (a copy of known length, not a `memcpy` call): the ones
                // past `kept` land where this block's next entries will overwrite them.
                idx[at..at + 16].copy_from_slice(&kept_idx);
                val[at..at + 16].copy_from_slice(&kept_val);
            } else {
                idx[at..at + kept].copy_from_slice(&kept_idx[..kept]);
                val[at..at + kept].copy_from_slice(&kept_val[..kept]);
            }
            at += kept;
        }
        for (j, &x) in tail.iter().enumerate() {
            if x != zero {
                (idx[at], val[at]) = ((values.len() - tail.len() + j) as u32, value(x));
                at += 1;
            }
        }
    }
}
