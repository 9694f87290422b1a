//! Ranking: fusing the keyword and the semantic rankings (reciprocal rank fusion or a weighted sum of
//! normalised scores), the exact-symbol boost, de-duplication of overlapping chunks and diversification
//! across files.

use std::collections::HashMap;

use ledge_keyword::ChunkDoc;

use crate::request::Fusion;

/// The `k` of reciprocal rank fusion: a hit at rank `r` (from 1) of a ranking adds `1 / (k + r)`. 10
/// rather than the customary 60: a smaller `k` lets a first place in one ranking outweigh a middling place
/// in both, which the quality evaluation (`examples/eval`, BENCHMARKS.md) measured as better for code
/// (MRR@10 0.344 against 0.323 at 60, semantic weight 0.3).
pub const RRF_K: f32 = 10.0;
/// The weight of the semantic ranking (the keyword ranking has `1 − w`), in both fusions. 0.3: the
/// keyword ranking is the stronger of the two on code; 0.3 had the best MRR@10 of the weights tried on
/// the quality evaluation (0.2 to 0.6, see BENCHMARKS.md, search quality).
pub const SEMANTIC_WEIGHT: f32 = 0.3;
/// How many hits of one file a page shows before the file's further hits are pushed below the others.
pub const MAX_HITS_PER_FILE: usize = 3;

/// The knobs of hybrid fusion ([`SearchOptions::fusion`](crate::SearchOptions::fusion)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionWeights {
    /// The share of the semantic ranking, 0..=1 (the keyword ranking has `1 − w`): in [`Fusion::Weighted`]
    /// it weighs the normalised scores, in [`Fusion::Rrf`] the reciprocal ranks (0.5: plain RRF).
    pub semantic_weight: f32,
    /// The `k` of reciprocal rank fusion.
    pub rrf_k: f32,
}

impl Default for FusionWeights {
    fn default() -> Self {
        FusionWeights { semantic_weight: SEMANTIC_WEIGHT, rrf_k: RRF_K }
    }
}

/// A chunk and its score in one ranking or after fusion (higher is better).
#[derive(Debug, Clone)]
pub(crate) struct Ranked {
    pub doc: ChunkDoc,
    pub score: f32,
}

/// Whether the chunk's symbol, or another of its names, is one of `names` (lowercased), case-insensitively.
fn is_exact_symbol(doc: &ChunkDoc, names: &[String]) -> bool {
    doc.symbol.iter().chain(&doc.symbols).any(|s| names.contains(&s.to_lowercase()))
}

/// Min-max normalisation to [0, 1]; a ranking whose scores are all equal maps to 1.
fn normalised(scores: &[f32]) -> Vec<f32> {
    let (min, max) =
        scores.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    scores.iter().map(|&s| if max > min { (s - min) / (max - min) } else { 1.0 }).collect()
}

