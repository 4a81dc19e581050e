//! Thread pools for `Parallelism::Threads(n)`, and splitting work across them.
//!
//! Training with N threads runs *inside* a pool of N threads ([`Parallelism::install`]):
//! the training loop itself is one of them (measured: calling a pool from outside made
//! 2-thread W2L 18 % slower than 1 thread on 2 cores). Inside, the pool's other threads
//! form a warm team (`spindle`, the crate faer's own products use): between parallel
//! steps they spin a few milliseconds before they sleep, so handing them the next step
//! costs about 1 µs instead of the 10 µs of waking a sleeping thread (measured on an
//! Intel Xeon under KVM, `docs/performance.md`). Every split here runs on that team and
//! preserves each output's summation order, so N threads give the same bits as one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::Parallelism;
use crate::upper_state::clear_upper_state;

pub use crate::step_rows::{StepRows, for_sample_blocks};

/// The pool of `n` threads (built on first use, kept for the process).
fn pool(n: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<BTreeMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    pools
        .entry(n)
        .or_insert_with(|| {
            let built = rayon::ThreadPoolBuilder::new().num_threads(n).thread_name(|i| format!("kiln-{i}")).build();
            Arc::new(built.expect("the OS can start the threads of a pool"))
        })
        .clone()
}

impl Parallelism {
    /// Runs `f` on this many threads: directly when sequential, else inside the pool of
    /// that size with its other threads kept as a warm team for as long as `f` runs (so
    /// faer's products and [`for_ranges`] in `f` use exactly these threads, and cheaply).
    ///
    /// Called from a thread already in a rayon pool (a callback during a threaded `fit`
    /// that calls `predict`, or the caller's own pool), `f` runs right there, on that
    /// pool's threads: entering another pool from a team's thread could wait on the team
    /// itself. The numbers are the same either way. A pool's threads serve one team at a
    /// time: several callers installing the same thread count at once take turns.
    pub fn install<R: Send>(self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            Parallelism::Sequential => f(),
            Parallelism::Threads(_) if rayon::current_thread_index().is_some() => f(),
            Parallelism::Threads(n) if warm_team_pays() => pool(n.get()).install(|| {
                // This thread may last have run faer's assembly for another caller.
                clear_upper_state();
                spindle::with_lock(n.get(), f)
            }),
            Parallelism::Threads(n) => pool(n.get()).install(f),
        }
    }
}

