//! Splitting a time-major recurrence between threads by samples, for every step at once.
//!
//! A recurrent layer's buffers are time-major: step `t`'s rows are `t·batch..(t+1)·batch`.
//! Samples never interact, so a thread can run *every* step for its block of samples, with
//! no hand-off between steps (one hand-off per step cost more than a small LSTM step's
//! work: W4 ran slower on 2 threads than on 1). A block's rows of a buffer are then one
//! strip per step, interleaved with the other blocks' strips — not a sub-slice that
//! `split_at_mut` can cut off — so [`StepRows`] hands them out a step at a time.

use std::marker::PhantomData;
use std::ops::Range;

use crate::Parallelism;

/// One block of samples' rows of a time-major buffer (`[steps·batch, width]`): at each step
/// `t`, rows `t·batch + rows`. Blocks of one buffer never share a row, so a block may be
/// handed to another thread.
pub struct StepRows<'a> {
    ptr: *mut f32,
    len: usize,
    batch: usize,
    width: usize,
    rows: Range<usize>,
    _buffer: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `StepRows` reaches only its own rows of its buffer (`strip` below), which no
// other `StepRows` made from the same buffer reaches (`for_sample_blocks` asserts the
// blocks are disjoint and within the batch); moving it to another thread is moving a
// `&mut` to those rows.
unsafe impl Send for StepRows<'_> {}

impl<'a> StepRows<'a> {
    fn new(buffer: &'a mut [f32], batch: usize, width: usize, rows: Range<usize>) -> Self {
        Self { ptr: buffer.as_mut_ptr(), len: buffer.len(), batch, width, rows, _buffer: PhantomData }
    }

    /// Where step `t`'s rows of this block are in the buffer. Panics past its end (checked
    /// arithmetic: a wrapped offset could land in another block's rows).
    fn strip(&self, t: usize) -> Range<usize> {
        let at = |row: usize| t.checked_mul(self.batch)?.checked_add(row)?.checked_mul(self.width);
        match (at(self.rows.start), at(self.rows.end)) {
            (Some(start), Some(end)) if end <= self.len => start..end,
            _ => panic!("step {t} is past the buffer's {} values", self.len),
        }
    }

    /// This block's rows of step `t`, to write (`[rows, width]`).
    pub fn step(&mut self, t: usize) -> &mut [f32] {
        let r = self.strip(t);
        // SAFETY: `r` is in bounds (checked by `strip`) and holds only this block's rows
        // (see the `Send` impl); `&mut self` keeps any other borrow of them out.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.len()) }
    }

    /// This block's rows of step `read`, to read, and of step `write`, to write (steps
    /// differ, so the strips do not overlap). Panics when they are the same step.
    pub fn read_write(&mut self, read: usize, write: usize) -> (&[f32], &mut [f32]) {
        assert_ne!(read, write, "one step cannot be read and written at once");
        let (r, w) = (self.strip(read), self.strip(write));
        // SAFETY: both in bounds, this block's own, and disjoint (different steps).
        unsafe {
            (
                std::slice::from_raw_parts(self.ptr.add(r.start), r.len()),
                std::slice::from_raw_parts_mut(self.ptr.add(w.start), w.len()),
            )
        }
    }
}

