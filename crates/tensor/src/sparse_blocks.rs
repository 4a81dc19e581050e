//! The register-blocked kernel both sparse products share: each output row is a sum of
//! scaled rows of a dense operand, `out[o,:] = Σ_p v_p · b[idx_p,:]`, computed 64
//! columns at a time in registers from a packed copy of the operand.
//!
//! Two things make the plain loop slow on real data (MNIST digits, 19 % non-zero), both
//! measured on an AMD EPYC Zen 4 (`docs/performance.md`):
//! - loading and storing the output row for every term: the loop is then bound by L1
//!   traffic, not arithmetic. Here a block of the output stays in registers and is
//!   written once.
//! - the operand's rows are 2 KiB apart (512 `f32`), so a 64-column strip of them maps
//!   onto a few cache sets and keeps evicting itself. [`PackedColumns`] copies each strip
//!   into contiguous memory first (0.04 ms for a 784×512 kernel).
//!
//! Four output rows are summed side by side (independent chains the core overlaps). Every
//! output still adds its terms in the order they are listed, starting from its initial
//! value, exactly as a scalar loop would (each term one fused multiply-add): the results
//! are bitwise equal to it.

use crate::pool::{for_row_blocks, row_blocks};
use crate::{Parallelism, View};

/// Output columns one register block holds: 64 `f32` are four AVX-512 registers.
const BLOCK: usize = 64;
/// Output rows summed side by side.
const ROWS: usize = 4;

/// A dense `k × n` operand copied block of columns by block: the block starting at
/// column `c0` holds `k` contiguous rows of 64 values at offset `c0 · k`, a last,
/// narrower block padded with zeros. (Narrower blocks of their own, 16 or 32 wide,
/// measured several times slower per value than a padded 64.)
#[derive(Debug, Clone, Default)]
pub struct PackedColumns {
    data: Vec<f32>,
    /// Where the packed values start in `data` (its first 64-byte boundary).
    offset: usize,
    rows: usize,
    cols: usize,
}

/// Operands narrower than this are better served by the plain loop (measured on MNIST
/// digits: at 16 and 32 columns it is 1.3–2.5× faster than a padded block).
pub(crate) const MIN_COLUMNS: usize = BLOCK;

impl PackedColumns {
    /// Copies `b` into the packed layout, reusing the buffer; blocks are copied by `par`'s
    /// threads.
    fn pack(&mut self, b: View<'_>, par: Parallelism) {
        let (k, n) = (b.rows, b.cols);
        self.rows = k;
        self.cols = n;
        let padded = n.next_multiple_of(BLOCK);
        // 16 spare values, so the packed rows can start on a 64-byte boundary: a row of
        // 16 values is then one cache line, and no load straddles two.
        self.data.resize(k * padded + 16, 0.0);
        let misalignment = (self.data.as_ptr() as usize % 64) / size_of::<f32>();
        self.offset = (16 - misalignment) % 16;
        let strips = &mut self.data[self.offset..self.offset + k * padded];
        // (`row_blocks`, not `split_ranges`: blocks are not values, no rounding to 16.)
        let blocks = row_blocks(par, padded / BLOCK, MIN_BLOCKS_PER_THREAD);
        for_row_blocks(par, strips, k * BLOCK, &blocks, |first, strips| {
            for (s, strip) in strips.chunks_exact_mut(k * BLOCK).enumerate() {
                pack_block(b, (first + s) * BLOCK, strip);
            }
        });
    }

    /// `count` buffers of one strip of a `k`-row operand each, 64-byte aligned, reusing
    /// `self`'s (whose `rows` and `cols` then no longer describe a packed operand).
    pub(crate) fn strip_buffers(&mut self, count: usize, k: usize) -> std::slice::ChunksExactMut<'_, f32> {
        self.data.resize(count * k * BLOCK + 16, 0.0);
        let misalignment = (self.data.as_ptr() as usize % 64) / size_of::<f32>();
        (self.offset, self.rows, self.cols) = ((16 - misalignment) % 16, 0, 0);
        // (A strip is `k` rows of 256 bytes: each buffer starts on a 64-byte boundary.)
        self.data[self.offset..self.offset + count * k * BLOCK].chunks_exact_mut((k * BLOCK).max(1))
    }

    /// `b` in the packed layout: itself when it already is (64 columns: one block), else
    /// a copy packed into `self`.
    pub(crate) fn of<'a>(&'a mut self, b: View<'a>, par: Parallelism) -> Packed<'a> {
        if b.cols == BLOCK {
            return Packed { data: b.data, rows: b.rows, cols: b.cols };
        }
        self.pack(b, par);
        Packed { data: &self.data[self.offset..], rows: self.rows, cols: self.cols }
    }
}

