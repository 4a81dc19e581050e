//! Clearing the upper halves of the vector registers after code that leaves them dirty.
//!
//! faer's x86 GEMM microkernels (hand-written AVX2/AVX-512 assembly) return without
//! `vzeroupper`. With the upper 128+ bits of YMM/ZMM0–15 left dirty, every later legacy
//! SSE instruction on Intel cores pays a state-transition penalty or a false dependency
//! on the whole register — and that is all scalar Rust code built for baseline x86-64,
//! glibc's `expf`/`logf` entry sequences, the loss and the softmax. Measured on an Intel
//! Xeon: logistic regression (W1b) ran 0.51 s/epoch dirty and 0.092 s clean. AMD cores do
//! not track the state and pay nothing. oneDNN hit the same (their issue #247).
//!
//! Rust code compiled with AVX enabled (our `multiversion` kernels) gets `vzeroupper`
//! from LLVM before it returns, so only foreign code needs this.

/// Executes `vzeroupper` when the CPU has AVX (a no-op elsewhere): call it right after
/// any foreign code that may have used 256- or 512-bit registers.
#[inline]
pub fn clear_upper_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX is present (checked above), so `vzeroupper` is a valid instruction.
        // It zeroes bits 128 and up of YMM/ZMM0–15 and keeps the low 128 bits; declaring
        // xmm0–15 clobbered keeps the compiler from holding any vector value across it
        // (code compiled for baseline x86-64 only knows the low 128 bits anyway).
        unsafe {
            core::arch::asm!(
                "vzeroupper",
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                options(nomem, nostack, preserves_flags),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_vector_registers_survive() {
        // A float kept in an xmm register across the call must be reloaded, not lost.
        let x = std::hint::black_box(1.25f32);
        let y = std::hint::black_box(3.5f64);
        clear_upper_state();
        assert_eq!(x * 2.0, 2.5);
        assert_eq!(y + 1.0, 4.5);
    }
}
