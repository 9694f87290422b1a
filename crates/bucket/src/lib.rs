//! Object buckets for ledge: the R2-style `Bucket` binding, its embedded driver, its
//! conformance suite.
//!
//! Layout:
//! * this file — the object-safe [`Bucket`] trait that handlers hold as `Arc<dyn Bucket>`;
//! * [`body`] — object bodies as byte streams ([`Body`]), in and out;
//! * `object`, `options` — what an object is ([`Object`], [`HttpMetadata`], [`Checksums`]) and
//!   the options and results of each operation;
//! * [`conditional`], `range`, [`http_date`] — `only_if` conditions and byte ranges, and their
//!   parsing from HTTP request headers so the HTTP layer can pass those through untouched;
//! * `limits` — the contract's limits as configuration ([`Limits`]) and the checks every driver
//!   applies; `hashing` — digests computed while a body streams;
//! * [`local`] — the embedded driver [`LocalBucket`]: content files named by version id, a
//!   SQLite index from key to current version;
//! * `conformance` (feature `conformance`) — the suite every driver passes, and the
//!   `bucket_conformance!` macro that turns it into one test per case.
//!
//! Invariant: an upload is visible whole or not at all. Its bytes are durable before a single
//! commit point makes them the key's current version, so readers and listings never see part
//! of one, and a crash leaves at most unreferenced bytes that the driver removes. Keys are
//! opaque names: no driver turns one into a path. Bodies stream; no operation needs an object
//! in memory.

pub mod body;
pub mod conditional;
mod error;
mod hashing;
pub mod http_date;
mod limits;
pub mod local;
mod object;
mod options;
mod range;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;

pub use body::{Body, ByteStream};
pub use conditional::{Conditional, EntityTag, EtagCondition};
pub use error::{Error, Result};
pub use limits::Limits;
pub use local::{LocalBucket, LocalOptions};
pub use object::{
    Checksum, ChecksumAlgorithm, Checksums, GetOutcome, HttpMetadata, MultipartUpload, Object, ObjectBody,
    UploadedPart,
};
pub use options::{GetOptions, Include, ListOptions, Listing, MultipartOptions, PutOptions};
pub use range::{Range, ServedRange};

/// An object bucket (bindings.md §3). Strongly consistent: a completed put, delete or
/// multipart completion is visible to the next call; among racing writers of a key, the last
/// to finish wins.
#[async_trait]
pub trait Bucket: Send + Sync {
    /// The limits this bucket enforces.
    fn limits(&self) -> &Limits;

    /// The object's metadata, or `None` if the key is absent.
    async fn head(&self, key: &str) -> Result<Option<Object>>;

    /// The object with (the requested range of) its body; the metadata alone if
    /// `options.only_if` does not hold; `None` if the key is absent.
    async fn get(&self, key: &str, options: GetOptions) -> Result<Option<GetOutcome>>;

    /// Stores `body` as the key's new version, streaming it. `None` (and nothing stored) if
    /// `options.only_if` does not hold; a checksum mismatch or a body over the size limit is an
    /// error and stores nothing.
    async fn put(&self, key: &str, body: Body, options: PutOptions) -> Result<Option<Object>>;

    /// Deletes these keys (at most `limits().max_delete_keys`); absent keys are fine.
    async fn delete(&self, keys: &[String]) -> Result<()>;

    /// One page of the bucket's objects in lexicographic order of their keys.
    async fn list(&self, options: ListOptions) -> Result<Listing>;

    /// Starts a multipart upload of `key`; the options are the final object's metadata.
    async fn create_multipart_upload(&self, key: &str, options: MultipartOptions) -> Result<MultipartUpload>;

    /// The upload `upload_id` of `key`, to continue it (e.g. after a restart);
    /// `NoSuchUpload` if it is not in progress.
    async fn resume_multipart_upload(&self, key: &str, upload_id: &str) -> Result<MultipartUpload>;

    /// Stores part `part_number` (1 to `limits().max_parts`) of the upload, replacing an earlier
    /// part of that number.
    async fn upload_part(
        &self,
        upload: &MultipartUpload,
        part_number: u32,
        body: Body,
    ) -> Result<UploadedPart>;

    /// Joins the listed parts, in order, into the key's new version and ends the upload.
    async fn complete_multipart_upload(
        &self,
        upload: &MultipartUpload,
        parts: &[UploadedPart],
    ) -> Result<Object>;

    /// Ends the upload and drops its parts; any later call on it is `NoSuchUpload`.
    async fn abort_multipart_upload(&self, upload: &MultipartUpload) -> Result<()>;
}
