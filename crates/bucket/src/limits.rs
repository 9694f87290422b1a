//! The bucket limits of the contract (bindings.md §3) as configuration, and the checks every
//! driver applies with them.

use std::collections::BTreeMap;

use crate::{Error, Result, UploadedPart};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Size and count limits. The defaults are the contract's; exceeding one is an error, never a
/// truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in UTF-8 bytes. (1024)
    pub max_key_bytes: usize,
    /// Most bytes of custom metadata, keys plus values in UTF-8. (8192)
    pub max_custom_metadata_bytes: usize,
    /// Largest `list` page. (1000)
    pub max_list_limit: usize,
    /// Most keys in one `delete`. (1000)
    pub max_delete_keys: usize,
    /// Largest object one `put` may store. (5 GiB)
    pub max_object_bytes: u64,
    /// Smallest part of a multipart upload, but for the last one. (5 MiB)
    pub min_part_bytes: u64,
    /// Largest part of a multipart upload. (5 GiB)
    pub max_part_bytes: u64,
    /// Highest part number, and so most parts, of a multipart upload. (10 000)
    pub max_parts: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_custom_metadata_bytes: 8192,
            max_list_limit: 1000,
            max_delete_keys: 1000,
            max_object_bytes: 5 * GIB,
            min_part_bytes: 5 * MIB,
            max_part_bytes: 5 * GIB,
            max_parts: 10_000,
        }
    }
}

