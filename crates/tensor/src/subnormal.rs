//! Flushing float32 subnormals (magnitudes below 2⁻¹²⁶ ≈ 1.18·10⁻³⁸) to zero.
//!
//! TensorFlow runs its CPU kernels with the x86 flush-to-zero and denormals-are-zero
//! modes on, so a Keras model carries no subnormal values. kiln does not change MXCSR
//! (Rust documents it as undefined behaviour) and flushes explicitly instead, where
//! subnormals are mostly born: the loss gradient, the backward pass of every non-linear
//! activation, the optimizer state ([`flush`]), and inside the update loops of RMSprop,
//! Adam and SGD, where an operand whose product would underflow (RMSprop's `(1−ρ)·g²` or
//! `lr·g` of a tiny gradient) is zeroed before the multiplication ([`zero_below`]). Other
//! products may still make one now and then (a matrix product's output, gradient
//! clipping, weight decay): those cost a little speed, not results.
//!
//! Without it, a model that fits its data well (real MNIST digits) makes softmax
//! probabilities of 10⁻⁴⁰ and gradients to match, and every multiplication that takes or
//! makes a subnormal is a microcode assist on Intel cores: a W1r epoch grew from 0.6 to
//! 1.05 s over six epochs on an Intel Xeon, and stays at 0.59 s with these flushes
//! (AMD's Zen cores pay far less). Only products that would underflow change (to a zero,
//! as under flush-to-zero), and with them steps too small to move any weight above
//! ~10⁻²⁶: no Keras trace or `reproduce` history resolves them.

/// `x`, or a zero of its sign when it is subnormal.
#[inline(always)]
pub fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0f32.copysign(x) } else { x }
}

/// Every subnormal value of `x` replaced by a zero of its sign ([`flush`]), vectorized.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
pub fn flush_subnormals(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = flush(*v));
}

/// The smallest magnitude `x` for which `scale·x` is a normal number, to within an ulp
/// (`2⁻¹²⁶/|scale|` rounded; at least 2⁻¹²⁶ itself, so a subnormal `x` is always below
/// it): under flush-to-zero (and denormals-are-zero) TensorFlow gets `±0` from `scale·x`
/// for any smaller `x`. `∞` when `scale` is 0 (every finite product is zero).
pub fn product_floor(scale: f32) -> f32 {
    (f32::MIN_POSITIVE / scale.abs()).max(f32::MIN_POSITIVE)
}

/// The smallest magnitude `x` for which `scale·(x·x)` is a normal number, to within an
/// ulp (see [`product_floor`]); `∞` when `scale` is 0.
pub fn square_floor(scale: f32) -> f32 {
    (f32::MIN_POSITIVE / scale.abs()).sqrt().max(f32::MIN_POSITIVE.sqrt())
}

/// `x`, or a zero of its sign when `|x| < floor`: the operand of a product that would
/// underflow, zeroed *before* the multiplication, so the core never makes a subnormal
/// (a microcode assist on Intel cores even in a vector lane whose result is dropped).
#[inline(always)]
pub fn zero_below(x: f32, floor: f32) -> f32 {
    if x.abs() < floor { 0.0f32.copysign(x) } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subnormals_become_zeros_of_their_sign() {
        let tiny = f32::MIN_POSITIVE;
        let mut x = [tiny, -tiny, tiny / 2.0, -tiny / 2.0, f32::from_bits(1), 0.0, -0.0, 1.0, f32::INFINITY, f32::NAN];
        flush_subnormals(&mut x);
        let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
        let want = [tiny, -tiny, 0.0, -0.0, 0.0, 0.0, -0.0, 1.0, f32::INFINITY];
        let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits[..9], want[..]);
        assert!(x[9].is_nan());
    }

    #[test]
    fn floors_sit_where_the_products_turn_subnormal() {
        for scale in [1e-3f32, 0.01, 0.1, 0.9, 1.0, 3.0, 1e6] {
            let floor = product_floor(scale);
            let above = f32::from_bits(floor.to_bits() + 2);
            assert!((scale * above).abs() >= f32::MIN_POSITIVE, "scale {scale}");
            if scale <= 1.0 {
                let below = f32::from_bits(floor.to_bits() - 2);
                assert!((scale * below).abs() < f32::MIN_POSITIVE, "scale {scale}");
            }
            let floor = square_floor(scale);
            let above = f32::from_bits(floor.to_bits() + 2);
            assert!(scale * (above * above) >= f32::MIN_POSITIVE, "scale {scale}");
            if scale <= 1.0 {
                let below = f32::from_bits(floor.to_bits() - 2);
                assert!(scale * (below * below) < f32::MIN_POSITIVE, "scale {scale}");
            }
        }
        // Subnormal operands are always below the floor (denormals-are-zero).
        assert!(product_floor(1e6) >= f32::MIN_POSITIVE);
        assert_eq!(product_floor(0.0), f32::INFINITY);
        assert_eq!(square_floor(0.0), f32::INFINITY);
        assert_eq!(zero_below(-1e-30, 1e-20).to_bits(), (-0.0f32).to_bits());
        assert!(zero_below(f32::NAN, 1.0).is_nan());
        assert_eq!(zero_below(2e-20, 1e-20), 2e-20);
    }
}
