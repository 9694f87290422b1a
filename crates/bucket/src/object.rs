//! What a bucket stores about an object: identity, size, etag, checksums and metadata.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::body::Body;
use crate::range::ServedRange;
use crate::{Error, Result};

/// An object's metadata, as `head`, `put` and `list` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    /// Unique per upload: every put or completed multipart upload gets a new one.
    pub version: String,
    /// Bytes in the object.
    pub size: u64,
    /// Hex MD5 of the content for a single-part object; `<hex>-<parts>` for a multipart one.
    pub etag: String,
    /// When the upload that created this version completed.
    pub uploaded: SystemTime,
    pub checksums: Checksums,
    pub http_metadata: HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
}

impl Object {
    /// The etag as HTTP sends it: quoted.
    pub fn http_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }
}

/// An object with (part of) its content: the answer of a `get` whose condition held.
#[derive(Debug)]
pub struct ObjectBody {
    pub object: Object,
    /// The bytes `body` holds, after the requested range was clamped to the object.
    pub range: ServedRange,
    pub body: Body,
}

/// What `get` found for a key that exists.
#[derive(Debug)]
pub enum GetOutcome {
    /// The condition held (or there was none): metadata plus the requested bytes.
    Found(ObjectBody),
    /// `only_if` did not hold: metadata only, no body.
    ConditionFailed(Object),
}

impl GetOutcome {
    /// The object's metadata, whichever way the condition went.
    pub fn object(&self) -> &Object {
        match self {
            GetOutcome::Found(found) => &found.object,
            GetOutcome::ConditionFailed(object) => object,
        }
    }

    /// The object with its body, or `None` if the condition failed.
    pub fn into_body(self) -> Option<ObjectBody> {
        match self {
            GetOutcome::Found(found) => Some(found),
            GetOutcome::ConditionFailed(_) => None,
        }
    }
}

/// The standard HTTP headers stored with an object and replayed when it is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpMetadata {
    pub content_type: Option<String>,
    pub content_language: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header. Kept to the millisecond by the embedded driver; HTTP itself only
    /// carries seconds.
    pub cache_expiry: Option<SystemTime>,
}

/// A hash algorithm an upload's integrity can be checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumAlgorithm {
    /// Every algorithm, weakest first.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Md5,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha384,
        ChecksumAlgorithm::Sha512,
    ];

    /// Bytes in a digest of this algorithm.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Md5 => 16,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
            ChecksumAlgorithm::Sha384 => 48,
            ChecksumAlgorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChecksumAlgorithm::Md5 => "MD5",
            ChecksumAlgorithm::Sha1 => "SHA-1",
            ChecksumAlgorithm::Sha256 => "SHA-256",
            ChecksumAlgorithm::Sha384 => "SHA-384",
            ChecksumAlgorithm::Sha512 => "SHA-512",
        })
    }
}

/// The digest a caller expects an upload to have. A put takes at most one (`Option<Checksum>`),
/// so "two checksums at once" cannot be expressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    algorithm: ChecksumAlgorithm,
    digest: Vec<u8>,
}

impl Checksum {
    /// A checksum from raw digest bytes; a digest of the wrong length is `InvalidInput`.
    pub fn new(algorithm: ChecksumAlgorithm, digest: impl Into<Vec<u8>>) -> Result<Checksum> {
        let digest = digest.into();
        if digest.len() != algorithm.digest_len() {
            return Err(Error::invalid(
                "checksum",
                format!(
                    "a {algorithm} digest has {} bytes, this one has {}",
                    algorithm.digest_len(),
                    digest.len()
                ),
            ));
        }
        Ok(Checksum { algorithm, digest })
    }

    /// A checksum from a hex digest (either case).
    pub fn from_hex(algorithm: ChecksumAlgorithm, digest: &str) -> Result<Checksum> {
        let bytes =
            hex::decode(digest).map_err(|e| Error::invalid("checksum", format!("not a hex digest: {e}")))?;
        Checksum::new(algorithm, bytes)
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    pub fn digest(&self) -> &[u8] {
        &self.digest
    }
}

/// The digests known for an object: MD5 for every single-part upload, plus the one the
/// uploader asked to be checked. Multipart objects have none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checksums {
    pub md5: Option<Vec<u8>>,
    pub sha1: Option<Vec<u8>>,
    pub sha256: Option<Vec<u8>>,
    pub sha384: Option<Vec<u8>>,
    pub sha512: Option<Vec<u8>>,
}

impl Checksums {
    /// The digest of `algorithm`, if known.
    pub fn get(&self, algorithm: ChecksumAlgorithm) -> Option<&[u8]> {
        self.slot(algorithm).as_deref()
    }

    /// Records the digest of `algorithm`.
    pub fn set(&mut self, algorithm: ChecksumAlgorithm, digest: Vec<u8>) {
        *self.slot_mut(algorithm) = Some(digest);
    }

    fn slot(&self, algorithm: ChecksumAlgorithm) -> &Option<Vec<u8>> {
        match algorithm {
            ChecksumAlgorithm::Md5 => &self.md5,
            ChecksumAlgorithm::Sha1 => &self.sha1,
            ChecksumAlgorithm::Sha256 => &self.sha256,
            ChecksumAlgorithm::Sha384 => &self.sha384,
            ChecksumAlgorithm::Sha512 => &self.sha512,
        }
    }

    fn slot_mut(&mut self, algorithm: ChecksumAlgorithm) -> &mut Option<Vec<u8>> {
        match algorithm {
            ChecksumAlgorithm::Md5 => &mut self.md5,
            ChecksumAlgorithm::Sha1 => &mut self.sha1,
            ChecksumAlgorithm::Sha256 => &mut self.sha256,
            ChecksumAlgorithm::Sha384 => &mut self.sha384,
            ChecksumAlgorithm::Sha512 => &mut self.sha512,
        }
    }
}

/// A multipart upload in progress: what `create_multipart_upload` returns and every later call
/// on the upload takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub key: String,
    pub upload_id: String,
}

/// A stored part, as `upload_part` returns it and `complete_multipart_upload` takes it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub part_number: u32,
    pub etag: String,
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn epoch_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The time `ms` milliseconds after (or before, if negative) the Unix epoch.
pub(crate) fn from_epoch_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_must_have_its_algorithms_length() {
        for algorithm in ChecksumAlgorithm::ALL {
            assert!(Checksum::new(algorithm, vec![0; algorithm.digest_len()]).is_ok());
            let short = Checksum::new(algorithm, vec![0; algorithm.digest_len() - 1]);
            assert!(matches!(short, Err(Error::InvalidInput { field: "checksum", .. })), "{algorithm}");
        }
        assert!(Checksum::from_hex(ChecksumAlgorithm::Md5, "not hex").is_err());
    }

    #[test]
    fn http_etag_is_the_etag_in_quotes() {
        let object = Object {
            key: "k".into(),
            version: "v".into(),
            size: 0,
            etag: "abc".into(),
            uploaded: UNIX_EPOCH,
            checksums: Checksums::default(),
            http_metadata: HttpMetadata::default(),
            custom_metadata: BTreeMap::new(),
        };
        assert_eq!(object.http_etag(), "\"abc\"");
    }

    #[test]
    fn epoch_ms_round_trips_before_and_after_the_epoch() {
        for ms in [-86_400_000, -1, 0, 1, 1_700_000_000_123] {
            assert_eq!(epoch_ms(from_epoch_ms(ms)), ms);
        }
    }
}