/// Fuses two rankings (each best first) into one, best first. A chunk whose symbol equals a query word
/// (or the whole query), case-insensitively, gets the bonus of one more first place (RRF) or of a perfect
/// score on a third ranking of weight 0.5 (weighted).
pub(crate) fn fuse(
    keyword: Vec<Ranked>,
    semantic: Vec<Ranked>,
    fusion: Fusion,
    weights: FusionWeights,
    symbol_names: &[String],
) -> Vec<Ranked> {
    let mut fused: Vec<Ranked> = Vec::with_capacity(keyword.len() + semantic.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    let w = weights.semantic_weight.clamp(0.0, 1.0);
    let k = weights.rrf_k.max(0.0);
    let (keyword_scores, semantic_scores) = match fusion {
        // Scaled by 2 so that w = 0.5 is plain RRF.
        Fusion::Rrf => (
            (1..=keyword.len()).map(|r| 2.0 * (1.0 - w) / (k + r as f32)).collect::<Vec<_>>(),
            (1..=semantic.len()).map(|r| 2.0 * w / (k + r as f32)).collect::<Vec<_>>(),
        ),
        Fusion::Weighted => {
            let ks: Vec<f32> = keyword.iter().map(|h| h.score).collect();
            let ss: Vec<f32> = semantic.iter().map(|h| h.score).collect();
            (
                normalised(&ks).into_iter().map(|x| x * (1.0 - w)).collect(),
                normalised(&ss).into_iter().map(|x| x * w).collect(),
            )
        }
    };
    for (hits, scores) in [(keyword, keyword_scores), (semantic, semantic_scores)] {
        for (hit, score) in hits.into_iter().zip(scores) {
            match at.get(&hit.doc.chunk_id) {
                Some(&i) => fused[i].score += score,
                None => {
                    at.insert(hit.doc.chunk_id.clone(), fused.len());
                    fused.push(Ranked { doc: hit.doc, score });
                }
            }
        }
    }
    let bonus = match fusion {
        Fusion::Rrf => 1.0 / (k + 1.0),
        Fusion::Weighted => 0.5,
    };
    for hit in &mut fused {
        if is_exact_symbol(&hit.doc, symbol_names) {
            hit.score += bonus;
        }
    }
    sort(&mut fused);
    fused
}

/// Best first; ties in (repo, path, start line) order, so a ranking is deterministic.
pub(crate) fn sort(ranked: &mut [Ranked]) {
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.doc.repo.cmp(&b.doc.repo))
            .then_with(|| a.doc.path.cmp(&b.doc.path))
            .then_with(|| a.doc.start_line.cmp(&b.doc.start_line))
            .then_with(|| a.doc.chunk_id.cmp(&b.doc.chunk_id))
    });
}