impl Limits {
    /// A key must be non-empty and at most `max_key_bytes` long. (A `&str` is valid UTF-8 by
    /// construction; keys are opaque names, never paths.)
    pub fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid("key", "a key cannot be empty"));
        }
        if key.len() > self.max_key_bytes {
            return Err(Error::TooLarge { what: "key", limit: self.max_key_bytes as u64 });
        }
        Ok(())
    }

    /// A key received as bytes (e.g. a percent-decoded URL path): valid UTF-8, then as
    /// [`Limits::check_key`].
    pub fn check_key_bytes<'a>(&self, key: &'a [u8]) -> Result<&'a str> {
        let key = std::str::from_utf8(key).map_err(|e| Error::invalid("key", format!("not UTF-8: {e}")))?;
        self.check_key(key)?;
        Ok(key)
    }

    /// Custom metadata keys plus values must fit in `max_custom_metadata_bytes`.
    pub fn check_custom_metadata(&self, metadata: &BTreeMap<String, String>) -> Result<()> {
        let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > self.max_custom_metadata_bytes {
            return Err(Error::TooLarge {
                what: "custom metadata",
                limit: self.max_custom_metadata_bytes as u64,
            });
        }
        Ok(())
    }

    /// The page size of a listing: `None` is the maximum; otherwise 1 to the maximum.
    pub fn list_limit(&self, requested: Option<usize>) -> Result<usize> {
        match requested {
            None => Ok(self.max_list_limit),
            Some(limit) if (1..=self.max_list_limit).contains(&limit) => Ok(limit),
            Some(limit) => {
                Err(Error::invalid("limit", format!("{limit} is not between 1 and {}", self.max_list_limit)))
            }
        }
    }

    /// A delete takes at most `max_delete_keys` keys, each a valid key.
    pub fn check_delete(&self, keys: &[String]) -> Result<()> {
        if keys.len() > self.max_delete_keys {
            return Err(Error::TooLarge { what: "keys per delete", limit: self.max_delete_keys as u64 });
        }
        keys.iter().try_for_each(|key| self.check_key(key))
    }

    /// Part numbers run from 1 to `max_parts`.
    pub fn check_part_number(&self, part_number: u32) -> Result<()> {
        if part_number == 0 || part_number > self.max_parts {
            return Err(Error::invalid(
                "part_number",
                format!("{part_number} is not between 1 and {}", self.max_parts),
            ));
        }
        Ok(())
    }

    /// The parts a `complete` names must be non-empty, in strictly ascending part-number
    /// order, and at most `max_parts`.
    pub fn check_part_list(&self, parts: &[UploadedPart]) -> Result<()> {
        if parts.is_empty() {
            return Err(Error::invalid("parts", "a multipart upload completes with at least one part"));
        }
        if parts.len() > self.max_parts as usize {
            return Err(Error::TooLarge { what: "parts per upload", limit: u64::from(self.max_parts) });
        }
        for pair in parts.windows(2) {
            if pair[1].part_number <= pair[0].part_number {
                return Err(Error::InvalidPart {
                    part_number: pair[1].part_number,
                    message: "parts must be listed in ascending part-number order, each once".into(),
                });
            }
        }
        parts.iter().try_for_each(|p| self.check_part_number(p.part_number))
    }

    /// The sizes of the parts of a completing upload, in order: every part but the last is at
    /// least `min_part_bytes` and all of them are the same size; the last is no larger.
    pub fn check_part_sizes(&self, parts: &[(u32, u64)]) -> Result<()> {
        let Some((&(_, last_size), rest)) = parts.split_last() else {
            return Ok(());
        };
        let Some(&(_, part_size)) = rest.first() else {
            return Ok(()); // A single part may be of any size.
        };
        for &(part_number, size) in rest {
            if size < self.min_part_bytes {
                return Err(Error::PartTooSmall { part_number, size, minimum: self.min_part_bytes });
            }
            if size != part_size {
                return Err(Error::InvalidPart {
                    part_number,
                    message: format!("{size} bytes, but every part but the last must be {part_size}"),
                });
            }
        }
        if last_size > part_size {
            let (part_number, _) = parts[parts.len() - 1];
            return Err(Error::InvalidPart {
                part_number,
                message: format!("the last part ({last_size} bytes) is larger than the others ({part_size})"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_non_empty_and_bounded() {
        let limits = Limits::default();
        assert!(limits.check_key("a").is_ok());
        assert!(limits.check_key(&"é".repeat(512)).is_ok(), "1024 bytes exactly");
        assert!(matches!(limits.check_key(&"é".repeat(513)), Err(Error::TooLarge { what: "key", .. })));
        assert!(matches!(limits.check_key(""), Err(Error::InvalidInput { field: "key", .. })));
        assert_eq!(limits.check_key_bytes("naïve".as_bytes()).unwrap(), "naïve");
        assert!(matches!(
            limits.check_key_bytes(&[b'a', 0xFF]),
            Err(Error::InvalidInput { field: "key", .. })
        ));
    }

    #[test]
    fn list_limit_defaults_to_the_maximum_and_is_bounded() {
        let limits = Limits::default();
        assert_eq!(limits.list_limit(None).unwrap(), 1000);
        assert_eq!(limits.list_limit(Some(1)).unwrap(), 1);
        assert!(limits.list_limit(Some(0)).is_err());
        assert!(limits.list_limit(Some(1001)).is_err());
    }

    #[test]
    fn part_sizes_are_equal_but_the_last_and_at_least_the_minimum() {
        let limits = Limits { min_part_bytes: 10, ..Limits::default() };
        assert!(limits.check_part_sizes(&[(1, 3)]).is_ok());
        assert!(limits.check_part_sizes(&[(1, 10), (2, 10), (3, 1)]).is_ok());
        assert!(limits.check_part_sizes(&[(1, 12), (5, 12)]).is_ok());
        assert!(matches!(
            limits.check_part_sizes(&[(1, 9), (2, 9)]),
            Err(Error::PartTooSmall { part_number: 1, size: 9, minimum: 10 })
        ));
        assert!(matches!(
            limits.check_part_sizes(&[(1, 10), (2, 11), (3, 1)]),
            Err(Error::InvalidPart { part_number: 2, .. })
        ));
        assert!(matches!(
            limits.check_part_sizes(&[(1, 10), (2, 11)]),
            Err(Error::InvalidPart { part_number: 2, .. })
        ));
    }

    #[test]
    fn part_lists_are_ascending_and_non_empty() {
        let limits = Limits::default();
        let part = |n: u32| UploadedPart { part_number: n, etag: String::new() };
        assert!(limits.check_part_list(&[part(1), part(3)]).is_ok());
        assert!(limits.check_part_list(&[]).is_err());
        assert!(matches!(limits.check_part_list(&[part(2), part(1)]), Err(Error::InvalidPart { .. })));
        assert!(matches!(limits.check_part_list(&[part(1), part(1)]), Err(Error::InvalidPart { .. })));
        assert!(limits.check_part_list(&[part(0)]).is_err());
    }
}
