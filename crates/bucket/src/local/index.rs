//! The local bucket's SQLite index: key → current version and metadata, multipart uploads and
//! their parts. Flipping a key's row is the commit point of every upload.
//!
//! Keys are stored as BLOBs and always bound as bytes, so ordering and prefix ranges are plain
//! byte comparisons (UTF-8 byte order is code-point order).

use std::collections::{BTreeMap, HashSet};

use ledge_sqlite::rusqlite::{self, Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::object::{epoch_ms, from_epoch_ms};
use crate::{Checksums, Error, HttpMetadata, Include, Listing, Object, Result};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    key BLOB PRIMARY KEY,
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    checksums TEXT NOT NULL,
    http_metadata TEXT NOT NULL,
    custom_metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_version ON objects (version);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    key BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    http_metadata TEXT NOT NULL,
    custom_metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (created_ms);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 BLOB NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
";

/// Greater than every key: UTF-8 never contains the byte 0xFF.
const AFTER_EVERY_KEY: &[u8] = &[0xFF];

const OBJECT_COLUMNS: &str =
    "key, version, size, etag, uploaded_ms, checksums, http_metadata, custom_metadata";

/// An `objects` row as stored.
pub(crate) struct ObjectRow {
    key: Vec<u8>,
    pub version: String,
    size: i64,
    pub etag: String,
    pub uploaded_ms: i64,
    checksums: String,
    http_metadata: String,
    custom_metadata: String,
}

/// A new current version of a key, to be written at the commit point.
#[derive(Clone)]
pub(crate) struct NewObject {
    pub key: String,
    pub version: String,
    pub size: u64,
    pub etag: String,
    pub checksums: Checksums,
    pub http_metadata: HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
}

/// The current version of a key, as far as a commit needs it.
pub(crate) struct Current {
    pub version: String,
    pub etag: String,
    pub uploaded_ms: i64,
}

/// A multipart upload in progress.
pub(crate) struct UploadRow {
    pub http_metadata: HttpMetadata,
    pub custom_metadata: BTreeMap<String, String>,
}

/// A stored part.
#[derive(Debug, Clone)]
pub(crate) struct PartRow {
    pub part_number: u32,
    pub file: String,
    pub size: u64,
    pub md5: Vec<u8>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredHttpMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_expiry_ms: Option<i64>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredChecksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha384: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha512: Option<String>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("bucket index holds a malformed {what}: {e}").into())
}

fn encode_http(m: &HttpMetadata) -> Result<String> {
    let stored = StoredHttpMetadata {
        content_type: m.content_type.clone(),
        content_language: m.content_language.clone(),
        content_disposition: m.content_disposition.clone(),
        content_encoding: m.content_encoding.clone(),
        cache_control: m.cache_control.clone(),
        cache_expiry_ms: m.cache_expiry.map(epoch_ms),
    };
    serde_json::to_string(&stored).map_err(|e| Error::Backend(Box::new(e)))
}

fn decode_http(json: &str) -> Result<HttpMetadata> {
    let s: StoredHttpMetadata = serde_json::from_str(json).map_err(|e| corrupt("http metadata", e))?;
    Ok(HttpMetadata {
        content_type: s.content_type,
        content_language: s.content_language,
        content_disposition: s.content_disposition,
        content_encoding: s.content_encoding,
        cache_control: s.cache_control,
        cache_expiry: s.cache_expiry_ms.map(from_epoch_ms),
    })
}

fn encode_custom(m: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(m).map_err(|e| Error::Backend(Box::new(e)))
}

fn decode_custom(json: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json).map_err(|e| corrupt("custom metadata", e))
}

fn encode_checksums(c: &Checksums) -> Result<String> {
    let hex = |d: &Option<Vec<u8>>| d.as_deref().map(hex::encode);
    let stored = StoredChecksums {
        md5: hex(&c.md5),
        sha1: hex(&c.sha1),
        sha256: hex(&c.sha256),
        sha384: hex(&c.sha384),
        sha512: hex(&c.sha512),
    };
    serde_json::to_string(&stored).map_err(|e| Error::Backend(Box::new(e)))
}

