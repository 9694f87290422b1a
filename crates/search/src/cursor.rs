//! Opaque pagination cursors: the offset of the next page and a hash of the query it belongs to, so a
//! cursor handed to another query is refused instead of paging through the wrong results.
//!
//! Wire form: URL-safe base64 (no padding) of 13 bytes — version `1`, the offset (u32 LE), the query's
//! 64-bit FNV-1a hash (u64 LE). The hash is stable across processes and versions of Rust.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::SearchError;

const VERSION: u8 = 1;
const LEN: usize = 13;

/// FNV-1a over `parts`, each followed by a NUL (so `("ab", "c")` and `("a", "bc")` differ).
pub(crate) fn query_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.as_bytes().iter().chain(&[0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The cursor of the page starting at `offset` of the query hashed `hash`.
pub(crate) fn encode(offset: usize, hash: u64) -> String {
    let mut bytes = [0u8; LEN];
    bytes[0] = VERSION;
    bytes[1..5].copy_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes());
    bytes[5..].copy_from_slice(&hash.to_le_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The offset a cursor points at, if it was made for the query hashed `hash`.
pub(crate) fn decode(cursor: &str, hash: u64) -> Result<usize, SearchError> {
    let invalid = |reason: &str| SearchError::invalid("cursor", reason.to_owned());
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid("is not a cursor this server issued (not base64url)"))?;
    if bytes.len() != LEN || bytes[0] != VERSION {
        return Err(invalid("is not a cursor this server issued"));
    }
    let offset = u32::from_le_bytes(bytes[1..5].try_into().unwrap_or_default()) as usize;
    let of_query = u64::from_le_bytes(bytes[5..].try_into().unwrap_or_default());
    if of_query != hash {
        return Err(invalid(
            "belongs to another query (the query, filters or mode changed); start again without it",
        ));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_query_only() {
        let hash = query_hash(["acme", "parse json"]);
        let cursor = encode(40, hash);
        assert_eq!(decode(&cursor, hash).unwrap(), 40);
        let other = query_hash(["acme", "parse xml"]);
        assert!(decode(&cursor, other).unwrap_err().to_string().contains("another query"));
        assert_ne!(query_hash(["ab", "c"]), query_hash(["a", "bc"]));
        for bad in ["", "!!!", "AAAA", &encode(1, hash)[1..]] {
            assert_eq!(decode(bad, hash).unwrap_err().field(), Some("cursor"), "{bad:?}");
        }
    }
}
