//! Runtime-dispatched vectorisation of the update loops.
//!
//! Update rules are plain elementwise loops; built for baseline x86-64 they get 4-wide SSE
//! only. Compiling the same loop again with AVX2 / AVX-512 enabled and choosing at run
//! time makes it 2–4× wider without changing any result: Rust never fuses a multiply and
//! an add on its own, so every operation rounds exactly as in the scalar loop.

/// Calls `$body` (a closure-free block using the given arguments) through the widest
/// instruction set this CPU supports.
macro_rules! dispatch {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        #[inline(always)]
        fn generic($($arg: $ty),*) $body

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512($($arg: $ty),*) { generic($($arg),*) }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn avx2($($arg: $ty),*) { generic($($arg),*) }

        pub(crate) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use dispatch;
