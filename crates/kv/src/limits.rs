//! The contract's KV limits as configuration, and the validation every driver runs before it
//! touches storage.

use crate::error::{Error, Result};
use crate::namespace::{GetOptions, ListOptions, PutOptions};

/// KV limits. The defaults are the platform's (bindings.md §2); exceeding one is a typed error,
/// never a truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key, in UTF-8 bytes (512).
    pub max_key_bytes: usize,
    /// Largest value, in bytes (25 MiB).
    pub max_value_bytes: usize,
    /// Largest metadata, in bytes of serialized JSON (1024).
    pub max_metadata_bytes: usize,
    /// How far ahead an expiration must be, in seconds, for both `expiration` and
    /// `expiration_ttl` (60).
    pub min_expiration_ttl_secs: u64,
    /// Smallest accepted `cache_ttl`, in seconds (60).
    pub min_cache_ttl_secs: u64,
    /// Most keys in one `get_many` (100).
    pub max_bulk_get_keys: usize,
    /// Largest `list` page, also the default `limit` (1000).
    pub max_list_limit: usize,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            max_key_bytes: 512,
            max_value_bytes: 25 * 1024 * 1024,
            max_metadata_bytes: 1024,
            min_expiration_ttl_secs: 60,
            min_cache_ttl_secs: 60,
            max_bulk_get_keys: 100,
            max_list_limit: 1000,
        }
    }
}

/// A `put` that passed validation, in the form drivers store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPut {
    /// Absolute expiration in seconds since the Unix epoch (a TTL already added to now).
    pub expiration: Option<i64>,
    /// Metadata serialized as JSON; `None` when unset or JSON `null`.
    pub metadata_json: Option<String>,
}

/// A `list` that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedList {
    /// Keys must start with this (empty: every key).
    pub prefix: String,
    /// Most keys in the page.
    pub limit: usize,
    /// Keys must sort strictly after this one (decoded from the cursor).
    pub start_after: Option<String>,
}

impl KvLimits {
    /// A key is 1 to `max_key_bytes` UTF-8 bytes and is neither `.` nor `..`.
    pub fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key", "must not be empty"));
        }
        if key == "." || key == ".." {
            return Err(Error::invalid("key", format!("{key:?} is not allowed as a key")));
        }
        if key.len() > self.max_key_bytes {
            return Err(Error::TooLarge { field: "key", size: key.len(), limit: self.max_key_bytes });
        }
        Ok(())
    }

    /// Validates a single-key read.
    pub fn check_get(&self, key: &str, options: &GetOptions) -> Result<()> {
        self.check_key(key)?;
        self.check_get_options(options)
    }

    /// Validates a bulk read: at most `max_bulk_get_keys` keys, each valid.
    pub fn check_get_many(&self, keys: &[&str], options: &GetOptions) -> Result<()> {
        if keys.len() > self.max_bulk_get_keys {
            return Err(Error::invalid(
                "keys",
                format!("at most {} keys per bulk get, got {}", self.max_bulk_get_keys, keys.len()),
            ));
        }
        keys.iter().try_for_each(|key| self.check_key(key))?;
        self.check_get_options(options)
    }

    fn check_get_options(&self, options: &GetOptions) -> Result<()> {
        match options.cache_ttl {
            Some(ttl) if ttl < self.min_cache_ttl_secs => Err(Error::invalid(
                "cache_ttl",
                format!("must be at least {} seconds, got {ttl}", self.min_cache_ttl_secs),
            )),
            _ => Ok(()),
        }
    }

    /// Validates a write at `now_ms` (milliseconds since the Unix epoch) and resolves its
    /// expiration to an absolute time.
    pub fn check_put(
        &self,
        key: &str,
        value: &[u8],
        options: &PutOptions,
        now_ms: i64,
    ) -> Result<CheckedPut> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(Error::TooLarge { field: "value", size: value.len(), limit: self.max_value_bytes });
        }
        let expiration = self.resolve_expiration(options, now_ms.div_euclid(1000))?;
        let metadata_json = match &options.metadata {
            None | Some(serde_json::Value::Null) => None,
            Some(metadata) => {
                let json =
                    serde_json::to_string(metadata).map_err(|e| Error::invalid("metadata", e.to_string()))?;
                if json.len() > self.max_metadata_bytes {
                    return Err(Error::TooLarge {
                        field: "metadata",
                        size: json.len(),
                        limit: self.max_metadata_bytes,
                    });
                }
                Some(json)
            }
        };
        Ok(CheckedPut { expiration, metadata_json })
    }

    fn resolve_expiration(&self, options: &PutOptions, now_secs: i64) -> Result<Option<i64>> {
        // Expirations are stored as milliseconds in an i64 by some drivers.
        const LATEST: i64 = i64::MAX / 1000;
        let min_ttl = i64::try_from(self.min_expiration_ttl_secs).unwrap_or(i64::MAX);
        let earliest = now_secs.saturating_add(min_ttl);
        match (options.expiration, options.expiration_ttl) {
            (Some(_), Some(_)) => {
                Err(Error::invalid("expiration", "give either expiration or expiration_ttl, not both"))
            }
            (None, None) => Ok(None),
            (None, Some(ttl)) => {
                if ttl < self.min_expiration_ttl_secs {
                    return Err(Error::invalid(
                        "expiration_ttl",
                        format!("must be at least {} seconds, got {ttl}", self.min_expiration_ttl_secs),
                    ));
                }
                match i64::try_from(ttl).ok().and_then(|ttl| now_secs.checked_add(ttl)) {
                    Some(at) if at <= LATEST => Ok(Some(at)),
                    _ => Err(Error::invalid(
                        "expiration_ttl",
                        format!("{ttl} seconds is too far in the future"),
                    )),
                }
            }
            (Some(at), None) => match i64::try_from(at) {
                Ok(at) if at > LATEST => {
                    Err(Error::invalid("expiration", format!("{at} is too far in the future")))
                }
                Ok(at) if at >= earliest => Ok(Some(at)),
                _ => Err(Error::invalid(
                    "expiration",
                    format!(
                        "must be at least {} seconds in the future (now is {now_secs}), got {at}",
                        self.min_expiration_ttl_secs
                    ),
                )),
            },
        }
    }

    /// Validates a list request: `limit` within 1..=`max_list_limit` (default: the maximum), and a
    /// cursor produced by [`encode_cursor`].
    pub fn check_list(&self, options: &ListOptions) -> Result<CheckedList> {
        let limit = options.limit.unwrap_or(self.max_list_limit);
        if limit == 0 || limit > self.max_list_limit {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {}, got {limit}", self.max_list_limit),
            ));
        }
        let start_after = options.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(CheckedList { prefix: options.prefix.clone().unwrap_or_default(), limit, start_after })
    }
}