/// Whether faer's products run on spindle's team here: x86-64 with AVX-512 or AVX2 and
/// FMA (faer's `private-gemm-x86` kernels). Elsewhere faer shares a product through rayon's
/// own jobs, which a team's threads, busy spinning for the team, would never take.
fn warm_team_pays() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: OnceLock<bool> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                || (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Most blocks work is cut into (more threads than this do not pay for these kernels).
pub const MAX_BLOCKS: usize = 32;

/// Runs `job(k)` for each `k` in `0..n`, on the current team's threads (inside
/// [`Parallelism::install`]; else on rayon's pool). With several jobs each first clears the
/// upper vector state: it may run on a thread that just ran faer's assembly. Handing jobs
/// to the team allocates nothing (called from inside a job, spindle builds a nested team,
/// which does).
pub fn for_each_job(n: usize, job: impl Fn(usize) + Sync) {
    match n {
        0 => {}
        1 => job(0),
        _ => spindle::for_each_raw(n, |k| {
            clear_upper_state();
            job(k)
        }),
    }
}

/// Runs `f(part)` once for each of `parts` (disjoint `&mut` slices of one buffer,
/// typically) as [`for_each_job`] does, [`MAX_BLOCKS`] at a time. The parts wait in fixed
/// slots, so handing them out allocates nothing.
pub fn for_each_part<P: Send>(parts: impl IntoIterator<Item = P>, f: impl Fn(P) + Sync) {
    let mut parts = parts.into_iter().peekable();
    while parts.peek().is_some() {
        let mut slots: [Mutex<Option<P>>; MAX_BLOCKS] = std::array::from_fn(|_| Mutex::new(None));
        let mut n = 0;
        for (slot, part) in slots.iter_mut().zip(parts.by_ref()) {
            *slot.get_mut().unwrap_or_else(PoisonError::into_inner) = Some(part);
            n += 1;
        }
        for_each_job(n, |k| {
            let part = slots[k].lock().unwrap_or_else(PoisonError::into_inner).take();
            f(part.expect("each part runs once"))
        });
    }
}

/// Contiguous, increasing ranges covering `0..len`, held inline (no allocation, so the
/// per-batch path stays allocation-free).
#[derive(Debug, Clone)]
pub struct Blocks {
    ranges: [Range<usize>; MAX_BLOCKS],
    len: usize,
}

impl Blocks {
    /// `0..len` in `parts` ranges of `step` (the last one shorter), empty ones dropped.
    fn even(len: usize, parts: usize, step: usize) -> Self {
        let parts = parts.clamp(1, MAX_BLOCKS);
        let mut ranges: [Range<usize>; MAX_BLOCKS] = std::array::from_fn(|_| 0..0);
        let mut n = 0;
        for p in 0..parts {
            let r = (p * step).min(len)..((p + 1) * step).min(len);
            if !r.is_empty() {
                ranges[n] = r;
                n += 1;
            }
        }
        if n == 0 {
            ranges[0] = 0..len;
            n = 1;
        }
        Self { ranges, len: n }
    }

    /// `0..len` cut before each of the increasing points `cuts` (the first
    /// [`MAX_BLOCKS`] ranges kept, the last one running to `len`), empty ones dropped.
    pub fn from_cuts(len: usize, cuts: impl IntoIterator<Item = usize>) -> Self {
        let mut ranges: [Range<usize>; MAX_BLOCKS] = std::array::from_fn(|_| 0..0);
        let (mut n, mut start) = (0, 0);
        for cut in cuts.into_iter().map(|c| c.min(len)) {
            if cut > start && n + 1 < MAX_BLOCKS {
                ranges[n] = start..cut;
                (n, start) = (n + 1, cut);
            }
        }
        ranges[n] = start..len;
        Self { ranges, len: if start < len || n == 0 { n + 1 } else { n } }
    }
}

impl std::ops::Deref for Blocks {
    type Target = [Range<usize>];

    fn deref(&self) -> &[Range<usize>] {
        &self.ranges[..self.len]
    }
}

/// Runs `f(range, out[range])` for each of `blocks` (contiguous, covering `out` in
/// order), on `par`'s threads when there are several (each task first clears the upper
/// vector state), else once over all of `out` on this thread.
pub fn for_blocks<T: Send>(
    par: Parallelism,
    blocks: &[Range<usize>],
    out: &mut [T],
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    if par == Parallelism::Sequential || blocks.len() <= 1 {
        return f(0..out.len(), out);
    }
    let mut rest = out;
    let parts = blocks.iter().map(|r| {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(r.len());
        rest = tail;
        (r.clone(), mine)
    });
    for_each_part(parts, |(r, mine)| f(r, mine));
}

/// `0..len` cut into at most `parts` contiguous ranges of at least `min_len` (aligned to
/// 16 elements, one AVX-512 register), in order.
pub fn split_ranges(len: usize, parts: usize, min_len: usize) -> Blocks {
    // (Clamped before the step is chosen: `Blocks` holds at most `MAX_BLOCKS`, and a step
    // for more parts would leave the tail of `0..len` in no block.)
    let parts = parts.min(len / min_len.max(1)).clamp(1, MAX_BLOCKS);
    Blocks::even(len, parts, len.div_ceil(parts).next_multiple_of(16).max(1))
}

/// Calls `f(k, range)` for each of `ranges`, on the current pool's threads when `par` has
/// several (each task first clears the upper vector state: it may run on a thread that
/// just ran faer's assembly), else in order on this thread.
pub fn for_ranges(par: Parallelism, ranges: &[Range<usize>], f: impl Fn(usize, Range<usize>) + Sync) {
    if par == Parallelism::Sequential || ranges.len() <= 1 {
        ranges.iter().cloned().enumerate().for_each(|(k, r)| f(k, r));
        return;
    }
    for_each_job(ranges.len(), |k| f(k, ranges[k].clone()));
}

/// Splits `data` into the row blocks `rows` (of `width` values each) and calls
/// `f(first_row, block)` on each, in parallel when `par` says so.
pub fn for_row_blocks(
    par: Parallelism,
    data: &mut [f32],
    width: usize,
    rows: &[Range<usize>],
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    if par == Parallelism::Sequential || rows.len() <= 1 {
        let mut rest = data;
        for r in rows {
            let (block, tail) = rest.split_at_mut((r.end - r.start) * width);
            f(r.start, block);
            rest = tail;
        }
        return;
    }
    let mut rest = data;
    let parts = rows.iter().map(|r| {
        let (block, tail) = std::mem::take(&mut rest).split_at_mut((r.end - r.start) * width);
        rest = tail;
        (r.start, block)
    });
    for_each_part(parts, |(start, block)| f(start, block));
}

/// [`for_row_blocks`] over two buffers (of any element types) cut at the same rows
/// (widths `wa` and `wb`): `f(first_row, a_block, b_block)`.
pub fn for_row_blocks2<A: Send, B: Send>(
    par: Parallelism,
    (a, wa): (&mut [A], usize),
    (b, wb): (&mut [B], usize),
    rows: &[Range<usize>],
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    if par == Parallelism::Sequential || rows.len() <= 1 {
        return f(0, a, b);
    }
    let (mut ra, mut rb) = (a, b);
    let parts = rows.iter().map(|r| {
        let n = r.end - r.start;
        let (ba, ta) = std::mem::take(&mut ra).split_at_mut(n * wa);
        let (bb, tb) = std::mem::take(&mut rb).split_at_mut(n * wb);
        (ra, rb) = (ta, tb);
        (r.start, ba, bb)
    });
    for_each_part(parts, |(start, ba, bb)| f(start, ba, bb));
}

/// Row blocks of `rows` rows for `par`: one per thread, none smaller than `min_rows`.
pub fn row_blocks(par: Parallelism, rows: usize, min_rows: usize) -> Blocks {
    let parts = par.thread_count().min(rows / min_rows.max(1)).clamp(1, MAX_BLOCKS);
    Blocks::even(rows, parts, rows.div_ceil(parts).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_make_contiguous_ranges() {
        let b = Blocks::from_cuts(10, [3, 3, 7, 12]);
        assert_eq!(&b[..], &[0..3, 3..7, 7..10]);
        for (len, cuts) in [(5, vec![]), (5, vec![0, 5]), (0, vec![])] {
            let b = Blocks::from_cuts(len, cuts);
            assert_eq!((b.len(), b[0].clone()), (1, 0..len));
        }
    }

    #[test]
    fn ranges_cover_everything_in_order() {
        for (len, parts, min) in [(100, 2, 1), (1000, 3, 64), (10, 4, 64), (0, 2, 1), (1 << 20, 2, 4096)] {
            let r = split_ranges(len, parts, min);
            assert_eq!(r.first().map_or(0, |r| r.start), 0);
            assert_eq!(r.last().map_or(0, |r| r.end), len);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            assert!(r.len() <= parts.max(1));
        }
        assert_eq!(split_ranges(10, 4, 64).len(), 1, "too small to split");
    }

    #[test]
    fn blocks_cover_every_row_with_more_threads_than_blocks() {
        for threads in [1, 2, 31, 32, 33, 64, 1024] {
            for (rows, min) in [(10_000, 1), (33 * 16, 16), (100, 1), (5, 16)] {
                let par = Parallelism::threads(threads);
                for blocks in [row_blocks(par, rows, min), split_ranges(rows, threads, min)] {
                    assert_eq!(blocks.first().map(|r| r.start), Some(0), "{threads} threads, {rows} rows");
                    assert_eq!(blocks.last().map(|r| r.end), Some(rows), "{threads} threads, {rows} rows");
                    assert!(blocks.windows(2).all(|w| w[0].end == w[1].start));
                }
            }
        }
    }

    #[test]
    fn work_in_a_pool_sees_its_threads() {
        let seen = Parallelism::threads(3).install(rayon::current_num_threads);
        assert_eq!(seen, 3);
        let sum = std::sync::atomic::AtomicUsize::new(0);
        for_ranges(Parallelism::threads(2), &split_ranges(1000, 2, 1), |_, r| {
            sum.fetch_add(r.len(), std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 1000);
    }

    /// Fills each value of `out` from its index, split into `parts` parts on `par`.
    fn fill_parts(par: Parallelism, out: &mut [f32], parts: usize) {
        let blocks = split_ranges(out.len(), parts, 1);
        par.install(|| {
            for_blocks(par, &blocks, out, |r, mine| {
                for (i, v) in r.zip(mine) {
                    *v = (i as f32).sqrt();
                }
            })
        });
    }

    #[test]
    fn every_part_runs_once_and_a_panic_reaches_the_caller() {
        let mut seq = vec![0.0; 10_000];
        fill_parts(Parallelism::Sequential, &mut seq, 1);
        for (threads, parts) in [(2, 2), (2, 7), (3, 32)] {
            let mut out = vec![-1.0; 10_000];
            fill_parts(Parallelism::threads(threads), &mut out, parts);
            assert_eq!(out, seq, "{threads} threads, {parts} parts");
        }
        // Every job exactly once, more of them than a call's slots.
        for (threads, jobs) in [(2, 5), (3, 70)] {
            let runs: Vec<std::sync::atomic::AtomicUsize> = (0..jobs).map(|_| Default::default()).collect();
            Parallelism::threads(threads).install(|| {
                for_each_job(jobs, |k| {
                    runs[k].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                });
                for_each_part(0..jobs, |k| {
                    runs[k].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                });
            });
            assert!(runs.iter().all(|r| r.load(std::sync::atomic::Ordering::Relaxed) == 2), "{jobs} jobs");
        }
        let caught = std::panic::catch_unwind(|| {
            Parallelism::threads(2).install(|| for_each_job(4, |k| assert!(k != 2, "job {k} fails")))
        });
        assert!(caught.is_err(), "a job's panic reaches the caller");
        // The pool still works after it.
        let mut out = vec![-1.0; 10_000];
        fill_parts(Parallelism::threads(2), &mut out, 2);
        assert_eq!(out, seq);
        // A pool of another size entered from inside a team runs where it is called.
        let mut out = vec![-1.0; 10_000];
        Parallelism::threads(2).install(|| fill_parts(Parallelism::threads(3), &mut out, 3));
        assert_eq!(out, seq);
    }

    /// The team lives in spindle's thread-locals: kiln and faer must use the same copy of
    /// the crate, or faer's products would find no team and run on one thread.
    #[test]
    fn faer_and_kiln_share_one_spindle() {
        let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
        let Ok(lock) = std::fs::read_to_string(&lock) else { return }; // built outside the workspace
        assert_eq!(lock.matches("name = \"spindle\"").count(), 1, "one spindle in Cargo.lock");
    }

    #[test]
    fn trainings_sharing_a_pool_from_several_threads_all_finish() {
        // Each caller's team may find the pool's other thread busy with another caller's
        // team: the calling thread then runs every part itself rather than wait for it.
        let mut seq = vec![0.0; 50_000];
        fill_parts(Parallelism::Sequential, &mut seq, 1);
        // A product faer shares (16.7 M multiply-adds, 65,536 outputs).
        let a = crate::Matrix::from_vec(256, 256, (0..65_536).map(|i| (i % 13) as f32 - 6.0).collect()).unwrap();
        let product = |par: Parallelism| {
            let mut c = crate::Matrix::zeros(256, 256);
            par.install(|| crate::matmul::ab(c.view_mut(), a.view(), a.view(), crate::Accumulate::Replace, par));
            c
        };
        let seq_product = product(Parallelism::Sequential);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        let mut out = vec![-1.0; 50_000];
                        fill_parts(Parallelism::threads(2), &mut out, 2);
                        assert_eq!(out, seq);
                        assert_eq!(product(Parallelism::threads(2)).as_slice(), seq_product.as_slice());
                    }
                });
            }
        });
    }
}
