//! The int8 model format, the conversion to it, and the checks any model file passes before it is loaded.
//!
//! # Format
//!
//! An installed model's `model.safetensors` is a valid model2vec file that model2vec loaders read as is:
//!
//! - `embeddings`: `I8 [rows, dims]` — row `r` of the source table divided by its scale
//!   `s_r = max_i |x_ri| / 127`, rounded (symmetric, per row; an all-zero row stays zero with `s_r = 0`);
//! - `weights`: `F32 [tokens]` — for each token id `t`, the source's own token weight (1 when it has none)
//!   times the scale of the row the token uses, `s_row(t)`. model2vec multiplies each token's row by its
//!   weight before pooling, so the int8 row times its weight is the source's f32 row, to within half a step
//!   of 1/127 of the row's largest value;
//! - `mapping`: copied unchanged when the source has one (vocabulary-quantised models map tokens to rows);
//!   `row(t) = mapping[t]`, else `t`;
//! - header metadata `{"format": "ledge-int8-rows/1"}`.
//!
//! A source that is already int8 is kept as it is. Pooling is a mean over token rows followed by L2
//! normalisation, so the per-row scales only matter relative to each other; the cosine between the int8
//! and the f32 vector of a text stays above 0.99 (the tests measure it on real code).

use std::collections::HashMap;

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Names under which model2vec stores the embedding table, in the order model2vec-rs looks them up.
const TABLE_NAMES: [&str; 3] = ["embeddings", "0", "embedding.weight"];
/// The `format` metadata of files this module writes.
pub(crate) const FORMAT: &str = "ledge-int8-rows/1";

/// What a model file holds, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableSummary {
    /// Rows of the embedding table.
    pub(crate) rows: usize,
    /// Columns: the dimensions of every vector.
    pub(crate) dims: usize,
    /// The table's element type: "f32", "f16" or "int8".
    pub(crate) dtype: &'static str,
    /// Token ids below this have a row (directly, or through the mapping).
    pub(crate) token_limit: usize,
}

/// The parsed tensors of a model file.
struct Tensors<'a> {
    table: TensorView<'a>,
    summary: TableSummary,
    weights: Option<Vec<f32>>,
    mapping: Option<(TensorView<'a>, Vec<usize>)>,
}

fn parse(model: &[u8]) -> Result<Tensors<'_>, String> {
    let file = SafeTensors::deserialize(model).map_err(|e| format!("not a safetensors file: {e}"))?;
    let table = TABLE_NAMES
        .iter()
        .find_map(|name| file.tensor(name).ok())
        .ok_or_else(|| format!("no embedding table (a tensor named {})", TABLE_NAMES.join(", ")))?;
    let &[rows, dims] = table.shape() else {
        return Err(format!("the embedding table has shape {:?}, not [rows, dims]", table.shape()));
    };
    if rows == 0 || dims == 0 {
        return Err(format!("the embedding table is empty ({rows} × {dims})"));
    }
    let dtype = match table.dtype() {
        Dtype::F32 => "f32",
        Dtype::F16 => "f16",
        Dtype::I8 => "int8",
        other => return Err(format!("the embedding table is {other:?}; f32, f16 or int8 expected")),
    };
    let weights = match file.tensor("weights") {
        Ok(view) => Some(decode_weights(&view)?),
        Err(_) => None,
    };
    let mapping = match file.tensor("mapping") {
        Ok(view) => {
            let rows_of_tokens = decode_mapping(&view, rows)?;
            Some((view, rows_of_tokens))
        }
        Err(_) => None,
    };
    let token_limit = mapping.as_ref().map_or(rows, |(_, map)| map.len().max(rows));
    Ok(Tensors { table, summary: TableSummary { rows, dims, dtype, token_limit }, weights, mapping })
}

fn decode_weights(view: &TensorView<'_>) -> Result<Vec<f32>, String> {
    if view.shape().len() != 1 {
        return Err(format!("`weights` has shape {:?}, not [tokens]", view.shape()));
    }
    let data = view.data();
    let weights: Vec<f32> = match view.dtype() {
        Dtype::F64 => data.chunks_exact(8).map(|b| f64::from_le_bytes(array(b)) as f32).collect(),
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes(array(b))).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes(array(b)).to_f32()).collect(),
        other => return Err(format!("`weights` is {other:?}; a float type expected")),
    };
    if weights.iter().any(|w| !w.is_finite()) {
        return Err("`weights` holds a value that is not finite".to_owned());
    }
    Ok(weights)
}

