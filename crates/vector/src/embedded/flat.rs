//! The embedded driver's in-memory search structure: every vector in one contiguous `Vec<f32>`
//! (stride = dimensions; unit length for cosine), with ids, namespaces and indexed metadata in side
//! arrays indexed by the same slot, and exact top-k search with a bounded heap.
//!
//! Memory per vector, for `d` dimensions: `4·d` bytes of values; for an id of ~30 bytes about
//! 110 bytes (one `Arc<str>` shared by the slot array and the id → slot map, whose entry and
//! control byte take ~30–60 bytes depending on its load); 4 bytes of namespace code (names are
//! interned); and per metadata index 24 bytes plus the indexed string bytes (≤ 64). Full metadata
//! stays in SQLite. The value array grows by 1/8 at a time (never doubling), so it is at most
//! 12.5 % over its contents. For the code-search index (256 dimensions, 3 indexes): ≈ 1.2 KiB per
//! vector, ≈ 120 MB per 100,000 vectors.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::distance::{normalize, similarity};
use crate::filter::CompiledFilter;
use crate::metadata::IndexedValue;
use crate::types::{IndexConfig, MetadataIndex, Metric};

/// Namespace code of a vector without a namespace.
const NO_NAMESPACE: u32 = 0;

pub(crate) struct FlatStore {
    dimensions: usize,
    metric: Metric,
    /// Slot-major values: slot `s` is `rows[s * dimensions .. (s + 1) * dimensions]`.
    rows: Vec<f32>,
    ids: Vec<Arc<str>>,
    slots: HashMap<Arc<str>, u32>,
    /// Per slot: `NO_NAMESPACE`, or 1 + the position in `namespace_names`.
    namespaces: Vec<u32>,
    namespace_names: Vec<Arc<str>>,
    namespace_codes: HashMap<Arc<str>, u32>,
    /// The metadata indexes, in the order of `columns`.
    indexes: Vec<MetadataIndex>,
    /// One column per metadata index, one value per slot.
    columns: Vec<Vec<IndexedValue>>,
    string_prefix_bytes: usize,
}

/// A slot and its similarity to the query (higher is closer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub slot: usize,
    pub similarity: f32,
}

impl FlatStore {
    pub fn new(config: IndexConfig, indexes: Vec<MetadataIndex>, string_prefix_bytes: usize) -> FlatStore {
        let columns = indexes.iter().map(|_| Vec::new()).collect();
        FlatStore {
            dimensions: config.dimensions,
            metric: config.metric,
            rows: Vec::new(),
            ids: Vec::new(),
            slots: HashMap::new(),
            namespaces: Vec::new(),
            namespace_names: Vec::new(),
            namespace_codes: HashMap::new(),
            indexes,
            columns,
            string_prefix_bytes,
        }
    }

