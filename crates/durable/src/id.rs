//! Object ids: 32 bytes shown as 64 lowercase hex digits, derived from a name or drawn at random,
//! and bound to their namespace by a tag so that a mistyped id or another namespace's id is refused.
//!
//! Layout: `body (16 bytes) ‖ tag (16 bytes)` where
//! * a named id's body is `SHA-256("ledge-durable/name\0" ‖ len(namespace) ‖ namespace ‖ name)[..16]`,
//! * a unique id's body is 16 random bytes (a v4 UUID),
//! * the tag is `SHA-256("ledge-durable/tag\0" ‖ len(namespace) ‖ namespace ‖ body)[..16]`,
//!
//! with `len(namespace)` the byte length as 8 bytes big-endian.
//!
//! The tag is a checksum, not a secret: it makes `id_from_string` reject garbage and ids of other
//! namespaces, as the edge platform does. These derivations are part of the storage format — changing
//! them orphans every stored object — so a unit test pins them.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::Error;

/// The id of one durable object within its namespace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// Length of the textual form.
    pub const HEX_LEN: usize = 64;

    /// Rebuilds an id from its stored bytes *without* checking its namespace tag. For storage
    /// drivers reading their own rows; untrusted text goes through [`crate::Namespace::id_from_string`].
    pub fn from_bytes(bytes: [u8; 32]) -> ObjectId {
        ObjectId(bytes)
    }

    /// The 32 bytes of the id, as storage drivers keep them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn from_name(namespace: &str, name: &str) -> ObjectId {
        let digest = hash_parts(b"ledge-durable/name\0", namespace, name.as_bytes());
        let mut body = [0u8; 16];
        body.copy_from_slice(&digest[..16]);
        ObjectId::with_tag(namespace, body)
    }

    pub(crate) fn new_unique(namespace: &str) -> ObjectId {
        ObjectId::with_tag(namespace, uuid::Uuid::new_v4().into_bytes())
    }

    pub(crate) fn parse(namespace: &str, text: &str) -> Result<ObjectId, Error> {
        let invalid =
            |message: &str| Error::InvalidId { id: text.chars().take(80).collect(), message: message.into() };
        if text.len() != Self::HEX_LEN {
            return Err(invalid("an object id is 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(|| invalid("an object id is 64 hex digits"))?;
            let lo = hex_value(pair[1]).ok_or_else(|| invalid("an object id is 64 hex digits"))?;
            bytes[i] = (hi << 4) | lo;
        }
        let id = ObjectId(bytes);
        let mut body = [0u8; 16];
        body.copy_from_slice(&bytes[..16]);
        if ObjectId::with_tag(namespace, body) != id {
            return Err(invalid("not an id of this namespace"));
        }
        Ok(id)
    }

    fn with_tag(namespace: &str, body: [u8; 16]) -> ObjectId {
        let tag = hash_parts(b"ledge-durable/tag\0", namespace, &body);
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&body);
        bytes[16..].copy_from_slice(&tag[..16]);
        ObjectId(bytes)
    }
}

fn hash_parts(domain: &[u8], namespace: &str, data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update((namespace.len() as u64).to_be_bytes());
    hasher.update(namespace.as_bytes());
    hasher.update(data);
    hasher.finalize().into()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ids_are_pinned_because_stored_data_is_keyed_by_them() {
        assert_eq!(
            ObjectId::from_name("INDEXING", "repo:42").to_string(),
            "731f74e3c20f7e469e590c32107c44e9e1303f9a0fca247681f2117683683b18"
        );
    }

    #[test]
    fn the_namespace_is_part_of_a_named_id() {
        assert_ne!(ObjectId::from_name("A", "x"), ObjectId::from_name("B", "x"));
        // Length-prefixing keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(ObjectId::from_name("ab", "c"), ObjectId::from_name("a", "bc"));
    }

    #[test]
    fn parsing_accepts_either_case_and_prints_lowercase() {
        let id = ObjectId::new_unique("ns");
        let upper = id.to_string().to_uppercase();
        assert_eq!(ObjectId::parse("ns", &upper).unwrap(), id);
        assert_eq!(ObjectId::parse("ns", &upper).unwrap().to_string(), id.to_string());
    }

    #[test]
    fn a_single_flipped_digit_is_refused() {
        let text = ObjectId::from_name("ns", "n").to_string();
        let mut bytes = text.into_bytes();
        bytes[3] = if bytes[3] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(matches!(ObjectId::parse("ns", &flipped), Err(Error::InvalidId { .. })));
    }
}
