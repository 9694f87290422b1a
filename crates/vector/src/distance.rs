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
#[inline(always)]
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

/// [`dot_i16_i8`] compiled for the widest vector instructions this CPU has, chosen once per call
/// site (a scan calls it for every row): the default build targets baseline x86-64 (SSE2, 128-bit),
/// while the machines ledge runs on mostly have AVX2 (256-bit) or AVX-512 (512-bit) — the same
/// arithmetic, 2–4× fewer instructions per row.
pub fn dot_i16_i8_for_this_cpu() -> fn(&[i16], &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            return wide::dot_i16_i8_avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return wide::dot_i16_i8_avx2;
        }
    }
    dot_i16_i8
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod wide {
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512(query: &[i16], row: &[i8]) -> i32 {
        super::dot_i16_i8(query, row)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn avx2(query: &[i16], row: &[i8]) -> i32 {
        super::dot_i16_i8(query, row)
    }

    pub(super) fn dot_i16_i8_avx512(query: &[i16], row: &[i8]) -> i32 {
        // SAFETY: handed out by `dot_i16_i8_for_this_cpu` only when the CPU has AVX-512BW.
        unsafe { avx512(query, row) }
    }

    pub(super) fn dot_i16_i8_avx2(query: &[i16], row: &[i8]) -> i32 {
        // SAFETY: handed out by `dot_i16_i8_for_this_cpu` only when the CPU has AVX2.
        unsafe { avx2(query, row) }
    }
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

    #[test]
    fn the_dot_product_for_this_cpu_equals_the_portable_one_exactly() {
        let dot_here = dot_i16_i8_for_this_cpu();
        for len in [1, 31, 32, 33, 256, 384, 1536] {
            let query: Vec<i16> = (0..len).map(|i| ((i * 7919 % 511) as i16) - 255).collect();
            let row: Vec<i8> = (0..len).map(|i| ((i * 104_729 % 255) as i16 - 127) as i8).collect();
            assert_eq!(dot_here(&query, &row), dot_i16_i8(&query, &row), "length {len}");
        }
    }
}