fn decode_checksums(json: &str) -> Result<Checksums> {
    let s: StoredChecksums = serde_json::from_str(json).map_err(|e| corrupt("checksum", e))?;
    let bytes = |h: Option<String>| -> Result<Option<Vec<u8>>> {
        h.map(|h| hex::decode(h).map_err(|e| corrupt("checksum", e))).transpose()
    };
    Ok(Checksums {
        md5: bytes(s.md5)?,
        sha1: bytes(s.sha1)?,
        sha256: bytes(s.sha256)?,
        sha384: bytes(s.sha384)?,
        sha512: bytes(s.sha512)?,
    })
}

fn key_from_bytes(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| corrupt("key", e))
}

impl ObjectRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<ObjectRow> {
        Ok(ObjectRow {
            key: row.get(0)?,
            version: row.get(1)?,
            size: row.get(2)?,
            etag: row.get(3)?,
            uploaded_ms: row.get(4)?,
            checksums: row.get(5)?,
            http_metadata: row.get(6)?,
            custom_metadata: row.get(7)?,
        })
    }

    /// The object, with the metadata `include` asks for (the rest left empty).
    pub(crate) fn into_object(self, include: Include) -> Result<Object> {
        Ok(Object {
            key: key_from_bytes(self.key)?,
            version: self.version,
            size: u64::try_from(self.size).map_err(|e| corrupt("size", e))?,
            etag: self.etag,
            uploaded: from_epoch_ms(self.uploaded_ms),
            checksums: decode_checksums(&self.checksums)?,
            http_metadata: if include.http_metadata {
                decode_http(&self.http_metadata)?
            } else {
                HttpMetadata::default()
            },
            custom_metadata: if include.custom_metadata {
                decode_custom(&self.custom_metadata)?
            } else {
                BTreeMap::new()
            },
        })
    }
}

impl NewObject {
    /// The object as it reads once committed at `uploaded_ms`.
    pub(crate) fn into_object(self, uploaded_ms: i64) -> Object {
        Object {
            key: self.key,
            version: self.version,
            size: self.size,
            etag: self.etag,
            uploaded: from_epoch_ms(uploaded_ms),
            checksums: self.checksums,
            http_metadata: self.http_metadata,
            custom_metadata: self.custom_metadata,
        }
    }
}

/// The row of `key`, if any.
pub(crate) fn find_object(conn: &Connection, key: &str) -> Result<Option<ObjectRow>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE key = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([key.as_bytes()], ObjectRow::from_row).optional()?)
}

/// What a commit needs to know about `key`'s current version.
pub(crate) fn find_current(conn: &Connection, key: &str) -> Result<Option<Current>> {
    let mut stmt = conn.prepare_cached("SELECT version, etag, uploaded_ms FROM objects WHERE key = ?1")?;
    let current = stmt
        .query_row([key.as_bytes()], |r| {
            Ok(Current { version: r.get(0)?, etag: r.get(1)?, uploaded_ms: r.get(2)? })
        })
        .optional()?;
    Ok(current)
}

/// Makes `object` the current version of its key (the commit point of an upload).
pub(crate) fn upsert_object(conn: &Connection, object: &NewObject, uploaded_ms: i64) -> Result<()> {
    let sql = format!(
        "INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (key) DO UPDATE SET version = excluded.version, size = excluded.size,
             etag = excluded.etag, uploaded_ms = excluded.uploaded_ms, checksums = excluded.checksums,
             http_metadata = excluded.http_metadata, custom_metadata = excluded.custom_metadata"
    );
    let size = i64::try_from(object.size).map_err(|e| Error::invalid("body", e.to_string()))?;
    conn.prepare_cached(&sql)?.execute(params![
        object.key.as_bytes(),
        object.version,
        size,
        object.etag,
        uploaded_ms,
        encode_checksums(&object.checksums)?,
        encode_http(&object.http_metadata)?,
        encode_custom(&object.custom_metadata)?,
    ])?;
    Ok(())
}

