//! The [`VectorIndex`] trait: the binding every driver implements, object-safe so that code holds
//! an `Arc<dyn VectorIndex>` chosen by configuration.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{
    IndexDescription, MetadataIndex, MetadataIndexType, MutationCounts, QueryOptions, QueryResult, Vector,
};

/// A vector index modelled on Vectorize: fixed dimensions and metric, vectors with optional
/// namespace and metadata, exact-filtered nearest-neighbour queries.
///
/// Every driver validates a call in full (against its [`crate::VectorLimits`]) before touching
/// storage, so a rejected call changes nothing; and a completed mutation is visible to the next
/// query (ledge is stricter than Vectorize, which applies mutations asynchronously).
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Dimensions, metric and the number of vectors stored.
    async fn describe(&self) -> Result<IndexDescription>;

    /// Stores vectors whose id is not stored yet; the others (and repeats within the call) are
    /// skipped, unchanged. At most 1000 vectors; any invalid vector rejects the whole call.
    async fn insert(&self, vectors: Vec<Vector>) -> Result<MutationCounts>;

    /// Stores vectors, replacing a stored vector of the same id in full: values, namespace and
    /// metadata (absent metadata removes it). Within a call, the last vector of an id wins.
    async fn upsert(&self, vectors: Vec<Vector>) -> Result<MutationCounts>;

    /// The `top_k` closest vectors to `values`, after narrowing to `namespace` and then to
    /// `filter`: filtering happens before top-k is taken, exactly.
    async fn query(&self, values: &[f32], options: QueryOptions) -> Result<QueryResult>;

    /// [`VectorIndex::query`] with the stored vector `id` as the query;
    /// [`crate::Error::NotFound`] if there is none.
    async fn query_by_id(&self, id: &str, options: QueryOptions) -> Result<QueryResult>;

    /// The stored vectors of `ids` (values, namespace and all metadata), in the order asked, each
    /// once; absent ids are left out. At most 1000 ids.
    async fn get_by_ids(&self, ids: &[String]) -> Result<Vec<Vector>>;

    /// Deletes the vectors of `ids`: `applied` were deleted, `skipped` were absent.
    async fn delete_by_ids(&self, ids: &[String]) -> Result<MutationCounts>;

    /// Indexes `property` (dotted for nested fields) as `index_type`, so filters can name it.
    /// Idempotent for the same type; [`crate::Error::Conflict`] if it is indexed as another type;
    /// [`crate::Error::TooLarge`] beyond 10 indexes. Applies to vectors already stored too.
    async fn create_metadata_index(&self, property: &str, index_type: MetadataIndexType) -> Result<()>;

    /// The metadata indexes, in the order they were created.
    async fn list_metadata_indexes(&self) -> Result<Vec<MetadataIndex>>;

    /// Removes the metadata index on `property`; [`crate::Error::NotFound`] if there is none.
    async fn delete_metadata_index(&self, property: &str) -> Result<()>;

    /// Prepares whatever the first query would otherwise build (a no-op by default), so that a
    /// caller can warm the index up beside other work rather than on a query's path.
    async fn warm(&self) -> Result<()> {
        Ok(())
    }
}
