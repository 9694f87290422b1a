//! The `embedding-generation` consumer: [`EmbeddingGenerator`] turns the chunks a message names into
//! vectors in the vector index.
//!
//! Per message: read the chunk artifact (a message whose artifact is gone belongs to a file version that
//! was replaced or removed since: acknowledged, counted), look each text up in the
//! [`EmbeddingCache`](crate::EmbeddingCache), embed the misses in one call (split only at the model's
//! `max_batch`), cache them, and upsert one vector per chunk — id = chunk id, namespace = the
//! organization, metadata `{org, repo, commit, path, language, symbol, start_line, end_line}`.
//!
//! Then the artifact is read once more: if it was deleted while the vectors were being made, the
//! file-indexing consumer may already have deleted this version's vectors, so the vectors just written
//! are deleted again here (and if it was stored again with other chunk ids, those it no longer names).
//! Either way no vector of a replaced version survives. The residual case: an artifact stored again
//! twice more between this check and the deletes could see a vector of its own deleted here; it takes
//! three chunkings of one file with different results within milliseconds.
//!
//! Without an installed model the whole batch is acknowledged and counted
//! ([`PipelineStats::embedding_messages_without_model`]): the keyword index works alone, and the job's
//! notes say so. Vectors are never made up.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::try_join_all;
use ledge_embed::Embedder;
use ledge_queue::{BatchHandler, HandlerError, MessageBatch, RetryOptions};
use ledge_vector::Vector;
use serde_json::json;

use crate::file_indexing::delete_vectors;
use crate::messages::decode;
use crate::pipeline::PipelineStats;
use crate::{EmbeddingTask, Pipeline, PipelineError, RepoRef};

/// Handles `embedding-generation` messages.
pub struct EmbeddingGenerator {
    pipeline: Arc<Pipeline>,
}

impl std::fmt::Debug for EmbeddingGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddingGenerator")
    }
}

#[async_trait]
impl BatchHandler for EmbeddingGenerator {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        let Some(embedder) = self.pipeline.embedder().await? else {
            PipelineStats::add(
                &self.pipeline.stats.embedding_messages_without_model,
                batch.messages.len() as u64,
            );
            batch.ack_all();
            return Ok(());
        };
        for message in &batch.messages {
            let outcome = match decode::<EmbeddingTask>(message) {
                Ok(task) => self.run(embedder.as_ref(), task).await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                tracing::warn!(message = %message.id, attempt = message.attempts, %error, "embedding-generation failed");
                message.retry_because(RetryOptions::default(), error)?;
            }
        }
        Ok(())
    }
}

impl EmbeddingGenerator {
    pub fn new(pipeline: Arc<Pipeline>) -> EmbeddingGenerator {
        EmbeddingGenerator { pipeline }
    }

    async fn run(&self, embedder: &dyn Embedder, task: EmbeddingTask) -> Result<(), PipelineError> {
        let repo = RepoRef::new(&task.org, &task.repo)?;
        let artifacts = self.pipeline.artifacts().await?;
        let Some((artifact, upload)) = artifacts.get_versioned(&task.artifact).await? else {
            PipelineStats::add(&self.pipeline.stats.embedding_messages_stale, 1);
            return Ok(());
        };
        let by_id: HashMap<&str, usize> =
            artifact.chunks.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
        let chunks: Vec<_> = task
            .chunks
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .map(|&i| &artifact.chunks[i])
            .collect();
        if chunks.is_empty() {
            return Ok(());
        }
        let (model, dimensions) = (embedder.model_id(), embedder.dimensions());
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        let cache = self.pipeline.embedding_cache().await?;
        let mut values = match &cache {
            Some(cache) => cache.get_many(repo.org(), model, dimensions, &texts).await?,
            None => vec![None; texts.len()],
        };
        let misses: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_none()).collect();
        PipelineStats::add(&self.pipeline.stats.chunks_cached, (values.len() - misses.len()) as u64);
        // One call for all misses, split only where the model says a call must end.
        for group in misses.chunks(embedder.max_batch().max(1)) {
            let inputs: Vec<String> = group.iter().map(|&i| texts[i].to_owned()).collect();
            let embedded = embedder.embed(&inputs).await?;
            if embedded.len() != inputs.len() || embedded.iter().any(|v| v.len() != dimensions) {
                return Err(PipelineError::Task(format!(
                    "model {model} returned {} vectors for {} texts, or vectors not of {dimensions} dimensions",
                    embedded.len(),
                    inputs.len()
                )));
            }
            if let Some(cache) = &cache {
                let puts = group
                    .iter()
                    .zip(&embedded)
                    .map(|(&i, vector)| cache.put(repo.org(), model, texts[i], vector));
                try_join_all(puts).await?;
            }
            for (&i, vector) in group.iter().zip(embedded) {
                values[i] = Some(vector);
            }
            PipelineStats::add(&self.pipeline.stats.chunks_embedded, group.len() as u64);
        }
        let mut vectors = Vec::with_capacity(chunks.len());
        for (chunk, values) in chunks.iter().zip(values) {
            let Some(values) = values else { continue };
            let metadata = json!({
                "org": artifact.org,
                "repo": artifact.repo,
                "commit": artifact.commit,
                "path": artifact.path,
                "language": artifact.language,
                "symbol": chunk.symbol,
                "start_line": chunk.start_line,
                "end_line": chunk.end_line,
            });
            vectors
                .push(Vector::new(chunk.id.clone(), values).in_namespace(repo.org()).with_metadata(metadata));
        }
        let ids: Vec<String> = vectors.iter().map(|v| v.id.clone()).collect();
        let index = self.pipeline.vectors().await?;
        while !vectors.is_empty() {
            let rest = vectors.split_off(vectors.len().min(1000));
            index.upsert(std::mem::replace(&mut vectors, rest)).await?;
        }
        // The artifact may have been deleted (the file changed or went away) or stored again (the same
        // content chunked again) while the vectors were being made: vectors it no longer names must not
        // outlive it.
        let orphans: Vec<String> = match artifacts.get_versioned(&task.artifact).await? {
            Some((_, now)) if now == upload => Vec::new(),
            Some((current, _)) => {
                let named: HashSet<&str> = current.chunks.iter().map(|c| c.id.as_str()).collect();
                ids.into_iter().filter(|id| !named.contains(id.as_str())).collect()
            }
            None => ids,
        };
        if !orphans.is_empty() {
            delete_vectors(index.as_ref(), &orphans).await?;
            PipelineStats::add(&self.pipeline.stats.embedding_messages_stale, 1);
        }
        Ok(())
    }
}