fn decode_mapping(view: &TensorView<'_>, rows: usize) -> Result<Vec<usize>, String> {
    if view.shape().len() != 1 {
        return Err(format!("`mapping` has shape {:?}, not [tokens]", view.shape()));
    }
    let data = view.data();
    let raw: Vec<i64> = match view.dtype() {
        Dtype::I64 => data.chunks_exact(8).map(|b| i64::from_le_bytes(array(b))).collect(),
        Dtype::I32 => data.chunks_exact(4).map(|b| i64::from(i32::from_le_bytes(array(b)))).collect(),
        other => return Err(format!("`mapping` is {other:?}; I32 or I64 expected")),
    };
    raw.into_iter()
        .map(|row| {
            usize::try_from(row)
                .ok()
                .filter(|&row| row < rows)
                .ok_or_else(|| format!("`mapping` points at row {row}, outside the table's {rows} rows"))
        })
        .collect()
}

/// A fixed-size array from a chunk of exactly that size (`chunks_exact` guarantees it).
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

/// Checks a model file's tensors (shapes, types, mapping within the table) and says what it holds.
pub(crate) fn inspect(model: &[u8]) -> Result<TableSummary, String> {
    parse(model).map(|tensors| tensors.summary)
}

/// The converted model file and what it holds.
#[derive(Debug)]
pub(crate) struct Quantized {
    pub(crate) bytes: Vec<u8>,
    pub(crate) summary: TableSummary,
}

/// Converts a model file to the int8 format above (an int8 source is kept as it is).
pub(crate) fn quantize(model: &[u8]) -> Result<Quantized, String> {
    let tensors = parse(model)?;
    let TableSummary { rows, dims, token_limit, .. } = tensors.summary;
    let (table, scales): (Vec<u8>, Option<Vec<f32>>) = match tensors.table.dtype() {
        Dtype::I8 => (tensors.table.data().to_vec(), None),
        dtype => {
            let width = if dtype == Dtype::F32 { 4 } else { 2 };
            let mut table = Vec::with_capacity(rows * dims);
            let mut scales = Vec::with_capacity(rows);
            let mut row = vec![0f32; dims];
            for (index, raw) in tensors.table.data().chunks_exact(dims * width).enumerate() {
                for (value, bytes) in row.iter_mut().zip(raw.chunks_exact(width)) {
                    *value = match width {
                        4 => f32::from_le_bytes(array(bytes)),
                        _ => half::f16::from_le_bytes(array(bytes)).to_f32(),
                    };
                }
                if row.iter().any(|value| !value.is_finite()) {
                    return Err(format!(
                        "row {index} of the embedding table holds a value that is not finite"
                    ));
                }
                let scale = row.iter().fold(0f32, |max, value| max.max(value.abs())) / 127.0;
                table.extend(row.iter().map(|&value| {
                    if scale > 0.0 { (value / scale).round().clamp(-127.0, 127.0) as i8 as u8 } else { 0 }
                }));
                scales.push(scale);
            }
            (table, Some(scales))
        }
    };
    let weights: Option<Vec<f32>> = match &scales {
        None => tensors.weights,
        Some(scales) => {
            let row_of = |token: usize| tensors.mapping.as_ref().and_then(|(_, map)| map.get(token).copied());
            let own =
                |token: usize| tensors.weights.as_ref().and_then(|w| w.get(token).copied()).unwrap_or(1.0);
            Some((0..token_limit).map(|token| own(token) * scales[row_of(token).unwrap_or(token)]).collect())
        }
    };
    let weight_bytes: Option<Vec<u8>> =
        weights.map(|w| w.iter().flat_map(|value| value.to_le_bytes()).collect());
    let mut views: Vec<(&str, TensorView<'_>)> = Vec::with_capacity(3);
    let view = |dtype, shape, data| TensorView::new(dtype, shape, data).map_err(|e| format!("writing: {e}"));
    views.push(("embeddings", view(Dtype::I8, vec![rows, dims], &table)?));
    if let Some(bytes) = &weight_bytes {
        views.push(("weights", view(Dtype::F32, vec![bytes.len() / 4], bytes)?));
    }
    if let Some((mapping, _)) = &tensors.mapping {
        views.push(("mapping", mapping.clone()));
    }
    let metadata = Some(HashMap::from([("format".to_owned(), FORMAT.to_owned())]));
    let bytes = safetensors::serialize(views, &metadata).map_err(|e| format!("writing: {e}"))?;
    Ok(Quantized { bytes, summary: TableSummary { rows, dims, dtype: "int8", token_limit } })
}

#[derive(Deserialize)]
struct TokenizerFile {
    model: TokenizerModel,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(Deserialize)]
struct TokenizerModel {
    #[serde(default)]
    vocab: Option<MaxId>,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u64,
}

/// The largest token id of a vocabulary, read without keeping the vocabulary: a map of token → id
/// (WordPiece, BPE, WordLevel) or a list of `[piece, score]` whose ids are positions (Unigram).
struct MaxId(Option<u64>);

impl<'de> Deserialize<'de> for MaxId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaxIdVisitor)
    }
}

struct MaxIdVisitor;

impl<'de> serde::de::Visitor<'de> for MaxIdVisitor {
    type Value = MaxId;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a vocabulary: a map of token to id, or a list of [token, score]")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<MaxId, A::Error> {
        let mut max = None;
        while let Some((IgnoredAny, id)) = map.next_entry::<IgnoredAny, u64>()? {
            max = max.max(Some(id));
        }
        Ok(MaxId(max))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaxId, A::Error> {
        let mut count = 0u64;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(MaxId(count.checked_sub(1)))
    }
}