/// The cursor that continues a listing after `last_key`: opaque to callers (hex of the key's bytes).
pub fn encode_cursor(last_key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut cursor = String::with_capacity(last_key.len() * 2);
    for byte in last_key.bytes() {
        cursor.push(HEX[usize::from(byte >> 4)] as char);
        cursor.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    cursor
}

/// The key a cursor from [`encode_cursor`] continues after.
pub fn decode_cursor(cursor: &str) -> Result<String> {
    let bad = || Error::invalid("cursor", "not a cursor returned by list");
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) {
        return Err(bad());
    }
    let digit = |c: u8| char::from(c).to_digit(16).ok_or_else(bad);
    let bytes = cursor
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Ok(((digit(pair[0])? << 4) | digit(pair[1])?) as u8))
        .collect::<Result<Vec<u8>>>()?;
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_key() {
        for key in ["a", "user:42", "é€😀", "\u{0}x"] {
            assert_eq!(decode_cursor(&encode_cursor(key)).unwrap(), key);
        }
    }

    #[test]
    fn malformed_cursors_are_invalid_input() {
        for cursor in ["", "abc", "zz", "ff"] {
            let err = decode_cursor(cursor).unwrap_err();
            assert_eq!(err.field(), Some("cursor"), "{cursor:?}: {err}");
        }
    }

    #[test]
    fn a_ttl_resolves_to_now_plus_ttl_in_seconds() {
        let limits = KvLimits::default();
        let put = PutOptions { expiration_ttl: Some(900), ..Default::default() };
        let checked = limits.check_put("k", b"v", &put, 1_000_000_999).unwrap();
        assert_eq!(checked.expiration, Some(1_000_000 + 900));
    }

    #[test]
    fn absurd_expirations_are_rejected_not_overflowed() {
        let limits = KvLimits::default();
        let far = PutOptions { expiration: Some(u64::MAX), ..Default::default() };
        assert_eq!(limits.check_put("k", b"v", &far, 0).unwrap_err().field(), Some("expiration"));
        let long = PutOptions { expiration_ttl: Some(u64::MAX), ..Default::default() };
        assert_eq!(limits.check_put("k", b"v", &long, 0).unwrap_err().field(), Some("expiration_ttl"));
    }
}
