//! A small splitmix64 generator: enough to shuffle candidates and pick
//! among equal hosts, no dependency needed.

use std::hash::BuildHasher;

pub struct Rng(u64);

impl Rng {
    /// Seeded from the process's hash keys: different in every process.
    pub fn seeded() -> Rng {
        Rng(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }

    /// A fixed sequence (tests).
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `bound` (> 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
