//! The arithmetic of scoring: dot products and squared L2 distances written so that LLVM
//! auto-vectorises them (16 independent lanes, no `unsafe`), the integer dot product of the
//! quantized pass (`i16` query · `i8` row → `i32`, 32 lanes), and the mapping between a metric's
//! score and a "similarity" where higher is always closer.

use crate::types::Metric;

/// Lanes accumulated independently: 16 × f32 = two AVX registers or four SSE/NEON ones. Independent
/// accumulators let the compiler vectorise without reassociating float additions.
const LANES: usize = 16;

/// The dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_rest) = a.as_chunks::<LANES>();
    let (b_chunks, b_rest) = b.as_chunks::<LANES>();
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let mut sum = sum_lanes(lanes);
    for (x, y) in a_rest.iter().zip(b_rest) {
        sum += x * y;
    }
    sum
}

/// The squared Euclidean distance between two equally long slices.
pub fn squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_rest) = a.as_chunks::<LANES>();
    let (b_chunks, b_rest) = b.as_chunks::<LANES>();
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            let d = x - y;
            *lane += d * d;
        }
    }
    let mut sum = sum_lanes(lanes);
    for (x, y) in a_rest.iter().zip(b_rest) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

/// Lanes of the integer dot product: 32 × i8 of a row is one AVX2 register or two SSE ones.
pub const INT_LANES: usize = 32;

/// The dot product of a quantized query (`i16`, see [`crate::embedded`]) and a quantized row
/// (`i8`), of equal length. Exact in `i32` as long as `len · max|query| · 128 < 2³¹`, which the
/// quantizer guarantees. Written as fixed-width chunks with independent lanes (integer addition
/// is associative, so LLVM vectorises it: `pmaddwd` on SSE2, `vpmaddwd` with AVX2).
pub fn dot_i16_i8(query: &[i16], row: &[i8]) -> i32 {
    let (q_chunks, q_rest) = query.as_chunks::<INT_LANES>();
    let (r_chunks, r_rest) = row.as_chunks::<INT_LANES>();
    let mut lanes = [0i32; INT_LANES];
    for (q, r) in q_chunks.iter().zip(r_chunks) {
        for ((lane, q), r) in lanes.iter_mut().zip(q).zip(r) {
            *lane += i32::from(*q) * i32::from(*r);
        }
    }
    let mut sum: i32 = lanes.iter().sum();
    for (q, r) in q_rest.iter().zip(r_rest) {
        sum += i32::from(*q) * i32::from(*r);
    }
    sum
}

/// Pairwise sum of the lanes (more accurate than a running sum).
fn sum_lanes(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        let (low, high) = lanes.split_at_mut(width);
        for (l, h) in low.iter_mut().zip(high.iter()) {
            *l += h;
        }
    }
    lanes[0]
}

/// Scales `values` to unit length in place; a zero vector stays zero (it scores 0 under cosine).
/// Runs once per stored vector and per query, not per comparison.
pub fn normalize(values: &mut [f32]) {
    // In f64, so that large components do not overflow the norm.
    let norm = values.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for v in values {
            *v = (f64::from(*v) / norm) as f32;
        }
    }
}

/// The similarity (higher is closer, whatever the metric) of a stored row to a query, both as
/// kept in memory (unit length for cosine): the dot product for cosine and dot-product, the
/// negated squared distance for euclidean (no square root per row).
pub fn similarity(metric: Metric, query: &[f32], row: &[f32]) -> f32 {
    match metric {
        Metric::Cosine | Metric::DotProduct => dot(query, row),
        Metric::Euclidean => -squared_euclidean(query, row),
    }
}

/// The metric's score for a similarity: cosine similarity (higher is closer), L2 distance and
/// negated dot product (lower is closer).
pub fn score(metric: Metric, similarity: f32) -> f32 {
    match metric {
        Metric::Cosine => similarity,
        // `0.0 - x` rather than `-x`: a zero dot product scores 0, not -0.
        Metric::DotProduct => 0.0 - similarity,
        Metric::Euclidean => (-similarity).max(0.0).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
    }

    #[test]
    fn chunked_arithmetic_matches_the_naive_loop_at_every_length() {
        for len in 0..=67 {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let d: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
            assert!((f64::from(dot(&a, &b)) - naive_dot(&a, &b)).abs() < 1e-4, "dot, len {len}");
            assert!((f64::from(squared_euclidean(&a, &b)) - naive_dot(&d, &d)).abs() < 1e-4, "l2, len {len}");
        }
    }

    #[test]
    fn scores_map_similarities_to_each_metric_direction() {
        assert_eq!(score(Metric::Cosine, 0.5), 0.5);
        assert_eq!(score(Metric::DotProduct, 3.0), -3.0);
        assert_eq!(score(Metric::DotProduct, 0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(score(Metric::Euclidean, -25.0), 5.0);
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0, 0.0];
        normalize(&mut zero);
        assert_eq!(zero, [0.0, 0.0]);
    }
}