/// Fewest blocks a thread packs (one block of a 784-row kernel is 200 KB).
const MIN_BLOCKS_PER_THREAD: usize = 2;

/// Copies columns `c0..c0 + 64` of `b` (zeros past its last column) into `strip`, with
/// the widest vector copies the core has.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn pack_block(b: View<'_>, c0: usize, strip: &mut [f32]) {
    let (n, w) = (b.cols, (b.cols - c0).min(BLOCK));
    if w == BLOCK {
        // Copies of one vector register each, inlined (a row at once became a `memcpy`
        // call per row).
        for (q, dst) in strip.chunks_exact_mut(16).enumerate() {
            let (j, l) = (q / 4, q % 4 * 16);
            let dst: &mut [f32; 16] = dst.try_into().expect("a register");
            *dst = b.data[j * n + c0 + l..j * n + c0 + l + 16].try_into().expect("a register");
        }
        return;
    }
    for (j, dst) in strip.chunks_exact_mut(BLOCK).enumerate() {
        dst[..w].copy_from_slice(&b.data[j * n + c0..j * n + c0 + w]);
        dst[w..].fill(0.0);
    }
}

/// A dense operand in [`PackedColumns`]' layout, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct Packed<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

/// Where output `o`'s row goes: row `o` itself, or row `listed[o] − row0`.
#[derive(Clone, Copy)]
pub(crate) enum Dest<'a> {
    /// Output `o` is row `o` of `out`.
    Same,
    /// Output `o` is row `listed[o] − row0` of `out`.
    Listed(&'a [u32], usize),
}

impl Dest<'_> {
    #[inline(always)]
    fn row(self, o: usize) -> usize {
        match self {
            Dest::Same => o,
            Dest::Listed(rows, row0) => rows[o] as usize - row0,
        }
    }
}

/// For each output `o` (`ptr.len() − 1` of them), row `dest(o)` of `out` (`n` columns)
/// becomes `init + Σ_{p ∈ ptr[o]..ptr[o+1]} vals[p] · b[idx[p],:]`, where `init` is the row's
/// current value when `accumulate`, else `+0`. Outputs go `group` at a time, each group
/// block by block: a whole group (`usize::MAX`) keeps one strip of `b` in cache while every
/// output reads it (a batch's forward product); small groups finish a few output rows at
/// a time while they are in cache (a tall kernel gradient, whose rows a pass per block
/// would stream through 8 times).
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn blocked_sums(
    ptr: &[usize],
    idx: &[u32],
    vals: &[f32],
    b: Packed<'_>,
    dest: Dest<'_>,
    accumulate: bool,
    group: usize,
    out: &mut [f32],
) {
    let (k, n, outputs) = (b.rows, b.cols, ptr.len() - 1);
    for g0 in (0..outputs).step_by(group.max(1)) {
        let rows = g0..g0.saturating_add(group).min(outputs);
        for c0 in (0..n).step_by(BLOCK) {
            let w = (n - c0).min(BLOCK);
            let strip = &b.data[c0 * k..c0 * k + k * BLOCK];
            let c = Cols { c0, w, accumulate };
            block_sums::<BLOCK>(ptr, idx, vals, strip, dest, rows.clone(), c, &mut Flat { data: &mut *out, n });
        }
    }
}

/// [`blocked_sums`] of every output at once, adding to `out` (a batch's forward product),
/// for the 64-column strips `strips` of `b`: `out` holds those strips' columns of every
/// output row (all of them on one thread; a thread's share when threads split the
/// strips, so that none crosses between cores). Each strip is packed into `strip` (a
/// buffer of [`PackedColumns::strip_buffers`]) just before the outputs read it, while it
/// is in this core's L2, where packing the whole operand first would have left the first
/// strips in L3: W1r 5 % faster on one thread (Intel Xeon, `docs/performance.md`). The
/// same sums in the same order.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub(crate) fn blocked_sums_packing(
    ptr: &[usize],
    idx: &[u32],
    vals: &[f32],
    b: View<'_>,
    strips: std::ops::Range<usize>,
    strip: &mut [f32],
    out: faer::MatMut<'_, f32>,
) {
    let mut out = ColumnBlock(out.try_as_row_major_mut().expect("row-major output rows"));
    let (n, outputs, first) = (b.cols, ptr.len() - 1, strips.start * BLOCK);
    for s in strips {
        let c0 = s * BLOCK;
        pack_block(b, c0, strip);
        let c = Cols { c0: c0 - first, w: (n - c0).min(BLOCK), accumulate: true };
        block_sums::<BLOCK>(ptr, idx, vals, strip, Dest::Same, 0..outputs, c, &mut out);
    }
}

