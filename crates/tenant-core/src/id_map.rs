//! Maps keyed by tenant id with a cheap hash: tenant ids are random UUIDs the server generates,
//! so their bytes need no mixing against collisions or attack, and the default SipHash was a
//! visible share of the gateway config cache's time (it keeps such maps of every tenant).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::TenantId;

/// Folds the written bytes into 64 bits (a multiply-rotate per 8 bytes, as FxHash does): enough
/// for keys that are random already. Not for keys an attacker chooses.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` keyed by tenant id, hashed with [`IdHasher`].
pub type TenantIdMap<V> = HashMap<TenantId, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_the_buckets() {
        let mut map: TenantIdMap<usize> = TenantIdMap::default();
        for i in 0..10_000 {
            map.insert(TenantId::random(), i);
        }
        assert_eq!(map.len(), 10_000);
        // The high bits (which hashbrown uses for its control bytes) vary too.
        let mut seen = std::collections::HashSet::new();
        for id in map.keys().take(1000) {
            let mut h = IdHasher::default();
            std::hash::Hash::hash(id, &mut h);
            seen.insert(h.finish() >> 57);
        }
        assert!(seen.len() > 100, "{}", seen.len());
    }
}
