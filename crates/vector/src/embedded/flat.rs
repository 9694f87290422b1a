//! The embedded driver's in-memory search structure: every vector quantized to `i8` in one
//! contiguous array (stride = dimensions, see [`super::quantize`]), with ids, namespaces and
//! indexed metadata in compact side arrays indexed by the same slot, and a flat scan that returns
//! the best *candidates* by the quantized score (the driver rescores them exactly from SQLite).
//!
//! Memory per vector, for `d` dimensions: `d` bytes of codes and 4 of scale (4 more for euclidean:
//! the squared norm of the quantized row); the id's bytes plus 8 of span and ~10 of hash table
//! (see [`super::strings`]); 4 bytes of namespace code; per metadata index 4 bytes (interned
//! string code, or a boolean byte) or 8 (a number), plus the distinct strings once. Full metadata
//! and the exact `f32` values stay in SQLite. The code array grows by 1/8 at a time (never
//! doubling). For the code-search index (256 dimensions, 64-byte chunk ids, 3 string indexes):
//! ≈ 0.37 KiB per vector, 37 MB per 100,000 vectors (measured by the `vector_index` bench).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::quantize::quantize_query;
use super::strings::{Interner, StringTable};
use crate::distance::dot_i16_i8_for_this_cpu;
use crate::filter::{CompiledFilter, Condition};
use crate::metadata::IndexedRef;
use crate::types::{IndexConfig, MetadataIndex, MetadataIndexType, Metric};

/// The values one metadata index holds, one per slot.
enum Column {
    /// Interned strings (code 0: missing).
    Strings { codes: Vec<u32>, dictionary: Interner },
    /// NaN: missing (JSON numbers are never NaN).
    Numbers(Vec<f64>),
    /// 0: missing, 1: false, 2: true.
    Bools(Vec<u8>),
}

impl Column {
    fn new(index_type: MetadataIndexType) -> Column {
        match index_type {
            MetadataIndexType::String => Column::Strings { codes: Vec::new(), dictionary: Interner::new() },
            MetadataIndexType::Number => Column::Numbers(Vec::new()),
            MetadataIndexType::Boolean => Column::Bools(Vec::new()),
        }
    }

    fn reserve_exact(&mut self, additional: usize) {
        match self {
            Column::Strings { codes, .. } => codes.reserve_exact(additional),
            Column::Numbers(values) => values.reserve_exact(additional),
            Column::Bools(values) => values.reserve_exact(additional),
        }
    }

    fn push(&mut self, value: IndexedRef<'_>) {
        match self {
            Column::Strings { codes, dictionary } => {
                let code = match value {
                    IndexedRef::String(s) => dictionary.acquire(Some(s)),
                    _ => 0,
                };
                codes.push(code);
            }
            Column::Numbers(values) => values.push(match value {
                IndexedRef::Number(n) => n,
                _ => f64::NAN,
            }),
            Column::Bools(values) => values.push(match value {
                IndexedRef::Bool(b) => 1 + u8::from(b),
                _ => 0,
            }),
        }
    }

    /// Replaces the last value (just pushed) into `slot`, as `Vec::swap_remove` of `slot`'s.
    fn swap_remove(&mut self, slot: usize) {
        match self {
            Column::Strings { codes, dictionary } => {
                dictionary.release(codes.swap_remove(slot));
                if dictionary.wants_compaction() {
                    let map = dictionary.compact();
                    for code in codes.iter_mut() {
                        *code = map[*code as usize];
                    }
                }
            }
            Column::Numbers(values) => {
                values.swap_remove(slot);
            }
            Column::Bools(values) => {
                values.swap_remove(slot);
            }
        }
    }