/// The output columns one block covers.
#[derive(Clone, Copy)]
struct Cols {
    /// The block's first column, counted from the first column the output holds.
    c0: usize,
    /// Real columns of the block (≤ its padded width).
    w: usize,
    accumulate: bool,
}

/// The output rows a kernel writes.
trait OutRows {
    /// Row `r`, from the first column this output holds.
    fn row(&mut self, r: usize) -> &mut [f32];
}

/// Whole rows of `n` values, one after another.
struct Flat<'a> {
    data: &'a mut [f32],
    n: usize,
}

impl OutRows for Flat<'_> {
    #[inline(always)]
    fn row(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.n..(r + 1) * self.n]
    }
}

/// A block of columns of row-major rows: a batch's output, or one thread's strips of it.
struct ColumnBlock<'a>(faer::MatMut<'a, f32, usize, usize, isize, faer::ContiguousFwd>);

impl OutRows for ColumnBlock<'_> {
    #[inline(always)]
    fn row(&mut self, r: usize) -> &mut [f32] {
        faer::reborrow::ReborrowMut::rb_mut(&mut self.0).row_mut(r).as_slice_mut()
    }
}

/// One block of [`blocked_sums`], `P` (padded) columns wide; inlined into each
/// instruction set.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block_sums<const P: usize>(
    ptr: &[usize],
    idx: &[u32],
    vals: &[f32],
    strip: &[f32],
    dest: Dest<'_>,
    outputs: std::ops::Range<usize>,
    c: Cols,
    out: &mut impl OutRows,
) {
    // Rows of the strip as arrays: one bounds check per term, and sums LLVM keeps in
    // registers.
    let row = |j: u32| -> &[f32; P] { strip[j as usize * P..(j as usize + 1) * P].try_into().expect("a packed row") };
    let mut o = outputs.start;
    while o + ROWS <= outputs.end {
        let mut acc = [[0.0f32; P]; ROWS];
        let (mut p, mut e) = ([0usize; ROWS], [0usize; ROWS]);
        for r in 0..ROWS {
            acc[r] = load(dest.row(o + r), c, out);
            (p[r], e[r]) = (ptr[o + r], ptr[o + r + 1]);
        }
        // The four rows' terms side by side while all have some, then each one's rest.
        let common = (0..ROWS).map(|r| e[r] - p[r]).min().unwrap_or(0);
        for _ in 0..common {
            for r in 0..ROWS {
                add_term(&mut acc[r], vals[p[r]], row(idx[p[r]]));
                p[r] += 1;
            }
        }
        for r in 0..ROWS {
            for q in p[r]..e[r] {
                add_term(&mut acc[r], vals[q], row(idx[q]));
            }
            store(acc[r], dest.row(o + r), c, out);
        }
        o += ROWS;
    }
    for o in o..outputs.end {
        let mut acc = load(dest.row(o), c, out);
        for q in ptr[o]..ptr[o + 1] {
            add_term(&mut acc, vals[q], row(idx[q]));
        }
        store(acc, dest.row(o), c, out);
    }
}

/// `acc += v · row` as one fused multiply-add per lane (rounded once), as every kernel
/// of the sparse path and faer's dense products round: W1r 8.6 % faster than a multiply
/// then an add (Intel Xeon, `docs/performance.md`).
#[inline(always)]
fn add_term<const P: usize>(acc: &mut [f32; P], v: f32, row: &[f32; P]) {
    for l in 0..P {
        acc[l] = v.mul_add(row[l], acc[l]);
    }
}

/// A block's starting sums: row `row` of `out` when accumulating, else `+0`. (Whole
/// arrays in and out, so that the sums themselves are never sliced and stay in
/// registers.)
#[inline(always)]
fn load<const P: usize>(row: usize, c: Cols, out: &mut impl OutRows) -> [f32; P] {
    let mut start = [0.0f32; P];
    if c.accumulate && c.w == P {
        // Of known length: inlined, not a `memcpy` call.
        start = out.row(row)[c.c0..c.c0 + P].try_into().expect("a full block");
    } else if c.accumulate {
        start[..c.w].copy_from_slice(&out.row(row)[c.c0..c.c0 + c.w]);
    }
    start
}

/// Writes the real columns of a block's sums to row `row` of `out`.
#[inline(always)]
fn store<const P: usize>(acc: [f32; P], row: usize, c: Cols, out: &mut impl OutRows) {
    let to = &mut out.row(row)[c.c0..];
    if c.w == P {
        let dst: &mut [f32; P] = (&mut to[..P]).try_into().expect("a full block");
        *dst = acc;
    } else {
        to[..c.w].copy_from_slice(&acc[..c.w]);
    }
}
