//! numpy's legacy `np.random.RandomState(seed).shuffle`, bit for bit: the generator
//! `keras.datasets.imdb.load_data` shuffles with.
//!
//! MT19937 seeded by `init_genrand(seed)` (numpy's `_legacy_seeding` of an integer seed), and
//! the Fisher–Yates loop of `RandomState.shuffle`: for `i` from `n − 1` down to 1, swap `i`
//! with `j = random_interval(i)` — the legacy bounded draw, which masks 32-bit outputs to
//! the smallest all-ones mask ≥ `i` and rejects values above `i`. numpy's compatibility
//! policy freezes this stream, so it is the same for every numpy version.

/// The MT19937 state of a legacy `RandomState`.
#[derive(Clone)]
pub struct RandomState {
    key: [u32; 624],
    pos: usize,
}

impl std::fmt::Debug for RandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RandomState {{ pos: {} }}", self.pos)
    }
}

const N: usize = 624;
const M: usize = 397;

impl RandomState {
    /// `np.random.RandomState(seed)` for an integer seed (numpy accepts 0 ..= 2³² − 1).
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (i, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32.wrapping_mul(s ^ (s >> 30)).wrapping_add(i as u32 + 1);
        }
        Self { key, pos: N }
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.regenerate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// The next 64-bit output: two 32-bit outputs, the first high (numpy's `next_uint64`).
    pub fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    fn regenerate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        let mag = |y: u32| if y & 1 == 0 { 0 } else { 0x9908_b0df };
        for i in 0..N {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % N] & LOWER);
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag(y);
        }
        self.pos = 0;
    }

    /// A uniform integer in `0 ..= max` (numpy's legacy `random_interval`).
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        loop {
            let v = if max <= u64::from(u32::MAX) { u64::from(self.next_u32()) & mask } else { self.next_u64() & mask };
            if v <= max {
                return v;
            }
        }
    }

    /// A double in [0, 1) with 53 random bits (numpy's legacy `random_sample`, which
    /// `uniform(size=…)` draws with its defaults).
    pub fn random_sample(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }

    /// `RandomState.shuffle(items)` in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u64) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_mt19937_outputs() {
        // init_genrand(5489) is the reference implementation's default; its first outputs.
        let mut r = RandomState::new(5489);
        let first: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(first, [3_499_211_612, 581_869_302, 3_890_346_734]);
    }
}