/// Calls `f(rows, [buffer rows; N])` once per block of samples in `blocks` (disjoint,
/// increasing, within `0..batch`, and covering it, as
/// [`row_blocks`](crate::pool::row_blocks) makes them: rows in no block are not visited),
/// each buffer given as `(values, width)` of a time-major `[steps·batch, width]` layout (a
/// per-sample buffer is one step). With several blocks and threads, blocks run in parallel
/// (on the thread team, [`for_each_job`](crate::pool::for_each_job), which allocates
/// nothing); else one call covers every sample on this thread. Each block's rows get the
/// same arithmetic whichever thread runs them, so the bits do not depend on the threads.
pub fn for_sample_blocks<const N: usize>(
    par: Parallelism,
    batch: usize,
    blocks: &[Range<usize>],
    bufs: [(&mut [f32], usize); N],
    f: impl Fn(Range<usize>, [StepRows<'_>; N]) + Sync,
) {
    if par == Parallelism::Sequential || blocks.len() <= 1 {
        return f(0..batch, bufs.map(|(b, width)| StepRows::new(b, batch, width, 0..batch)));
    }
    // Every block on its own: increasing, not reversed, within the batch (a reversed range
    // is empty to `len()` and would let its neighbours overlap).
    let mut end = 0;
    for r in blocks {
        assert!(
            end <= r.start && r.start <= r.end && r.end <= batch,
            "sample blocks must be disjoint, within the batch"
        );
        end = r.end;
    }
    let buffers = Buffers(bufs.map(|(b, width)| (b.as_mut_ptr(), b.len(), width)));
    // Each block gets its own `StepRows` of every buffer; the buffers stay borrowed
    // (`bufs`' lifetime) until every block has run.
    // (`for_each_job` clears the upper vector state before each block.)
    crate::pool::for_each_job(blocks.len(), |k| {
        let rows = blocks[k].clone();
        f(rows.clone(), buffers.block(batch, &rows))
    });
}

/// The buffers' `(start, length, width)`, shared by the blocks' tasks.
struct Buffers<const N: usize>([(*mut f32, usize, usize); N]);

// SAFETY: the tasks only turn these into `StepRows` of their own, disjoint blocks.
unsafe impl<const N: usize> Sync for Buffers<N> {}

impl<const N: usize> Buffers<N> {
    /// Every buffer's rows of the samples `rows`.
    fn block(&self, batch: usize, rows: &Range<usize>) -> [StepRows<'_>; N] {
        self.0.map(|(ptr, len, width)| StepRows { ptr, len, batch, width, rows: rows.clone(), _buffer: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_writes_its_rows_of_every_step() {
        let (steps, batch, width) = (5, 7, 3);
        let mut a = vec![0.0f32; steps * batch * width];
        let mut h = vec![0.0f32; (steps + 1) * batch * width];
        let blocks = [0..2, 2..5, 5..7];
        Parallelism::threads(3).install(|| {
            for_sample_blocks(
                Parallelism::threads(3),
                batch,
                &blocks,
                [(&mut a, width), (&mut h, width)],
                |rows, [mut a, mut h]| {
                    for t in 0..steps {
                        let (prev, next) = h.read_write(t, t + 1);
                        let step = a.step(t);
                        for (k, v) in step.iter_mut().enumerate() {
                            *v = (t * 1000 + rows.start * width + k) as f32;
                        }
                        for (n, p) in next.iter_mut().zip(prev) {
                            *n = p + 1.0;
                        }
                    }
                },
            );
        });
        for t in 0..steps {
            for i in 0..batch * width {
                assert_eq!(a[(t * batch) * width + i], (t * 1000 + i) as f32, "step {t} value {i}");
            }
        }
        assert!(h[steps * batch * width..].iter().all(|&v| v == steps as f32));
    }

    #[test]
    #[should_panic(expected = "disjoint")]
    #[allow(clippy::reversed_empty_ranges)] // (the reversed range is the point)
    fn overlapping_blocks_are_refused() {
        let mut a = vec![0.0f32; 4];
        for_sample_blocks(Parallelism::threads(2), 4, &[0..2, 2..0, 1..3], [(&mut a, 1)], |_, _| {});
    }

    #[test]
    #[should_panic(expected = "disjoint")]
    fn blocks_past_the_batch_are_refused() {
        let mut a = vec![0.0f32; 10];
        for_sample_blocks(Parallelism::threads(2), 4, &[0..2, 2..10], [(&mut a, 1)], |_, _| {});
    }

    #[test]
    #[should_panic(expected = "past the buffer")]
    fn a_wrapping_step_panics() {
        let mut a = vec![0.0f32; 3];
        for_sample_blocks(Parallelism::threads(2), 3, &[0..1, 1..3], [(&mut a, 1)], |rows, [mut a]| {
            if rows.start == 0 {
                a.step(0xAAAA_AAAA_AAAA_AAAB);
            }
        });
    }

    #[test]
    #[should_panic(expected = "read and written")]
    #[allow(clippy::single_range_in_vec_init)] // (one block of every sample)
    fn one_step_read_and_written_panics() {
        let mut a = vec![0.0f32; 4];
        for_sample_blocks(Parallelism::Sequential, 4, &[0..4], [(&mut a, 1)], |_, [mut a]| {
            a.read_write(0, 0);
        });
    }

    #[test]
    #[should_panic(expected = "past the buffer")]
    fn a_step_past_the_buffer_panics() {
        let mut a = vec![0.0f32; 2 * 4];
        for_sample_blocks(Parallelism::threads(2), 4, &[0..2, 2..4], [(&mut a, 1)], |_, [mut a]| {
            a.step(2);
        });
    }
}