    /// Reserves room for `additional` vectors exactly (used when loading).
    pub fn reserve_exact(&mut self, additional: usize) {
        self.rows.reserve_exact(additional * self.dimensions);
        self.ids.reserve_exact(additional);
        self.slots.reserve(additional);
        self.namespaces.reserve_exact(additional);
        for column in &mut self.columns {
            column.reserve_exact(additional);
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn indexes(&self) -> &[MetadataIndex] {
        &self.indexes
    }

    pub fn id(&self, slot: usize) -> &str {
        &self.ids[slot]
    }

    pub fn namespace(&self, slot: usize) -> Option<&str> {
        match self.namespaces[slot] {
            NO_NAMESPACE => None,
            code => self.namespace_names.get(code as usize - 1).map(|n| &**n),
        }
    }

    /// The values kept for `id` (unit length for cosine), if stored.
    pub fn row_of(&self, id: &str) -> Option<&[f32]> {
        self.slots.get(id).map(|&slot| self.row(slot as usize))
    }

    fn row(&self, slot: usize) -> &[f32] {
        &self.rows[slot * self.dimensions..(slot + 1) * self.dimensions]
    }

    /// Stores a vector, replacing whatever `id` had. `values` has `dimensions` elements.
    pub fn upsert(&mut self, id: &str, values: &[f32], namespace: Option<&str>, metadata: Option<&Value>) {
        let namespace = self.namespace_code(namespace);
        let indexed: Vec<IndexedValue> = self
            .indexes
            .iter()
            .map(|index| IndexedValue::extract(metadata, index, self.string_prefix_bytes))
            .collect();
        let slot = match self.slots.get(id) {
            Some(&slot) => {
                let slot = slot as usize;
                let d = self.dimensions;
                self.rows[slot * d..(slot + 1) * d].copy_from_slice(values);
                self.namespaces[slot] = namespace;
                for (column, value) in self.columns.iter_mut().zip(indexed) {
                    column[slot] = value;
                }
                slot
            }
            None => {
                let slot = self.ids.len();
                self.grow_rows();
                self.rows.extend_from_slice(values);
                let id: Arc<str> = id.into();
                self.slots.insert(id.clone(), slot as u32);
                self.ids.push(id);
                self.namespaces.push(namespace);
                for (column, value) in self.columns.iter_mut().zip(indexed) {
                    column.push(value);
                }
                slot
            }
        };
        if self.metric == Metric::Cosine {
            let d = self.dimensions;
            normalize(&mut self.rows[slot * d..(slot + 1) * d]);
        }
    }

    /// Removes `id` (the last slot moves into its place). Returns whether it was stored.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else { return false };
        let slot = slot as usize;
        let last = self.ids.len() - 1;
        let d = self.dimensions;
        if slot != last {
            self.rows.copy_within(last * d..(last + 1) * d, slot * d);
            self.slots.insert(self.ids[last].clone(), slot as u32);
        }
        self.rows.truncate(last * d);
        self.ids.swap_remove(slot);
        self.namespaces.swap_remove(slot);
        for column in &mut self.columns {
            column.swap_remove(slot);
        }
        self.shrink_rows();
        true
    }

    /// Forgets the metadata index on `property` and its column.
    pub fn drop_index(&mut self, property: &str) {
        if let Some(position) = self.indexes.iter().position(|i| i.property == property) {
            self.indexes.remove(position);
            self.columns.remove(position);
        }
    }

    /// The `k` closest vectors to `query` in `namespace` (all if `None`) that pass `filter`,
    /// closest first; ties go to the smaller id. O(n log k).
    pub fn search(
        &self,
        query: &[f32],
        namespace: Option<&str>,
        filter: Option<&CompiledFilter>,
        k: usize,
    ) -> Vec<Hit> {
        let mut query = query.to_vec();
        if self.metric == Metric::Cosine {
            normalize(&mut query);
        }
        let namespace = match namespace {
            None => None,
            Some(name) => match self.namespace_codes.get(name) {
                Some(&code) => Some(code),
                None => return Vec::new(),
            },
        };
        let metric = self.metric;
        let mut heap: BinaryHeap<Candidate<'_>> = BinaryHeap::with_capacity(k + 1);
        for (slot, row) in self.rows.chunks_exact(self.dimensions).enumerate() {
            if namespace.is_some_and(|code| self.namespaces[slot] != code) {
                continue;
            }
            if filter.is_some_and(|f| !f.matches_slot(&self.columns, slot)) {
                continue;
            }
            let mut closeness = similarity(metric, &query, row);
            if closeness.is_nan() {
                // Only reachable through overflow (e.g. inf - inf): rank it last, never first.
                closeness = f32::NEG_INFINITY;
            }
            let candidate = Candidate { similarity: closeness, id: &self.ids[slot], slot };
            if heap.len() < k {
                heap.push(candidate);
            } else if let Some(mut worst) = heap.peek_mut()
                && candidate < *worst
            {
                *worst = candidate;
            }
        }
        heap.into_sorted_vec().into_iter().map(|c| Hit { slot: c.slot, similarity: c.similarity }).collect()
    }

    fn namespace_code(&mut self, namespace: Option<&str>) -> u32 {
        let Some(name) = namespace else { return NO_NAMESPACE };
        if let Some(&code) = self.namespace_codes.get(name) {
            return code;
        }
        let name: Arc<str> = name.into();
        self.namespace_names.push(name.clone());
        let code = self.namespace_names.len() as u32;
        self.namespace_codes.insert(name, code);
        code
    }

    /// Makes room for one more row, growing by 1/8 of the contents (not doubling).
    fn grow_rows(&mut self) {
        if self.rows.len() + self.dimensions > self.rows.capacity() {
            let extra = (self.rows.len() / 8).max(self.dimensions * 16);
            self.rows.reserve_exact(extra);
        }
    }

    /// Gives memory back once a quarter of the value array is unused.
    fn shrink_rows(&mut self) {
        let len = self.rows.len();
        if self.rows.capacity() > len + len / 4 + self.dimensions * 64 {
            self.rows.shrink_to(len + len / 8);
        }
    }
}

/// A candidate of the top-k heap, ordered so that the *worst* candidate is the greatest (the
/// heap's top): lower similarity is worse, and among equals the greater id.
struct Candidate<'a> {
    similarity: f32,
    id: &'a str,
    slot: usize,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.similarity.total_cmp(&self.similarity).then_with(|| self.id.cmp(other.id))
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(metric: Metric, dimensions: usize) -> FlatStore {
        FlatStore::new(IndexConfig { dimensions, metric }, Vec::new(), 64)
    }