    #[cfg(test)]
    fn get(&self, slot: usize) -> IndexedRef<'_> {
        match self {
            Column::Strings { codes, dictionary } => {
                dictionary.get(codes[slot]).map_or(IndexedRef::Missing, IndexedRef::String)
            }
            Column::Numbers(values) => {
                let n = values[slot];
                if n.is_nan() { IndexedRef::Missing } else { IndexedRef::Number(n) }
            }
            Column::Bools(values) => match values[slot] {
                0 => IndexedRef::Missing,
                b => IndexedRef::Bool(b == 2),
            },
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Column::Strings { codes, dictionary } => codes.capacity() * 4 + dictionary.heap_bytes(),
            Column::Numbers(values) => values.capacity() * 8,
            Column::Bools(values) => values.capacity(),
        }
    }

    /// A per-query matcher for `condition` on this column: strings and booleans are decided once
    /// per distinct value, so the scan only looks a code up.
    fn matcher<'a>(&'a self, condition: &'a Condition) -> Matcher<'a> {
        match self {
            Column::Strings { codes, dictionary } => {
                let mut accept = vec![false; dictionary.max_code() as usize + 1];
                match condition {
                    Condition::Eq(crate::filter::Operand::String(s)) => {
                        if let Some(code) = dictionary.code(s) {
                            accept[code as usize] = true;
                        }
                    }
                    _ => {
                        for (code, accepted) in accept.iter_mut().enumerate() {
                            let value =
                                dictionary.get(code as u32).map_or(IndexedRef::Missing, IndexedRef::String);
                            *accepted = condition.matches_ref(value);
                        }
                    }
                }
                Matcher::Codes { codes, accept }
            }
            Column::Bools(values) => Matcher::Bools {
                values,
                accept: [
                    condition.matches_ref(IndexedRef::Missing),
                    condition.matches_ref(IndexedRef::Bool(false)),
                    condition.matches_ref(IndexedRef::Bool(true)),
                ],
            },
            Column::Numbers(values) => {
                Matcher::Numbers { values, condition, missing: condition.matches_ref(IndexedRef::Missing) }
            }
        }
    }
}

/// One filter clause bound to its column for one query.
enum Matcher<'a> {
    Codes { codes: &'a [u32], accept: Vec<bool> },
    Bools { values: &'a [u8], accept: [bool; 3] },
    Numbers { values: &'a [f64], condition: &'a Condition, missing: bool },
}

impl Matcher<'_> {
    fn matches(&self, slot: usize) -> bool {
        match self {
            Matcher::Codes { codes, accept } => accept[codes[slot] as usize],
            Matcher::Bools { values, accept } => accept[values[slot] as usize],
            Matcher::Numbers { values, condition, missing } => {
                let n = values[slot];
                if n.is_nan() { *missing } else { condition.matches_ref(IndexedRef::Number(n)) }
            }
        }
    }
}

pub(crate) struct FlatStore {
    dimensions: usize,
    metric: Metric,
    /// Slot-major codes: slot `s` is `codes[s * dimensions .. (s + 1) * dimensions]`.
    codes: Vec<i8>,
    scales: Vec<f32>,
    /// Euclidean only: the squared norm of each quantized row.
    norms: Vec<f32>,
    ids: StringTable,
    /// Per slot: the namespace's code in `namespace_names` (0: no namespace).
    namespaces: Vec<u32>,
    namespace_names: Interner,
    /// The metadata indexes, in the order of `columns`.
    indexes: Vec<MetadataIndex>,
    columns: Vec<Column>,
}

impl FlatStore {
    pub fn new(config: IndexConfig, indexes: Vec<MetadataIndex>) -> FlatStore {
        let columns = indexes.iter().map(|i| Column::new(i.index_type)).collect();
        FlatStore {
            dimensions: config.dimensions,
            metric: config.metric,
            codes: Vec::new(),
            scales: Vec::new(),
            norms: Vec::new(),
            ids: StringTable::new(),
            namespaces: Vec::new(),
            namespace_names: Interner::new(),
            indexes,
            columns,
        }
    }

    /// Reserves room for `additional` vectors (with `id_bytes` bytes of ids in all) exactly.
    pub fn reserve_exact(&mut self, additional: usize, id_bytes: usize) {
        self.codes.reserve_exact(additional * self.dimensions);
        self.scales.reserve_exact(additional);
        if self.metric == Metric::Euclidean {
            self.norms.reserve_exact(additional);
        }
        self.ids.reserve_exact(additional, id_bytes);
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
        self.ids.get(slot)
    }

    pub fn namespace(&self, slot: usize) -> Option<&str> {
        self.namespace_names.get(self.namespaces[slot])
    }

