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

/// How fast baseline scalar code runs right after a matrix product, three ways. On a CPU
/// that pays the SSE/AVX transition penalty (Intel), `after_raw_product` is several times
/// `after_clear`; kiln's products must read like `after_clear` everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransitionCheck {
    /// Seconds of the loop right after faer's product, upper state left as faer left it.
    pub after_raw_product: f64,
    /// Seconds of the loop right after `kiln_tensor::matmul::ab`.
    pub after_kiln_product: f64,
    /// Seconds of the loop right after an explicit `vzeroupper`.
    pub after_clear: f64,
}

impl TransitionCheck {
    /// `after_kiln_product / after_clear`: about 1.0 when kiln leaves no dirty state.
    pub fn kiln_ratio(&self) -> f64 {
        self.after_kiln_product / self.after_clear
    }

    /// `after_raw_product / after_clear`: the penalty this CPU would charge without the fix.
    pub fn penalty(&self) -> f64 {
        self.after_raw_product / self.after_clear
    }
}

/// Times a scalar `expf` loop (glibc's, as the loss and softmax call it) after a raw
/// faer product, after kiln's product, and after `vzeroupper`; the best of 15 rounds each.
pub fn transition_check() -> TransitionCheck {
    use crate::{Accumulate, Matrix, Parallelism};
    let a = Matrix::from_vec(64, 256, (0..64 * 256).map(|i| (i % 7) as f32 * 0.1).collect()).expect("shape");
    let b = Matrix::from_vec(256, 256, (0..256 * 256).map(|i| (i % 5) as f32 * 0.1).collect()).expect("shape");
    let mut c = Matrix::zeros(64, 256);
    let inputs: Vec<f32> = (0..20_000).map(|i| (i % 100) as f32 * -0.05).collect();
    let scalar_loop = || {
        let t = std::time::Instant::now();
        let mut sum = 0.0f32;
        for &x in &inputs {
            sum += std::hint::black_box(x).exp();
        }
        std::hint::black_box(sum);
        t.elapsed().as_secs_f64()
    };
    let (mut raw, mut kiln, mut clear) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..15 {
        let (dst, lhs, rhs) = (c.view_mut().into_faer(), a.view().as_faer(), b.view().as_faer());
        faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, faer::Par::Seq);
        raw = raw.min(scalar_loop());
        crate::matmul::ab(c.view_mut(), a.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
        kiln = kiln.min(scalar_loop());
        clear_upper_state();
        clear = clear.min(scalar_loop());
    }
    TransitionCheck { after_raw_product: raw, after_kiln_product: kiln, after_clear: clear }
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
