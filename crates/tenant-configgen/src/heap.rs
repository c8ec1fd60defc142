//! What a kept document holds on the heap, by part: [`HeapParts`], for memory figures (the
//! `fleet_scale` example of `tenant-service` breaks the gateway documents' memory down with it).
//!
//! Computed from lengths and capacities, so it is what the structures ask the allocator for,
//! without the allocator's own overhead; a part whose exact size a type hides (a `Bytes` chunk's
//! capacity) counts its length.

use std::collections::HashMap;

/// Heap bytes by named part, in the order the parts were first added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeapParts(Vec<(&'static str, usize)>);

impl HeapParts {
    /// Adds `bytes` to `part`.
    pub fn add(&mut self, part: &'static str, bytes: usize) {
        match self.0.iter_mut().find(|(p, _)| *p == part) {
            Some((_, b)) => *b += bytes,
            None => self.0.push((part, bytes)),
        }
    }

    /// Adds every part of `other`.
    pub fn merge(&mut self, other: &HeapParts) {
        for (part, bytes) in &other.0 {
            self.add(part, *bytes);
        }
    }

    /// The parts, in the order they were first added.
    pub fn parts(&self) -> &[(&'static str, usize)] {
        &self.0
    }

    /// The sum of the parts.
    pub fn total(&self) -> usize {
        self.0.iter().map(|(_, b)| b).sum()
    }
}

/// The bytes of a `HashMap`'s table (hashbrown's layout: a power of two of slots, each an entry
/// and a control byte, plus a group of control bytes).
pub fn hash_map_bytes<K, V, S>(map: &HashMap<K, V, S>) -> usize {
    table_bytes(map.capacity(), size_of::<(K, V)>())
}

/// The bytes of a hashbrown table of `capacity` entries of `entry` bytes each.
pub(crate) fn table_bytes(capacity: usize, entry: usize) -> usize {
    let slots = match capacity {
        0 => return 0,
        1..=3 => 4,
        4..=7 => 8,
        c => (c * 8 / 7).next_power_of_two(),
    };
    slots * (entry + 1) + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_up_to_powers_of_two() {
        let mut map: HashMap<u64, u64> = HashMap::new();
        assert_eq!(hash_map_bytes(&map), 0);
        map.reserve(2_000);
        // 2,000 entries need more than 2,048 × 7/8 slots: 4,096.
        assert_eq!(hash_map_bytes(&map), 4_096 * 17 + 16);
        let mut parts = HeapParts::default();
        parts.add("a", 1);
        parts.add("b", 2);
        parts.add("a", 3);
        assert_eq!(parts.parts(), &[("a", 4), ("b", 2)]);
        assert_eq!(parts.total(), 6);
    }
}
