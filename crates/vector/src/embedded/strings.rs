//! Compact string storage for the in-memory search structure: a [`StringTable`] (every string in
//! one byte arena, a `(start, len)` span per position and an open-addressing hash → position
//! table) for vector ids, and an [`Interner`] (a string table with reference counts) for
//! namespaces and indexed metadata strings.
//!
//! Per string: its bytes, 8 bytes of span, and 8 bytes per hash-table entry (32-bit hash tag and
//! 32-bit position; the table is kept at most 80 % full, power-of-two sized). Against a
//! `HashMap<Arc<str>, u32>` plus a `Vec<Arc<str>>` (two allocations' headers, a 16-byte fat
//! pointer twice, 24+ bytes per map entry) that saves about 60 bytes per id.

use std::hash::{BuildHasher, RandomState};

/// Hashes `bytes` with a per-table random `seed`: a multiply-rotate pass over 8-byte words and a
/// final avalanche (SplitMix64's). Several times faster than SipHash on 64-byte ids, which
/// matters when 100,000 ids are hashed to load; the seed keeps positions unpredictable.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let (words, rest) = bytes.as_chunks::<8>();
    for word in words {
        h = (h ^ u64::from_le_bytes(*word)).wrapping_mul(K).rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// An empty hash-table entry (position `u32::MAX` is never used).
const EMPTY: u64 = u64::MAX;

/// Strings at dense positions `0..len`, with lookup by content.
pub(crate) struct StringTable {
    arena: String,
    spans: Vec<(u32, u32)>,
    /// Arena bytes no longer referenced by a span (compacted away once they dominate).
    garbage: usize,
    /// `hash tag << 32 | position`, or [`EMPTY`]; its length is a power of two.
    table: Vec<u64>,
    seed: u64,
}

impl StringTable {
    pub fn new() -> StringTable {
        StringTable {
            arena: String::new(),
            spans: Vec::new(),
            garbage: 0,
            table: vec![EMPTY; 16],
            seed: RandomState::new().hash_one(0u64),
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Reserves room for `additional` strings of `bytes` bytes in all, exactly.
    pub fn reserve_exact(&mut self, additional: usize, bytes: usize) {
        self.arena.reserve_exact(bytes);
        self.spans.reserve_exact(additional);
        self.grow_table_for(self.len() + additional);
    }

    /// The string at `position`.
    pub fn get(&self, position: usize) -> &str {
        let (start, len) = self.spans[position];
        &self.arena[start as usize..(start + len) as usize]
    }

    /// The position of `s`, if stored.
    pub fn position(&self, s: &str) -> Option<usize> {
        self.find(s).map(|(_, position)| position)
    }

    /// Appends `s` (which must not be stored yet) and returns its position.
    pub fn push(&mut self, s: &str) -> usize {
        debug_assert!(self.position(s).is_none());
        self.grow_table_for(self.len() + 1);
        let position = self.spans.len();
        let start = u32::try_from(self.arena.len()).expect("string arena over 4 GiB");
        self.arena.push_str(s);
        self.spans.push((start, s.len() as u32));
        let tag = self.tag(s);
        self.place(tag, position as u32);
        position
    }

    /// Removes the string at `position`; the last string moves into its place (as `Vec::swap_remove`).
    pub fn swap_remove(&mut self, position: usize) {
        let last = self.spans.len() - 1;
        let entry = self.entry_of(self.get(position), position);
        self.garbage += self.spans[position].1 as usize;
        self.delete_entry(entry);
        if position != last {
            let moved = self.entry_of(self.get(last), last);
            self.table[moved] = (self.table[moved] & !u64::from(u32::MAX)) | position as u64;
        }
        self.spans.swap_remove(position);
        self.compact_if_wasteful();
    }

    /// Heap bytes held (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.spans.capacity() * 8 + self.table.capacity() * 8
    }

    fn tag(&self, s: &str) -> u32 {
        (hash(self.seed, s.as_bytes()) >> 32) as u32
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    /// The table index and position of `s`.
    fn find(&self, s: &str) -> Option<(usize, usize)> {
        let tag = self.tag(s);
        let mask = self.mask();
        let mut i = tag as usize & mask;
        loop {
            let entry = self.table[i];
            if entry == EMPTY {
                return None;
            }
            let position = (entry & u64::from(u32::MAX)) as usize;
            if (entry >> 32) as u32 == tag && self.get(position) == s {
                return Some((i, position));
            }
            i = (i + 1) & mask;
        }
    }

    /// The table index of the entry for `s`, known to be at `position`.
    fn entry_of(&self, s: &str, position: usize) -> usize {
        match self.find(s) {
            Some((i, found)) if found == position => i,
            _ => unreachable!("the id table lost track of a stored string"),
        }
    }

    fn place(&mut self, tag: u32, position: u32) {
        let mask = self.mask();
        let mut i = tag as usize & mask;
        while self.table[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.table[i] = (u64::from(tag) << 32) | u64::from(position);
    }

    /// Linear-probing deletion by backward shift (no tombstones).
    fn delete_entry(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let entry = self.table[j];
            if entry == EMPTY {
                break;
            }
            let ideal = (entry >> 32) as usize & mask;
            if (j.wrapping_sub(ideal) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.table[hole] = entry;
                hole = j;
            }
        }
        self.table[hole] = EMPTY;
    }

    /// Keeps the table at most 80 % full for `count` strings.
    fn grow_table_for(&mut self, count: usize) {
        if count * 5 <= self.table.len() * 4 {
            return;
        }
        let size = (count * 5 / 4 + 1).next_power_of_two();
        let old = std::mem::replace(&mut self.table, vec![EMPTY; size]);
        for entry in old.into_iter().filter(|e| *e != EMPTY) {
            self.place((entry >> 32) as u32, entry as u32);
        }
    }

    /// Rewrites the arena without its garbage once that is over half of it.
    fn compact_if_wasteful(&mut self) {
        if self.garbage < 4096 || self.garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for span in &mut self.spans {
            let start = arena.len() as u32;
            arena.push_str(&self.arena[span.0 as usize..(span.0 + span.1) as usize]);
            span.0 = start;
        }
        self.arena = arena;
        self.garbage = 0;
        let len = self.spans.len();
        if self.table.len() > 64 && len * 5 < self.table.len() {
            let size = (len * 5 / 4 + 1).next_power_of_two().max(16);
            self.table = vec![EMPTY; size];
            for position in 0..len {
                let tag = self.tag(self.get(position));
                self.place(tag, position as u32);
            }
        }
    }
}

/// Interned strings with reference counts: code 0 means "none"; code `c ≥ 1` is the string at
/// position `c - 1`. Codes are stable while referenced; strings no longer referenced stay (and
/// are reused if seen again) until [`Interner::compact`] drops them.
pub(crate) struct Interner {
    strings: StringTable,
    refs: Vec<u32>,
    unreferenced: usize,
}

impl Interner {
    pub fn new() -> Interner {
        Interner { strings: StringTable::new(), refs: Vec::new(), unreferenced: 0 }
    }

    /// The code of `s` if interned (referenced or not).
    pub fn code(&self, s: &str) -> Option<u32> {
        self.strings.position(s).map(|p| p as u32 + 1)
    }

    /// The string of a code (`None` for code 0).
    pub fn get(&self, code: u32) -> Option<&str> {
        (code != 0).then(|| self.strings.get(code as usize - 1))
    }

    /// Codes run over `0..=max_code()`.
    pub fn max_code(&self) -> u32 {
        self.strings.len() as u32
    }

    /// Interns `s` (if any) and takes a reference to it.
    pub fn acquire(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return 0 };
        let position = match self.strings.position(s) {
            Some(p) => {
                if self.refs[p] == 0 {
                    self.unreferenced -= 1;
                }
                p
            }
            None => {
                self.refs.push(0);
                self.strings.push(s)
            }
        };
        self.refs[position] += 1;
        position as u32 + 1
    }

    /// Drops a reference taken by [`Interner::acquire`].
    pub fn release(&mut self, code: u32) {
        if code == 0 {
            return;
        }
        let refs = &mut self.refs[code as usize - 1];
        *refs -= 1;
        if *refs == 0 {
            self.unreferenced += 1;
        }
    }

    /// Whether enough strings are unreferenced that [`Interner::compact`] is worth its O(n).
    pub fn wants_compaction(&self) -> bool {
        self.unreferenced > 1024 && self.unreferenced * 2 > self.refs.len()
    }

    /// Drops unreferenced strings, returning the old code → new code map (0 for dropped ones).
    pub fn compact(&mut self) -> Vec<u32> {
        let mut strings = StringTable::new();
        let mut refs = Vec::with_capacity(self.refs.len() - self.unreferenced);
        let mut map = vec![0u32; self.refs.len() + 1];
        for (position, count) in self.refs.iter().enumerate() {
            if *count > 0 {
                map[position + 1] = strings.push(self.strings.get(position)) as u32 + 1;
                refs.push(*count);
            }
        }
        self.strings = strings;
        self.refs = refs;
        self.unreferenced = 0;
        map
    }

    pub fn heap_bytes(&self) -> usize {
        self.strings.heap_bytes() + self.refs.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_table_follows_a_hash_map_through_pushes_and_swap_removes() {
        let mut table = StringTable::new();
        let mut model: Vec<String> = Vec::new();
        let mut x = 7u64;
        for round in 0..20_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = format!("id-{}", (x >> 40) % 3000);
            match model.iter().position(|k| *k == key) {
                Some(p) if round % 3 != 0 => {
                    table.swap_remove(p);
                    model.swap_remove(p);
                }
                Some(_) => {}
                None => {
                    assert_eq!(table.push(&key), model.len());
                    model.push(key);
                }
            }
        }
        assert_eq!(table.len(), model.len());
        let expected: HashMap<&str, usize> = model.iter().enumerate().map(|(p, k)| (k.as_str(), p)).collect();
        for (key, position) in &expected {
            assert_eq!(table.position(key), Some(*position));
            assert_eq!(table.get(*position), *key);
        }
        for i in 3000..3100 {
            assert_eq!(table.position(&format!("id-{i}")), None);
        }
    }

    #[test]
    fn the_arena_is_compacted_after_many_removals() {
        let mut table = StringTable::new();
        for i in 0..10_000 {
            table.push(&format!("a-fairly-long-identifier-{i:06}"));
        }
        for _ in 0..9_000 {
            table.swap_remove(0);
        }
        assert!(table.arena.len() < 1_000 * 31 * 2, "{}", table.arena.len());
        assert!(table.table.len() <= 4096, "the hash table shrank too: {}", table.table.len());
        for position in 0..table.len() {
            assert_eq!(table.position(table.get(position)), Some(position));
        }
    }

    #[test]
    fn interned_codes_are_counted_and_compaction_renumbers() {
        let mut interner = Interner::new();
        let a = interner.acquire(Some("a"));
        let b = interner.acquire(Some("b"));
        assert_eq!(interner.acquire(Some("a")), a);
        assert_eq!(interner.acquire(None), 0);
        interner.release(a);
        interner.release(a);
        assert_eq!(interner.code("a"), Some(a), "unreferenced strings stay until compaction");
        let map = interner.compact();
        assert_eq!(map[a as usize], 0);
        assert_eq!(interner.get(map[b as usize]), Some("b"));
        assert_eq!(interner.code("a"), None);
        assert_eq!(interner.max_code(), 1);
    }
}