/// Drops every chunk that overlaps (same repository and path, intersecting line ranges) a better one,
/// then moves the hits of a file beyond its first `per_file` below all the others (keeping their order).
pub(crate) fn dedupe_and_diversify(ranked: Vec<Ranked>, per_file: usize) -> Vec<Ranked> {
    let mut kept_ranges: HashMap<(String, String), Vec<(u32, u32)>> = HashMap::new();
    let mut first = Vec::with_capacity(ranked.len());
    let mut pushed_down = Vec::new();
    for hit in ranked {
        let ranges = kept_ranges.entry((hit.doc.repo.clone(), hit.doc.path.clone())).or_default();
        let (start, end) = (hit.doc.start_line, hit.doc.end_line);
        if ranges.iter().any(|&(s, e)| start <= e && s <= end) {
            continue;
        }
        ranges.push((start, end));
        if ranges.len() > per_file.max(1) {
            pushed_down.push(hit);
        } else {
            first.push(hit);
        }
    }
    first.extend(pushed_down);
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, path: &str, lines: (u32, u32), symbol: Option<&str>) -> ChunkDoc {
        ChunkDoc {
            org: "acme".into(),
            repo: "acme/api".into(),
            commit: "c".into(),
            path: path.into(),
            language: "rust".into(),
            symbol: symbol.map(Into::into),
            symbols: symbol.into_iter().map(Into::into).collect(),
            kind: "function".into(),
            start_line: lines.0,
            end_line: lines.1,
            chunk_id: id.into(),
            text: String::new(),
        }
    }

    fn ranked(docs: &[(&str, f32)]) -> Vec<Ranked> {
        docs.iter()
            .map(|&(id, score)| Ranked { doc: doc(id, &format!("{id}.rs"), (1, 5), None), score })
            .collect()
    }

    fn ids(ranked: &[Ranked]) -> Vec<&str> {
        ranked.iter().map(|r| r.doc.chunk_id.as_str()).collect()
    }

    #[test]
    fn rrf_favours_what_both_rankings_agree_on() {
        let keyword = ranked(&[("a", 9.0), ("b", 5.0), ("c", 1.0)]);
        let semantic = ranked(&[("b", 0.9), ("c", 0.8), ("d", 0.7)]);
        let plain = FusionWeights { semantic_weight: 0.5, rrf_k: 60.0 };
        let fused = fuse(keyword, semantic, Fusion::Rrf, plain, &[]);
        assert_eq!(ids(&fused), ["b", "c", "a", "d"]);
        let expected_b = 1.0 / (60.0 + 2.0) + 1.0 / (60.0 + 1.0);
        assert!((fused[0].score - expected_b).abs() < 1e-6);
    }

    #[test]
    fn weighted_sums_normalised_scores() {
        let keyword = ranked(&[("a", 10.0), ("b", 5.0), ("c", 0.0)]);
        let semantic = ranked(&[("c", 0.9), ("b", 0.5), ("a", 0.1)]);
        let even = FusionWeights { semantic_weight: 0.5, ..FusionWeights::default() };
        let fused = fuse(keyword, semantic, Fusion::Weighted, even, &[]);
        // a: 0.5·1 + 0.5·0 = 0.5; b: 0.5·0.5 + 0.5·0.5 = 0.5; c: 0 + 0.5 = 0.5 — ties broken by path.
        assert!(fused.iter().all(|r| (r.score - 0.5).abs() < 1e-6), "{fused:?}");
        assert_eq!(ids(&fused), ["a", "b", "c"]);
    }

    #[test]
    fn the_semantic_weight_tilts_the_fusion() {
        for fusion in [Fusion::Rrf, Fusion::Weighted] {
            let keyword_first = fuse(
                ranked(&[("k", 9.0), ("s", 1.0)]),
                ranked(&[("s", 0.9), ("k", 0.1)]),
                fusion,
                FusionWeights { semantic_weight: 0.4, rrf_k: RRF_K },
                &[],
            );
            assert_eq!(ids(&keyword_first), ["k", "s"], "{fusion:?}");
            let semantic_first = fuse(
                ranked(&[("k", 9.0), ("s", 1.0)]),
                ranked(&[("s", 0.9), ("k", 0.1)]),
                fusion,
                FusionWeights { semantic_weight: 0.6, rrf_k: RRF_K },
                &[],
            );
            assert_eq!(ids(&semantic_first), ["s", "k"], "{fusion:?}");
        }
    }

    #[test]
    fn an_exact_symbol_match_is_boosted() {
        let mut keyword = ranked(&[("a", 9.0), ("b", 5.0)]);
        keyword[1].doc.symbol = Some("ParseJson".into());
        let fused =
            fuse(keyword, Vec::new(), Fusion::Rrf, FusionWeights::default(), &["parsejson".to_owned()]);
        assert_eq!(ids(&fused), ["b", "a"]);
    }

    #[test]
    fn any_name_of_a_merged_chunk_is_an_exact_symbol_match() {
        let mut keyword = ranked(&[("a", 9.0), ("merged", 5.0)]);
        keyword[1].doc.symbols = vec!["add".into(), "ParseJson".into()];
        let fused =
            fuse(keyword, Vec::new(), Fusion::Rrf, FusionWeights::default(), &["parsejson".to_owned()]);
        assert_eq!(ids(&fused), ["merged", "a"]);
    }

    #[test]
    fn overlapping_chunks_keep_the_best_and_files_are_diversified() {
        let hits = vec![
            Ranked { doc: doc("a1", "a.rs", (1, 20), None), score: 9.0 },
            Ranked { doc: doc("a1-overlap", "a.rs", (15, 30), None), score: 8.0 },
            Ranked { doc: doc("a2", "a.rs", (31, 40), None), score: 7.0 },
            Ranked { doc: doc("a3", "a.rs", (41, 50), None), score: 6.0 },
            Ranked { doc: doc("a4", "a.rs", (51, 60), None), score: 5.0 },
            Ranked { doc: doc("b1", "b.rs", (1, 20), None), score: 4.0 },
            Ranked { doc: doc("other-repo", "a.rs", (1, 20), None), score: 3.0 },
        ];
        let mut hits = hits;
        hits[6].doc.repo = "acme/web".into();
        let out = dedupe_and_diversify(hits, 3);
        assert_eq!(ids(&out), ["a1", "a2", "a3", "b1", "other-repo", "a4"]);
    }
}