/// Deletes these keys; returns the versions that were current, whose files are now garbage.
pub(crate) fn delete_objects(conn: &Connection, keys: &[String]) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("DELETE FROM objects WHERE key = ?1 RETURNING version")?;
    let mut versions = Vec::new();
    for key in keys {
        if let Some(version) = stmt.query_row([key.as_bytes()], |r| r.get(0)).optional()? {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// One page of a listing, resolved to byte bounds.
pub(crate) struct ListQuery {
    pub prefix: Vec<u8>,
    /// First key (inclusive) the page may start at.
    pub lower: Vec<u8>,
    pub delimiter: Option<String>,
    pub limit: usize,
    pub include: Include,
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest byte string greater than `key`.
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one page: objects and delimited prefixes (each counting towards the limit) in key
/// order, and, if more follow, the cursor (the hex of the next page's lower bound).
pub(crate) fn list(conn: &Connection, query: &ListQuery) -> Result<Listing> {
    let upper = match prefix_successor(&query.prefix) {
        Some(upper) if !query.prefix.is_empty() => upper,
        _ => AFTER_EVERY_KEY.to_vec(),
    };
    let sql =
        format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3");
    // One read transaction: every batch of the page sees the same snapshot.
    let snapshot = conn.unchecked_transaction()?;
    let mut stmt = snapshot.prepare_cached(&sql)?;
    let mut listing = Listing::default();
    let mut lower = query.lower.clone();
    let mut entries = 0usize;
    'batches: loop {
        let wanted = query.limit - entries + 1; // one more than fits tells whether more follow
        let rows = stmt
            .query_map(params![lower, upper, wanted as i64], ObjectRow::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let fetched = rows.len();
        for row in rows {
            if entries == query.limit {
                listing.truncated = true;
                break 'batches;
            }
            if let Some(delimiter) = query.delimiter.as_deref()
                && let Some(at) = find_bytes(&row.key[query.prefix.len()..], delimiter.as_bytes())
            {
                let group = row.key[..query.prefix.len() + at + delimiter.len()].to_vec();
                listing.delimited_prefixes.push(key_from_bytes(group.clone())?);
                entries += 1;
                // Skip every key of the group: continue from just past it.
                match prefix_successor(&group) {
                    Some(next) => lower = next,
                    None => break 'batches,
                }
                continue 'batches;
            }
            lower = key_successor(&row.key);
            listing.objects.push(row.into_object(query.include)?);
            entries += 1;
        }
        if fetched < wanted {
            break;
        }
    }
    drop(stmt);
    snapshot.finish()?;
    if listing.truncated {
        listing.cursor = Some(hex::encode(&lower));
    }
    Ok(listing)
}

/// Records a new multipart upload.
pub(crate) fn insert_upload(
    conn: &Connection,
    upload_id: &str,
    key: &str,
    created_ms: i64,
    http_metadata: &HttpMetadata,
    custom_metadata: &BTreeMap<String, String>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO uploads (upload_id, key, created_ms, http_metadata, custom_metadata)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        upload_id,
        key.as_bytes(),
        created_ms,
        encode_http(http_metadata)?,
        encode_custom(custom_metadata)?
    ])?;
    Ok(())
}

/// The upload `upload_id` of `key`, if it is in progress.
pub(crate) fn find_upload(conn: &Connection, upload_id: &str, key: &str) -> Result<Option<UploadRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT http_metadata, custom_metadata FROM uploads WHERE upload_id = ?1 AND key = ?2",
    )?;
    let row = stmt
        .query_row(params![upload_id, key.as_bytes()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .optional()?;
    row.map(|(http, custom)| {
        Ok(UploadRow { http_metadata: decode_http(&http)?, custom_metadata: decode_custom(&custom)? })
    })
    .transpose()
}

/// The parts stored for an upload, by part number.
pub(crate) fn parts_of(conn: &Connection, upload_id: &str) -> Result<Vec<PartRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT part_number, file, size, md5 FROM parts WHERE upload_id = ?1 ORDER BY part_number",
    )?;
    let rows = stmt
        .query_map([upload_id], |r| {
            Ok(PartRow {
                part_number: r.get(0)?,
                file: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                md5: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Stores a part, replacing any earlier part of that number; returns the replaced part's file.
pub(crate) fn upsert_part(conn: &Connection, upload_id: &str, part: &PartRow) -> Result<Option<String>> {
    let replaced: Option<String> = conn
        .prepare_cached("SELECT file FROM parts WHERE upload_id = ?1 AND part_number = ?2")?
        .query_row(params![upload_id, part.part_number], |r| r.get(0))
        .optional()?;
    conn.prepare_cached(
        "INSERT INTO parts (upload_id, part_number, file, size, md5) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (upload_id, part_number) DO UPDATE SET file = excluded.file, size = excluded.size,
             md5 = excluded.md5",
    )?
    .execute(params![upload_id, part.part_number, part.file, part.size as i64, part.md5])?;
    Ok(replaced)
}

/// Ends an upload: deletes it and its parts. `None` if it was not in progress; otherwise the
/// files of its parts, now garbage.
pub(crate) fn delete_upload(conn: &Connection, upload_id: &str, key: &str) -> Result<Option<Vec<String>>> {
    let in_progress = conn
        .prepare_cached("SELECT 1 FROM uploads WHERE upload_id = ?1 AND key = ?2")?
        .exists(params![upload_id, key.as_bytes()])?;
    if !in_progress {
        return Ok(None);
    }
    // Parts first: deleting the upload would cascade to them before their files were read.
    let files = conn
        .prepare_cached("DELETE FROM parts WHERE upload_id = ?1 RETURNING file")?
        .query_map([upload_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    conn.prepare_cached("DELETE FROM uploads WHERE upload_id = ?1")?.execute([upload_id])?;
    Ok(Some(files))
}

/// Ends every upload created at or before `cutoff_ms`; returns how many.
pub(crate) fn expire_uploads(conn: &Connection, cutoff_ms: i64) -> Result<usize> {
    conn.execute(
        "DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads WHERE created_ms <= ?1)",
        [cutoff_ms],
    )?;
    Ok(conn.execute("DELETE FROM uploads WHERE created_ms <= ?1", [cutoff_ms])?)
}

/// The versions whose file names start with `shard` (two hex digits) that the index refers to.
pub(crate) fn versions_in_shard(conn: &Connection, shard: &str) -> Result<HashSet<String>> {
    // Version ids are hex, and '~' sorts after every hex digit.
    let mut stmt = conn.prepare_cached("SELECT version FROM objects WHERE version >= ?1 AND version < ?2")?;
    let versions = stmt
        .query_map(params![shard, format!("{shard}~")], |r| r.get(0))?
        .collect::<rusqlite::Result<HashSet<String>>>()?;
    Ok(versions)
}

/// Every part file the index refers to.
pub(crate) fn part_files(conn: &Connection) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT file FROM parts")?;
    let files = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<HashSet<String>>>()?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_bound_prefixes_and_keys() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(key_successor(b"ab"), b"ab\0".to_vec());
    }

    #[test]
    fn find_bytes_finds_multi_byte_delimiters() {
        assert_eq!(find_bytes(b"a//b", b"//"), Some(1));
        assert_eq!(find_bytes(b"ab", b""), None);
        assert_eq!(find_bytes(b"a", b"ab"), None);
    }
}
