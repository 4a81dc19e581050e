//! Flush-to-zero for subnormal floats while training.
//!
//! With ReLUs that die and RMSprop averages that decay, values sink into the subnormal
//! range, where x86 arithmetic is many times slower. TensorFlow runs its kernels with
//! flush-to-zero and denormals-are-zero set; kiln does the same for the duration of a
//! [`FlushDenormals`] guard (on x86-64; elsewhere the guard does nothing).

/// Sets FTZ and DAZ on the current thread until dropped, then restores the old mode.
#[derive(Debug)]
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

impl FlushDenormals {
    /// Turns flush-to-zero on for this thread.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            write_mxcsr(saved | FTZ_DAZ);
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR register to the given, valid address.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: `ldmxcsr` loads MXCSR from a valid address; only the FTZ/DAZ mode bits
    // differ from the value read before, which changes rounding of subnormals only.
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_flush_inside_the_guard_only() {
        let tiny = std::hint::black_box(f32::MIN_POSITIVE);
        let half = std::hint::black_box(0.5f32);
        assert!(tiny * half > 0.0, "subnormal result outside the guard");
        {
            let _g = FlushDenormals::new();
            if cfg!(target_arch = "x86_64") {
                assert_eq!(std::hint::black_box(tiny) * std::hint::black_box(half), 0.0);
            }
        }
        assert!(std::hint::black_box(tiny) * std::hint::black_box(half) > 0.0, "mode restored");
    }
}