    /// A deterministic pseudo-random sequence (no dependency needed).
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn the_heap_selects_what_a_full_sort_would() {
        let d = 37;
        let mut s = store(Metric::Euclidean, d);
        let mut all = Vec::new();
        for i in 0..500 {
            let v = noise(i, d);
            s.upsert(&format!("v{i:03}"), &v, None, None);
            all.push((format!("v{i:03}"), v));
        }
        let q = noise(9999, d);
        let mut expected: Vec<(f32, String)> =
            all.iter().map(|(id, v)| (crate::distance::squared_euclidean(&q, v), id.clone())).collect();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for k in [1, 5, 100, 500, 600] {
            let got: Vec<String> =
                s.search(&q, None, None, k).iter().map(|h| s.id(h.slot).to_owned()).collect();
            let want: Vec<String> = expected.iter().take(k).map(|e| e.1.clone()).collect();
            assert_eq!(got, want, "k = {k}");
        }
    }

    #[test]
    fn ties_go_to_the_smaller_id() {
        let mut s = store(Metric::DotProduct, 2);
        for id in ["c", "a", "b"] {
            s.upsert(id, &[1.0, 0.0], None, None);
        }
        let got: Vec<&str> = s.search(&[1.0, 0.0], None, None, 2).iter().map(|h| s.id(h.slot)).collect();
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn removing_moves_the_last_slot_and_keeps_side_arrays_aligned() {
        let mut s = store(Metric::DotProduct, 2);
        s.upsert("a", &[1.0, 0.0], Some("x"), None);
        s.upsert("b", &[2.0, 0.0], None, None);
        s.upsert("c", &[3.0, 0.0], Some("y"), None);
        assert!(s.remove("a"));
        assert!(!s.remove("a"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.row_of("c"), Some(&[3.0, 0.0][..]));
        let hits = s.search(&[1.0, 0.0], None, None, 10);
        let got: Vec<(&str, Option<&str>)> =
            hits.iter().map(|h| (s.id(h.slot), s.namespace(h.slot))).collect();
        assert_eq!(got, [("c", Some("y")), ("b", None)]);
        s.upsert("b", &[5.0, 0.0], Some("y"), None);
        let hits = s.search(&[1.0, 0.0], Some("y"), None, 10);
        assert_eq!(hits.iter().map(|h| s.id(h.slot)).collect::<Vec<_>>(), ["b", "c"]);
        assert!(s.search(&[1.0, 0.0], Some("unknown"), None, 10).is_empty());
    }

    #[test]
    fn cosine_rows_are_kept_at_unit_length() {
        let mut s = store(Metric::Cosine, 2);
        s.upsert("a", &[3.0, 4.0], None, None);
        assert_eq!(s.row_of("a"), Some(&[0.6, 0.8][..]));
    }

    #[test]
    fn the_value_array_grows_and_shrinks_in_small_steps() {
        let d = 256;
        let mut s = store(Metric::DotProduct, d);
        let v = vec![0.5; d];
        for i in 0..2000 {
            s.upsert(&i.to_string(), &v, None, None);
        }
        assert!(s.rows.capacity() <= s.rows.len() + s.rows.len() / 8 + d * 16, "{}", s.rows.capacity());
        for i in 0..1500 {
            s.remove(&i.to_string());
        }
        assert!(s.rows.capacity() <= s.rows.len() + s.rows.len() / 4 + d * 64, "{}", s.rows.capacity());
    }
}
