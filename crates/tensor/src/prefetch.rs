//! Software prefetch of rows about to be read. A batch gathers rows of the training set
//! in a shuffled order: each row is a trip to memory the hardware prefetcher cannot
//! predict (it only follows strides), so the gather waits on every row's first lines.
//! Asking for the next rows' lines while this one is processed hides that wait.

/// Asks the core to bring every cache line of `values` into cache (x86-64's
/// `prefetcht0`; nothing elsewhere). A hint only: no value changes, nothing faults.
#[inline]
pub fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = values.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(values);
        if bytes == 0 {
            return;
        }
        // From the first line's start, so an unaligned row's last line is fetched too.
        let skew = start as usize % 64;
        for offset in (0..skew + bytes).step_by(64) {
            // SAFETY: `prefetcht0` is in x86-64's baseline (SSE) and never faults or
            // reads architecturally; the address (wrapping arithmetic, never dereferenced)
            // is in a cache line that holds part of `values`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_sub(skew).wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}