/// Checks that tokenizer.json parses and every token id it can produce has a row in the table: a token past
/// the table would make pooling index out of bounds.
pub(crate) fn check_tokenizer(tokenizer: &[u8], summary: &TableSummary) -> Result<(), String> {
    let file: TokenizerFile =
        serde_json::from_slice(tokenizer).map_err(|e| format!("not a tokenizer: {e}"))?;
    let Some(MaxId(vocab_max)) = file.model.vocab else {
        return Err("the tokenizer's model has no vocabulary".to_owned());
    };
    let max_id = file.added_tokens.iter().map(|token| token.id).chain(vocab_max).max();
    match max_id {
        Some(id) if id >= summary.token_limit as u64 => Err(format!(
            "token id {id} has no row: the embedding table covers ids below {}",
            summary.token_limit
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_model(rows: &[[f32; 3]], weights: Option<&[f32]>) -> Vec<u8> {
        let table: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
        let weight_bytes: Vec<u8> = weights.unwrap_or(&[]).iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut views =
            vec![("embeddings", TensorView::new(Dtype::F32, vec![rows.len(), 3], &table).unwrap())];
        if let Some(weights) = weights {
            views.push(("weights", TensorView::new(Dtype::F32, vec![weights.len()], &weight_bytes).unwrap()));
        }
        safetensors::serialize(views, &None).unwrap()
    }

    /// Dequantises row `t` of an int8 file: int8 row × weight.
    fn dequantised(file: &[u8], token: usize) -> Vec<f32> {
        let file = SafeTensors::deserialize(file).unwrap();
        let table = file.tensor("embeddings").unwrap();
        let weights = decode_weights(&file.tensor("weights").unwrap()).unwrap();
        let dims = table.shape()[1];
        table.data()[token * dims..(token + 1) * dims]
            .iter()
            .map(|&b| f32::from(b as i8) * weights[token])
            .collect()
    }

    #[test]
    fn rows_come_back_within_half_a_step() {
        let rows = [[0.5, -0.25, 0.125], [-3.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
        let out = quantize(&f32_model(&rows, None)).unwrap();
        assert_eq!(out.summary, TableSummary { rows: 3, dims: 3, dtype: "int8", token_limit: 3 });
        for (token, row) in rows.iter().enumerate() {
            let step = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (got, want) in dequantised(&out.bytes, token).iter().zip(row) {
                assert!((got - want).abs() <= step / 2.0 + 1e-7, "token {token}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn token_weights_are_folded_into_the_scales() {
        let rows = [[1.0, 2.0, -4.0], [8.0, 0.0, 1.0]];
        let out = quantize(&f32_model(&rows, Some(&[0.5, 3.0]))).unwrap();
        let second = dequantised(&out.bytes, 1);
        assert!((second[0] - 24.0).abs() < 1e-4 && (second[2] - 3.0).abs() < 0.1, "{second:?}");
    }

    #[test]
    fn converting_twice_changes_nothing() {
        let once = quantize(&f32_model(&[[0.3, -0.7, 0.1]], None)).unwrap();
        let twice = quantize(&once.bytes).unwrap();
        assert_eq!(once.bytes, twice.bytes);
    }

    #[test]
    fn malformed_files_are_refused_with_a_reason() {
        assert!(quantize(b"not safetensors").unwrap_err().contains("not a safetensors file"));
        let no_table = safetensors::serialize(
            [("other", TensorView::new(Dtype::F32, vec![1], &[0, 0, 0, 0]).unwrap())],
            &None,
        )
        .unwrap();
        assert!(inspect(&no_table).unwrap_err().contains("no embedding table"));
        let nan = f32_model(&[[f32::NAN, 0.0, 0.0]], None);
        assert!(quantize(&nan).unwrap_err().contains("not finite"));
    }

    #[test]
    fn tokenizers_with_ids_past_the_table_are_refused() {
        let summary = TableSummary { rows: 3, dims: 3, dtype: "f32", token_limit: 3 };
        let ok = br#"{"model": {"vocab": {"a": 0, "b": 2}}, "added_tokens": [{"id": 1}]}"#;
        assert_eq!(check_tokenizer(ok, &summary), Ok(()));
        let past = br#"{"model": {"vocab": {"a": 0, "b": 3}}}"#;
        assert!(check_tokenizer(past, &summary).unwrap_err().contains("token id 3 has no row"));
        let unigram = br#"{"model": {"vocab": [["a", -1.0], ["b", -2.0], ["c", -3.0], ["d", -4.0]]}}"#;
        assert!(check_tokenizer(unigram, &summary).is_err());
        assert!(check_tokenizer(b"[]", &summary).unwrap_err().contains("not a tokenizer"));
    }
}
