//! Byte ranges of a `get`: what a caller may ask for, and how it is clamped to the object.

use crate::{Error, Result};

/// The part of an object a `get` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `length` bytes from `offset`, or everything from `offset` when `length` is `None`.
    /// (`{offset?, length}` of the edge platform is `offset: 0`.)
    Offset { offset: u64, length: Option<u64> },
    /// The last `suffix` bytes.
    Suffix { suffix: u64 },
}

/// The bytes actually served: the requested range clamped to the object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedRange {
    pub offset: u64,
    pub length: u64,
}

impl Range {
    /// Everything from `offset` to the end.
    pub fn from_offset(offset: u64) -> Range {
        Range::Offset { offset, length: None }
    }

    /// `length` bytes from `offset`.
    pub fn bytes(offset: u64, length: u64) -> Range {
        Range::Offset { offset, length: Some(length) }
    }

    /// The first `length` bytes.
    pub fn first(length: u64) -> Range {
        Range::bytes(0, length)
    }

    /// The last `suffix` bytes.
    pub fn suffix(suffix: u64) -> Range {
        Range::Suffix { suffix }
    }

    /// Clamps the range to an object of `size` bytes: a range that runs past the end serves
    /// fewer bytes (none if it starts at or past the end). An empty request (`length` or
    /// `suffix` 0) is `InvalidInput`, as on the edge platform.
    pub fn resolve(&self, size: u64) -> Result<ServedRange> {
        match *self {
            Range::Suffix { suffix: 0 } | Range::Offset { length: Some(0), .. } => {
                Err(Error::invalid("range", "a range must ask for at least one byte"))
            }
            Range::Suffix { suffix } => {
                let length = suffix.min(size);
                Ok(ServedRange { offset: size - length, length })
            }
            Range::Offset { offset, length } => {
                let start = offset.min(size);
                let end = match length {
                    Some(length) => start.saturating_add(length).min(size),
                    None => size,
                };
                Ok(ServedRange { offset: start, length: end - start })
            }
        }
    }

    /// Parses an HTTP `Range` header holding one byte range (`bytes=0-99`, `bytes=100-`,
    /// `bytes=-100`). Anything else — other units, several ranges, garbage — is `None`, and
    /// HTTP then serves the whole object, as RFC 7233 allows.
    pub fn from_header(value: &str) -> Option<Range> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => None,
            (true, false) => Some(Range::suffix(number(last)?)),
            (false, true) => Some(Range::from_offset(number(first)?)),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return None;
                }
                Some(Range::bytes(first, last - first + 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(offset: u64, length: u64) -> ServedRange {
        ServedRange { offset, length }
    }

    #[test]
    fn ranges_are_clamped_to_the_object() {
        let size = 10;
        let cases = [
            (Range::bytes(2, 3), served(2, 3)),
            (Range::bytes(8, 5), served(8, 2)),
            (Range::from_offset(4), served(4, 6)),
            (Range::from_offset(10), served(10, 0)),
            (Range::from_offset(50), served(10, 0)),
            (Range::first(4), served(0, 4)),
            (Range::first(40), served(0, 10)),
            (Range::suffix(3), served(7, 3)),
            (Range::suffix(30), served(0, 10)),
            (Range::bytes(u64::MAX, u64::MAX), served(10, 0)),
        ];
        for (range, expected) in cases {
            assert_eq!(range.resolve(size).unwrap(), expected, "{range:?}");
        }
    }

    #[test]
    fn empty_ranges_are_rejected() {
        assert!(matches!(Range::bytes(1, 0).resolve(10), Err(Error::InvalidInput { field: "range", .. })));
        assert!(matches!(Range::suffix(0).resolve(10), Err(Error::InvalidInput { field: "range", .. })));
    }

    #[test]
    fn range_headers_with_one_byte_range_parse() {
        assert_eq!(Range::from_header("bytes=0-99"), Some(Range::bytes(0, 100)));
        assert_eq!(Range::from_header("bytes=5-5"), Some(Range::bytes(5, 1)));
        assert_eq!(Range::from_header("bytes=100-"), Some(Range::from_offset(100)));
        assert_eq!(Range::from_header("bytes=-20"), Some(Range::suffix(20)));
        assert_eq!(Range::from_header(" bytes= 1 - 2 "), Some(Range::bytes(1, 2)));
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=5-4", "bytes=-", "bytes=a-b", "bytes=+1-2", ""] {
            assert_eq!(Range::from_header(ignored), None, "{ignored}");
        }
    }
}