    /// The value metadata index `index` (a position in [`FlatStore::indexes`]) holds at `slot`.
    #[cfg(test)]
    pub fn indexed(&self, index: usize, slot: usize) -> IndexedRef<'_> {
        self.columns[index].get(slot)
    }

    /// Stores a vector, replacing whatever `id` had: its quantized row (`scale` and `codes` as
    /// persisted, see [`super::quantize`]), namespace, and one indexed value per metadata index.
    pub fn upsert(
        &mut self,
        id: &str,
        scale: f32,
        codes: &[u8],
        namespace: Option<&str>,
        indexed: &[IndexedRef<'_>],
    ) {
        // Replacing is removing then appending: simpler than patching every column in place, and
        // the order of slots carries no meaning.
        self.remove(id);
        self.push_new(id, scale, codes, namespace, indexed);
    }

    /// [`FlatStore::upsert`] of an id known not to be stored (loading: ids are a primary key).
    pub fn push_new(
        &mut self,
        id: &str,
        scale: f32,
        codes: &[u8],
        namespace: Option<&str>,
        indexed: &[IndexedRef<'_>],
    ) {
        debug_assert_eq!(codes.len(), self.dimensions);
        debug_assert_eq!(indexed.len(), self.columns.len());
        self.grow_codes();
        self.codes.extend(codes.iter().map(|c| *c as i8));
        self.scales.push(scale);
        if self.metric == Metric::Euclidean {
            let squared: i64 = codes.iter().map(|c| i64::from(*c as i8).pow(2)).sum();
            self.norms.push(squared as f32 * scale * scale);
        }
        self.ids.push(id);
        let namespace = self.namespace_names.acquire(namespace);
        self.namespaces.push(namespace);
        for (column, value) in self.columns.iter_mut().zip(indexed) {
            column.push(*value);
        }
    }

    /// Removes `id` (the last slot moves into its place). Returns whether it was stored.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.ids.position(id) else { return false };
        let last = self.len() - 1;
        let d = self.dimensions;
        if slot != last {
            self.codes.copy_within(last * d..(last + 1) * d, slot * d);
        }
        self.codes.truncate(last * d);
        self.scales.swap_remove(slot);
        if self.metric == Metric::Euclidean {
            self.norms.swap_remove(slot);
        }
        self.ids.swap_remove(slot);
        let namespace = self.namespaces.swap_remove(slot);
        self.namespace_names.release(namespace);
        if self.namespace_names.wants_compaction() {
            let map = self.namespace_names.compact();
            for code in &mut self.namespaces {
                *code = map[*code as usize];
            }
        }
        for column in &mut self.columns {
            column.swap_remove(slot);
        }
        self.shrink_codes();
        true
    }

    /// Forgets the metadata index on `property` and its column.
    pub fn drop_index(&mut self, property: &str) {
        if let Some(position) = self.indexes.iter().position(|i| i.property == property) {
            self.indexes.remove(position);
            self.columns.remove(position);
        }
    }

    /// Heap bytes held by the structure (capacities, so what the allocator gave it).
    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity()
            + self.scales.capacity() * 4
            + self.norms.capacity() * 4
            + self.ids.heap_bytes()
            + self.namespaces.capacity() * 4
            + self.namespace_names.heap_bytes()
            + self.columns.iter().map(Column::heap_bytes).sum::<usize>()
    }

    /// The slots of the `candidates` best vectors by quantized similarity to `query` (as the driver scores it
    /// exactly: unit length for cosine) in `namespace` (all if `None`) that pass `filter`, best
    /// first; ties go to the smaller id. The namespace and filter are applied exactly.
    pub fn search(
        &self,
        query: &[f32],
        namespace: Option<&str>,
        filter: Option<&CompiledFilter>,
        candidates: usize,
    ) -> Vec<usize> {
        let namespace = match namespace {
            None => None,
            Some(name) => match self.namespace_names.code(name) {
                Some(code) => Some(code),
                None => return Vec::new(),
            },
        };
        let matchers: Vec<Matcher<'_>> = filter
            .map(|f| {
                f.clauses()
                    .iter()
                    .map(|(position, condition)| self.columns[*position].matcher(condition))
                    .collect()
            })
            .unwrap_or_default();
        let quantized = quantize_query(query);
        let (q, q_scale) = (&quantized.codes[..], quantized.scale);
        let euclidean = self.metric == Metric::Euclidean;
        let mut heap: BinaryHeap<Candidate<'_>> = BinaryHeap::with_capacity(candidates + 1);
        // The worst similarity kept once the heap is full: anything below it cannot enter.
        let mut threshold = f32::NEG_INFINITY;
        let dot_i16_i8 = dot_i16_i8_for_this_cpu();
        for (slot, row) in self.codes.chunks_exact(self.dimensions).enumerate() {
            if namespace.is_some_and(|code| self.namespaces[slot] != code) {
                continue;
            }
            if !matchers.iter().all(|m| m.matches(slot)) {
                continue;
            }
            let product = dot_i16_i8(q, row) as f32 * (q_scale * self.scales[slot]);
            // Euclidean: |q - r|² = |q|² + |r|² - 2 q·r, and |q|² is the same for every row.
            let mut similarity = if euclidean { 2.0 * product - self.norms[slot] } else { product };
            if similarity.is_nan() {
                similarity = f32::NEG_INFINITY;
            }
            if similarity < threshold || candidates == 0 {
                continue;
            }
            let candidate = Candidate { similarity, id: self.ids.get(slot), slot };
            if heap.len() < candidates {
                heap.push(candidate);
            } else if let Some(mut worst) = heap.peek_mut()
                && candidate < *worst
            {
                *worst = candidate;
            }
            if heap.len() == candidates {
                threshold = heap.peek().map_or(f32::NEG_INFINITY, |worst| worst.similarity);
            }
        }
        heap.into_sorted_vec().into_iter().map(|c| c.slot).collect()
    }

    /// Makes room for one more row, growing by 1/8 of the contents (not doubling).
    fn grow_codes(&mut self) {
        if self.codes.len() + self.dimensions > self.codes.capacity() {
            let extra = (self.codes.len() / 8).max(self.dimensions * 64);
            self.codes.reserve_exact(extra);
        }
    }

    /// Gives memory back once a quarter of the code array is unused.
    fn shrink_codes(&mut self) {
        let len = self.codes.len();
        if self.codes.capacity() > len + len / 4 + self.dimensions * 256 {
            self.codes.shrink_to(len + len / 8);
        }
    }
}

