//! Scalar quantization of the embedded driver: a stored vector becomes one `f32` scale and `d`
//! signed bytes (symmetric, per vector: `code = round(v / scale)`, `scale = max|v| / 127`, after
//! normalising to unit length for cosine); a query becomes `d` `i16` codes with its own scale, as
//! fine as the `i32` dot product allows without overflow. The persisted form of a row is the
//! scale (little-endian `f32`) followed by the codes, `4 + d` bytes.

use crate::distance::normalize;
use crate::error::{Error, Result};
use crate::types::Metric;

/// Largest magnitude of a row code (symmetric: -127 ..= 127, never -128).
pub(crate) const ROW_MAX: f32 = 127.0;

/// The persisted form of `values` for `metric`: scale then codes.
pub(crate) fn encode_row(values: &[f32], metric: Metric) -> Vec<u8> {
    let mut normalized;
    let values = if metric == Metric::Cosine {
        normalized = values.to_vec();
        normalize(&mut normalized);
        &normalized[..]
    } else {
        values
    };
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = max / ROW_MAX;
    let mut blob = Vec::with_capacity(4 + values.len());
    blob.extend_from_slice(&scale.to_le_bytes());
    if scale > 0.0 && scale.is_finite() {
        let inverse = 1.0 / scale;
        blob.extend(values.iter().map(|v| (v * inverse).round().clamp(-ROW_MAX, ROW_MAX) as i8 as u8));
    } else {
        blob.resize(4 + values.len(), 0);
    }
    blob
}

/// The scale and codes (as stored bytes) of a persisted row of `dimensions` codes.
pub(crate) fn decode_row(blob: &[u8], dimensions: usize) -> Result<(f32, &[u8])> {
    if blob.len() != 4 + dimensions {
        return Err(Error::backend(format!(
            "a stored quantized row has {} bytes, expected {}",
            blob.len(),
            4 + dimensions
        )));
    }
    let (scale, codes) = blob.split_at(4);
    let scale = f32::from_le_bytes([scale[0], scale[1], scale[2], scale[3]]);
    Ok((scale, codes))
}

/// A query quantized for the integer dot product.
pub(crate) struct QuantizedQuery {
    pub codes: Vec<i16>,
    pub scale: f32,
}

/// Quantizes a query (already unit length for cosine). Its codes are bounded so that a dot
/// product with `d` row codes (|code| ≤ 127) stays within `i32`: `d · max · 128 < 2³¹`.
pub(crate) fn quantize_query(values: &[f32]) -> QuantizedQuery {
    let d = values.len().max(1);
    let limit = ((i32::MAX as usize) / (128 * d)).min(i16::MAX as usize) as f32;
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = max / limit;
    let codes = if scale > 0.0 && scale.is_finite() {
        let inverse = 1.0 / scale;
        values.iter().map(|v| (v * inverse).round().clamp(-limit, limit) as i16).collect()
    } else {
        vec![0; values.len()]
    };
    QuantizedQuery { codes, scale }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::{dot, dot_i16_i8};

    #[test]
    fn a_row_round_trips_within_half_a_step() {
        let values: Vec<f32> = (0..70).map(|i| ((i as f32) * 0.7).sin() * 3.0).collect();
        let blob = encode_row(&values, Metric::DotProduct);
        let (scale, codes) = decode_row(&blob, 70).unwrap();
        for (v, c) in values.iter().zip(codes) {
            assert!((v - f32::from(*c as i8) * scale).abs() <= scale / 2.0 + 1e-6);
        }
        assert!(
            codes.iter().any(|c| *c as i8 == 127 || *c as i8 == -127),
            "the largest value uses the full range"
        );
        assert!(decode_row(&blob, 71).is_err());
    }

    #[test]
    fn zero_vectors_quantize_to_zero() {
        let blob = encode_row(&[0.0; 5], Metric::Cosine);
        assert_eq!(decode_row(&blob, 5).unwrap(), (0.0, &[0u8; 5][..]));
        let q = quantize_query(&[0.0; 5]);
        assert_eq!((q.scale, q.codes), (0.0, vec![0; 5]));
    }

    #[test]
    fn the_quantized_dot_product_approximates_the_exact_one() {
        let d = 256;
        let a: Vec<f32> = (0..d).map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0).collect();
        let b: Vec<f32> = (0..d).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
        let blob = encode_row(&b, Metric::DotProduct);
        let (scale, codes) = decode_row(&blob, d).unwrap();
        let codes: Vec<i8> = codes.iter().map(|c| *c as i8).collect();
        let q = quantize_query(&a);
        let approx = dot_i16_i8(&q.codes, &codes) as f32 * q.scale * scale;
        let exact = dot(&a, &b);
        assert!((approx - exact).abs() < 0.01 * exact.abs().max(1.0), "{approx} vs {exact}");
    }

    #[test]
    fn query_codes_cannot_overflow_the_integer_dot_product() {
        let d = 1536;
        let q = quantize_query(&vec![-1.0; d]);
        let row = vec![-127i8; d];
        let dot = dot_i16_i8(&q.codes, &row);
        assert!(dot > 0, "{dot}");
    }
}
