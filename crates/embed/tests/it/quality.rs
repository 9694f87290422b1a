//! The int8 conversion keeps the model: on a few hundred real snippets of this repository's code and docs,
//! every int8 vector is within cosine 0.99 of the f32 model's vector for the same text.

use ledge_embed::Embedder;

use crate::support::{cosine, embedder, f32_embedder, source_snippets};

#[test]
fn int8_vectors_stay_within_cosine_0_99_of_the_f32_model_on_real_code() {
    let snippets = source_snippets(400);
    assert!(snippets.len() >= 300, "only {} snippets found in the workspace", snippets.len());
    let (int8, f32) = (embedder(), f32_embedder());
    assert_eq!(f32.model_id(), "potion-base-8M@f32");

    let mut cosines = Vec::with_capacity(snippets.len());
    for batch in snippets.chunks(int8.max_batch()) {
        let quantized = int8.embed_now(batch).unwrap();
        let full = f32.embed_now(batch).unwrap();
        cosines.extend(quantized.iter().zip(&full).map(|(a, b)| cosine(a, b)));
    }
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    eprintln!("int8 vs f32 over {} snippets: min cosine {min:.5}, mean {mean:.5}", cosines.len());
    assert!(min >= 0.99, "min cosine {min} over {} snippets", cosines.len());
}
