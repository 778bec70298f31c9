//! numpy's legacy global generator (`np.random.seed(s)`; `np.random.permutation(n)`), reproduced exactly so that
//! relab's miniImageNet split holds the same images at the same indices as the original's.
//!
//! numpy seeds MT19937 with the classic `init_genrand`, and its legacy `shuffle` is a Fisher–Yates pass from the
//! end where each swap partner is drawn by `random_interval`: mask a 32-bit draw to the smallest all-ones mask
//! covering the bound and retry until it is within the bound.

const N: usize = 624;
const M: usize = 397;

/// The Mersenne Twister MT19937 in numpy's legacy seeding.
pub struct Mt19937 {
    state: [u32; N],
    pos: usize,
}

impl Mt19937 {
    /// `np.random.seed(seed)` for an integer seed.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            state[i] = 1_812_433_253u32.wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { state, pos: N }
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.generate();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..N {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.state[i] = self.state[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// A uniform integer in `0..=max`, as numpy's `random_interval` draws it (bounds here fit 32 bits).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for s in [1, 2, 4, 8, 16] {
            mask |= mask >> s;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }
}

/// `np.random.seed(seed); np.random.permutation(n)`.
pub fn permutation(seed: u32, n: usize) -> Vec<usize> {
    assert!(n <= u32::MAX as usize, "permutation length fits 32 bits");
    let mut rng = Mt19937::new(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.interval(i as u32) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by numpy 2.4.6 (`np.random.seed(s); np.random.permutation(n).tolist()`).
    #[test]
    fn matches_numpy_legacy_permutation() {
        assert_eq!(permutation(0, 10), vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
        assert_eq!(permutation(42, 7), vec![0, 1, 5, 2, 4, 3, 6]);
        assert_eq!(
            permutation(u32::MAX, 20),
            vec![11, 17, 19, 15, 1, 5, 8, 16, 13, 18, 14, 9, 10, 6, 0, 4, 7, 12, 2, 3]
        );
    }

    /// The miniImageNet split of the original: `np.random.seed(42); np.random.permutation(60000)`.
    #[test]
    fn matches_the_miniimagenet_shuffle() {
        let p = permutation(42, 60_000);
        assert_eq!(&p[..12], &[12628, 37730, 39991, 8525, 8279, 51012, 14871, 15127, 9366, 33322, 53390, 21819]);
        assert_eq!(&p[50_000..50_006], &[3675, 15450, 20608, 46531, 6749, 32888]);
        assert_eq!(&p[59_994..], &[44732, 54343, 38158, 860, 15795, 56422]);
        // sum of (p[i] * i) % 1000003 over all i, as numpy computed it: pins every position.
        let check: u64 = p.iter().enumerate().map(|(i, &v)| (v as u64 * i as u64) % 1_000_003).sum();
        assert_eq!(check, 29_970_337_780);
    }

    #[test]
    fn first_outputs_of_mt19937_seed_5489() {
        // The reference implementation's first output for its default seed.
        assert_eq!(Mt19937::new(5489).next_u32(), 3_499_211_612);
    }
}
