//! [`EmbeddingCache`]: vectors already computed, in the `embedding-cache` KV namespace, keyed by
//! organization, model and the SHA-256 of the text, kept for a TTL (1 hour by default).
//!
//! Key: `<org>/<model id>/<sha256 of the text, hex>`; value: the vector as little-endian `f32`s
//! (1 KiB for 256 dimensions). The organization is part of the key because every KV key carries one
//! (tenancy): one organization's cache can never answer, or reveal, another's texts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledge_kv::{GetOptions, KvNamespace, PutOptions};
use sha2::{Digest, Sha256};

use crate::PipelineError;

/// The shortest TTL a KV entry may have.
const MIN_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    kv: Arc<dyn KvNamespace>,
    ttl: Duration,
}

impl EmbeddingCache {
    /// A cache over `kv` whose entries live `ttl` (at least 60 s, the KV minimum).
    pub fn new(kv: Arc<dyn KvNamespace>, ttl: Duration) -> EmbeddingCache {
        EmbeddingCache { kv, ttl: ttl.max(MIN_TTL) }
    }

    /// The cache search uses for query vectors: the `embedding-cache` namespace with the default TTL
    /// where `[embedding] cache` uses one (by default not with the local model: computing a vector
    /// takes microseconds, less than a KV read).
    pub async fn for_queries(env: &ledge_env::Env) -> Result<Option<EmbeddingCache>, PipelineError> {
        if !env.config().embedding.uses_cache() {
            return Ok(None);
        }
        let kv = env.kv(ledge_env::KvBinding::EmbeddingCache).await?;
        Ok(Some(EmbeddingCache::new(kv, crate::PipelineOptions::default().embedding_cache_ttl)))
    }

    pub fn key(org: &str, model: &str, text: &str) -> String {
        format!("{org}/{model}/{}", hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The cached vector of each text (`None`: a miss, or an entry not of `dimensions`).
    pub async fn get_many(
        &self,
        org: &str,
        model: &str,
        dimensions: usize,
        texts: &[&str],
    ) -> Result<Vec<Option<Vec<f32>>>, PipelineError> {
        let keys: Vec<String> = texts.iter().map(|text| EmbeddingCache::key(org, model, text)).collect();
        let mut found = Vec::with_capacity(keys.len());
        // The KV contract reads at most 100 keys at once.
        for page in keys.chunks(100) {
            let refs: Vec<&str> = page.iter().map(String::as_str).collect();
            let mut values = self.kv.get_many(&refs, GetOptions::default()).await?;
            for key in page {
                found.push(values.remove(key).flatten().and_then(|bytes| decode(&bytes, dimensions)));
            }
        }
        Ok(found)
    }

    /// Caches the vector of `text`.
    pub async fn put(&self, org: &str, model: &str, text: &str, vector: &[f32]) -> Result<(), PipelineError> {
        let options = PutOptions { expiration_ttl: Some(self.ttl.as_secs()), ..PutOptions::default() };
        self.kv.put(&EmbeddingCache::key(org, model, text), encode(vector), options).await?;
        Ok(())
    }
}

fn encode(vector: &[f32]) -> Bytes {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>().into()
}

fn decode(bytes: &[u8], dimensions: usize) -> Option<Vec<f32>> {
    if bytes.len() != dimensions * 4 {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_a_wrong_length_is_a_miss() {
        let vector = vec![0.5, -1.25, f32::MIN_POSITIVE];
        let bytes = encode(&vector);
        assert_eq!(decode(&bytes, 3), Some(vector));
        assert_eq!(decode(&bytes, 4), None);
    }

    #[test]
    fn keys_carry_org_and_model_and_hash_the_text() {
        let key = EmbeddingCache::key("acme", "potion-base-8M@int8", "fn main() {}");
        assert!(key.starts_with("acme/potion-base-8M@int8/"), "{key}");
        assert_eq!(key.len(), "acme/potion-base-8M@int8/".len() + 64);
        assert_ne!(key, EmbeddingCache::key("other", "potion-base-8M@int8", "fn main() {}"));
    }
}
