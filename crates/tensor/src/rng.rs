//! A seeded, version-stable random generator (ChaCha8) with named child streams.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A ChaCha8 generator. Its output for a given seed is fixed by the ChaCha8 algorithm, not
/// by a crate version (`StdRng` may change between `rand` releases), and every conversion
/// below (to floats, ranges, shuffles) is written here so it cannot drift either.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        Self { inner: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// An independent generator for the named purpose (`"init"`, `"shuffle"`, `"dropout"`…):
    /// the same `seed` with a different ChaCha stream, so adding a layer never shifts the
    /// shuffle order.
    pub fn stream(seed: u64, name: &str) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(fnv1a(name.as_bytes()));
        Self { inner }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform `f32` in `[0, 1)` with 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A uniform `f32` in `[low, high)`.
    pub fn uniform_in(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.uniform()
    }

    /// A standard normal `f32` (Box–Muller on two uniforms in `(0, 1]` and `[0, 1)`).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform() as f64; // (0, 1]: the logarithm stays finite
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// A normal `f32` with `mean` and `stddev`, redrawn until it lies within two standard
    /// deviations of the mean (TensorFlow's `truncated_normal`).
    pub fn truncated_normal(&mut self, mean: f32, stddev: f32) -> f32 {
        loop {
            let z = self.normal();
            if z.abs() <= 2.0 {
                return mean + stddev * z;
            }
        }
    }

    /// A uniform integer in `0..n` (unbiased, by rejection). Panics when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates, from the back).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Where the generator is (seed, stream, word position): enough to continue the exact
    /// same sequence after [`from_state`](Rng::from_state), e.g. when a run is resumed.
    pub fn state(&self) -> RngState {
        RngState { seed: self.inner.get_seed(), stream: self.inner.get_stream(), word_pos: self.inner.get_word_pos() }
    }

    /// A generator continuing exactly where the one that gave `state` was.
    pub fn from_state(state: &RngState) -> Self {
        let mut inner = ChaCha8Rng::from_seed(state.seed);
        inner.set_stream(state.stream);
        inner.set_word_pos(state.word_pos);
        Self { inner }
    }
}

/// A generator's position, written as text `SEED:STREAM:WORD_POS` in hexadecimal (64, 16
/// and 32 digits) so that it survives JSON unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngState {
    seed: [u8; 32],
    stream: u64,
    word_pos: u128,
}

impl std::fmt::Display for RngState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.seed.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ":{:016x}:{:032x}", self.stream, self.word_pos)
    }
}

impl std::str::FromStr for RngState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("not a generator state (expected SEED:STREAM:WORD_POS in hexadecimal, 64:16:32 digits): {text:?}")
        };
        let mut parts = text.split(':');
        let (Some(seed_hex), Some(stream_hex), Some(pos_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let all_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !all_hex(seed_hex, 64) || !all_hex(stream_hex, 16) || !all_hex(pos_hex, 32) {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (k, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&seed_hex[2 * k..2 * k + 2], 16).map_err(|_| bad())?;
        }
        let stream = u64::from_str_radix(stream_hex, 16).map_err(|_| bad())?;
        let word_pos = u128::from_str_radix(pos_hex, 16).map_err(|_| bad())?;
        Ok(Self { seed, stream, word_pos })
    }
}

impl serde::Serialize for RngState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RngState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// FNV-1a: a fixed, dependency-free hash turning a stream name into a stream id.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_streams_differ() {
        let (mut a, mut b) = (Rng::seed_from_u64(7), Rng::seed_from_u64(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let (mut s, mut d) = (Rng::stream(7, "shuffle"), Rng::stream(7, "dropout"));
        assert_ne!(s.next_u64(), d.next_u64());
    }

    #[test]
    fn a_restored_state_continues_the_sequence() {
        let mut a = Rng::stream(11, "shuffle");
        (0..37).for_each(|_| {
            a.next_u32();
        });
        let state: RngState = a.state().to_string().parse().unwrap();
        let mut b = Rng::from_state(&state);
        let (xs, ys): (Vec<u32>, Vec<u32>) = (0..100).map(|_| (a.next_u32(), b.next_u32())).unzip();
        assert_eq!(xs, ys);
        assert!("00:11".parse::<RngState>().is_err());
        assert!(format!("{}x", a.state()).parse::<RngState>().is_err());
    }

    #[test]
    fn uniform_stays_in_range_and_shuffle_is_a_permutation() {
        let mut r = Rng::seed_from_u64(1);
        assert!((0..10_000).map(|_| r.uniform()).all(|x| (0.0..1.0).contains(&x)));
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn normals_have_the_right_moments_and_truncation() {
        let mut r = Rng::seed_from_u64(3);
        let z: Vec<f64> = (0..20_000).map(|_| r.normal() as f64).collect();
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{mean} {var}");
        assert!((0..5000).map(|_| r.truncated_normal(1.0, 0.5)).all(|v| (0.0..=2.0).contains(&v)));
    }

    #[test]
    fn chacha8_output_is_pinned() {
        // Guards the "version-stable" promise: a dependency bump that changed the stream
        // would change every seeded experiment.
        // ChaCha8 (rand_chacha 0.9) seeded with 0: the first 64 bits.
        assert_eq!(Rng::seed_from_u64(0).next_u64(), 0xb585_f767_a79a_3b6c);
    }
}
