//! The options and results of bucket operations.

use std::collections::BTreeMap;

use crate::conditional::Conditional;
use crate::object::{Checksum, HttpMetadata, Object};
use crate::range::Range;

/// Options of [`Bucket::get`](crate::Bucket::get).
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Serve the body only if this holds; otherwise answer the metadata alone.
    pub only_if: Option<Conditional>,
    /// Serve only these bytes.
    pub range: Option<Range>,
}

/// Options of [`Bucket::put`](crate::Bucket::put).
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Store only if this holds when the upload completes; otherwise store nothing.
    pub only_if: Option<Conditional>,
    pub http_metadata: HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
    /// Reject the upload unless its digest is this one.
    pub checksum: Option<Checksum>,
}

/// Options of [`Bucket::create_multipart_upload`](crate::Bucket::create_multipart_upload): the
/// metadata the completed object will have.
#[derive(Debug, Clone, Default)]
pub struct MultipartOptions {
    pub http_metadata: HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
}

/// Options of [`Bucket::list`](crate::Bucket::list).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Most entries (objects plus delimited prefixes) in the page: 1 to the bucket's
    /// `max_list_limit` (1000); `None` means that maximum.
    pub limit: Option<usize>,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
    /// Only keys strictly after this one.
    pub start_after: Option<String>,
    /// Roll keys that contain this after the prefix up into `delimited_prefixes`.
    pub delimiter: Option<String>,
    pub include: Include,
}

/// Which metadata a listing carries; without it, objects come with empty metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub http_metadata: bool,
    pub custom_metadata: bool,
}

impl Include {
    /// Both kinds of metadata.
    pub const ALL: Include = Include { http_metadata: true, custom_metadata: true };
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects in lexicographic (UTF-8 byte) order of their keys.
    pub objects: Vec<Object>,
    /// True if more entries follow; then `cursor` continues the listing.
    pub truncated: bool,
    /// Set exactly when `truncated`.
    pub cursor: Option<String>,
    /// With a delimiter: the distinct `prefix + … + delimiter` groups met on this page, in order.
    pub delimited_prefixes: Vec<String>,
}
