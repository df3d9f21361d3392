//! Queue ids that no client can guess: a keyed permutation of a counter.
//! The counter makes ids unique by construction (a permutation never maps
//! two counters to one id); the key, kept in the state folder, makes them
//! unpredictable. Ids are positive and below 2^53, so JavaScript and PHP
//! clients keep them exact.
//!
//! The permutation is a Feistel network over 54 bits (two halves of 27),
//! with SHA-256 of the key, the round and the half as its round function,
//! restricted to 53 bits by cycle walking (applied again until the value
//! falls below 2^53, which keeps it a permutation).

use sha2::{Digest, Sha256};

/// Ids, and counters, are below this.
pub const ID_SPACE: u64 = 1 << 53;
const HALF_BITS: u32 = 27;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ROUNDS: u8 = 8;

/// The secret of an id permutation.
#[derive(Clone, PartialEq, Eq)]
pub struct IdKey(pub [u8; 32]);

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey(..)")
    }
}

impl IdKey {
    /// The id made from `counter` (below [`ID_SPACE`]); a bijection.
    pub fn permute(&self, counter: u64) -> u64 {
        debug_assert!(counter < ID_SPACE);
        let mut x = counter;
        loop {
            x = self.feistel(x);
            if x < ID_SPACE {
                return x;
            }
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> HALF_BITS, x & HALF_MASK);
        for round in 0..ROUNDS {
            let f = self.round(round, right);
            (left, right) = (right, left ^ f);
        }
        (left << HALF_BITS) | right
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let digest = Sha256::new()
            .chain_update(self.0)
            .chain_update([round])
            .chain_update(half.to_le_bytes())
            .finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) & HALF_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_distinct_in_range_and_not_sequential() {
        let key = IdKey([3; 32]);
        let ids: Vec<u64> = (1..5000).map(|c| key.permute(c)).collect();
        assert!(ids.iter().all(|&id| id < ID_SPACE));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        let close = ids
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) < 1 << 30)
            .count();
        assert!(close < 5, "{close} neighbours close together");
        let other = IdKey([4; 32]);
        assert_ne!(other.permute(1), key.permute(1), "the key decides");
    }

    #[test]
    fn the_permutation_is_a_bijection_on_a_small_domain() {
        // Cycle walking keeps a permutation a permutation: checked on the
        // Feistel itself over a slice, and by the walk staying in range.
        let key = IdKey([5; 32]);
        let seen: HashSet<u64> = (0..20_000).map(|c| key.feistel(c)).collect();
        assert_eq!(seen.len(), 20_000);
        assert!(key.permute(ID_SPACE - 1) < ID_SPACE);
    }
}
