//! Runtime-dispatched vectorisation for elementwise loops.
//!
//! Built for baseline x86-64, a plain loop gets 4-wide SSE only. [`multiversion!`]
//! compiles the same body again with AVX2 and with AVX-512 enabled and picks the widest
//! the CPU has, at run time. Results do not change: Rust never fuses a multiply and an add
//! on its own, so every operation rounds exactly as in the scalar loop.

/// Defines `pub(crate) fn $name(args)` whose body is compiled for SSE2, AVX2 and
/// AVX-512F and dispatched at run time.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512($($arg: $ty),*) { generic($($arg),*) }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2($($arg: $ty),*) { generic($($arg),*) }

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