/// A candidate of the top-k heap, ordered so that the *worst* candidate is the greatest (the
/// heap's top): lower similarity is worse, and among equals the greater id.
pub(crate) struct Candidate<'a> {
    pub similarity: f32,
    pub id: &'a str,
    pub slot: usize,
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
    use super::super::quantize::{decode_row, encode_row};
    use super::*;

    fn store(metric: Metric, dimensions: usize) -> FlatStore {
        FlatStore::new(IndexConfig { dimensions, metric }, Vec::new())
    }

    fn put(s: &mut FlatStore, id: &str, values: &[f32], namespace: Option<&str>) {
        let blob = encode_row(values, s.metric);
        let (scale, codes) = decode_row(&blob, s.dimensions).unwrap();
        s.upsert(id, scale, codes, namespace, &[]);
    }

    fn ids(s: &FlatStore, hits: &[usize]) -> Vec<String> {
        hits.iter().map(|slot| s.id(*slot).to_owned()).collect()
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
    fn the_quantized_ranking_finds_the_exact_top_10_among_its_candidates() {
        for metric in [Metric::Cosine, Metric::Euclidean, Metric::DotProduct] {
            let d = 64;
            let mut s = store(metric, d);
            let mut all = Vec::new();
            for i in 0..2000 {
                let v = noise(i, d);
                put(&mut s, &format!("v{i:04}"), &v, None);
                all.push((format!("v{i:04}"), v));
            }
            let mut q = noise(99_999, d);
            if metric == Metric::Cosine {
                crate::distance::normalize(&mut q);
            }
            let exact = |v: &[f32]| match metric {
                Metric::Cosine => {
                    let mut v = v.to_vec();
                    crate::distance::normalize(&mut v);
                    crate::distance::dot(&q, &v)
                }
                Metric::DotProduct => crate::distance::dot(&q, v),
                Metric::Euclidean => -crate::distance::squared_euclidean(&q, v),
            };
            let mut expected: Vec<(f32, &String)> = all.iter().map(|(id, v)| (exact(v), id)).collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let candidates = ids(&s, &s.search(&q, None, None, 64));
            assert_eq!(candidates.len(), 64);
            for (_, id) in expected.iter().take(10) {
                assert!(candidates.contains(id), "{metric}: {id} is not among the candidates");
            }
        }
    }

    #[test]
    fn ties_go_to_the_smaller_id() {
        let mut s = store(Metric::DotProduct, 2);
        for id in ["c", "a", "b"] {
            put(&mut s, id, &[1.0, 0.0], None);
        }
        assert_eq!(ids(&s, &s.search(&[1.0, 0.0], None, None, 2)), ["a", "b"]);
    }

    #[test]
    fn removing_moves_the_last_slot_and_keeps_side_arrays_aligned() {
        let mut s = store(Metric::DotProduct, 2);
        put(&mut s, "a", &[1.0, 0.0], Some("x"));
        put(&mut s, "b", &[2.0, 0.0], None);
        put(&mut s, "c", &[3.0, 0.0], Some("y"));
        assert!(s.remove("a"));
        assert!(!s.remove("a"));
        assert_eq!(s.len(), 2);
        let hits = s.search(&[1.0, 0.0], None, None, 10);
        let got: Vec<(&str, Option<&str>)> =
            hits.iter().map(|slot| (s.id(*slot), s.namespace(*slot))).collect();
        assert_eq!(got, [("c", Some("y")), ("b", None)]);
        put(&mut s, "b", &[5.0, 0.0], Some("y"));
        assert_eq!(ids(&s, &s.search(&[1.0, 0.0], Some("y"), None, 10)), ["b", "c"]);
        assert!(s.search(&[1.0, 0.0], Some("x"), None, 10).is_empty(), "no vector left in x");
        assert!(s.search(&[1.0, 0.0], Some("unknown"), None, 10).is_empty());
    }

    #[test]
    fn indexed_strings_are_interned_and_freed() {
        let index = MetadataIndex { property: "repo".into(), index_type: MetadataIndexType::String };
        let mut s = FlatStore::new(IndexConfig { dimensions: 2, metric: Metric::DotProduct }, vec![index]);
        let blob = encode_row(&[1.0, 0.0], Metric::DotProduct);
        let (scale, codes) = decode_row(&blob, 2).unwrap();
        for i in 0..5000 {
            let repo = format!("repo-{}", i % 3000);
            s.upsert(&format!("v{i}"), scale, codes, None, &[IndexedRef::String(&repo)]);
        }
        let Column::Strings { dictionary, .. } = &s.columns[0] else { panic!("a string column") };
        assert_eq!(dictionary.max_code(), 3000);
        for i in 0..4990 {
            s.remove(&format!("v{i}"));
        }
        let Column::Strings { dictionary, .. } = &s.columns[0] else { panic!("a string column") };
        assert!(dictionary.max_code() < 3000, "unreferenced strings were dropped: {}", dictionary.max_code());
        let mut kept: Vec<(String, IndexedRef<'_>)> =
            (0..s.len()).map(|slot| (s.id(slot).to_owned(), s.indexed(0, slot))).collect();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<(String, String)> =
            (4990..5000).map(|i| (format!("v{i}"), format!("repo-{}", i % 3000))).collect();
        let kept: Vec<(String, String)> = kept
            .into_iter()
            .map(|(id, v)| match v {
                IndexedRef::String(s) => (id, s.to_owned()),
                other => panic!("{other:?}"),
            })
            .collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(kept, expected);
    }

    #[test]
    fn the_code_array_grows_and_shrinks_in_small_steps() {
        let d = 256;
        let mut s = store(Metric::DotProduct, d);
        let v = vec![0.5; d];
        for i in 0..2000 {
            put(&mut s, &i.to_string(), &v, None);
        }
        assert!(s.codes.capacity() <= s.codes.len() + s.codes.len() / 8 + d * 64, "{}", s.codes.capacity());
        for i in 0..1500 {
            s.remove(&i.to_string());
        }
        assert!(s.codes.capacity() <= s.codes.len() + s.codes.len() / 4 + d * 256, "{}", s.codes.capacity());
    }
}
