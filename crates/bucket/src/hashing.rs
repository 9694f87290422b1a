//! Digests computed while a body streams through: MD5 (the etag) and the checksum the uploader
//! asked for, plus the etag of a multipart object.

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

use crate::{Checksum, ChecksumAlgorithm, Checksums, Error, Result};

/// Hashes a body chunk by chunk: always MD5, and the algorithm of the expected checksum if any.
pub struct ContentHasher {
    md5: Md5,
    extra: Option<ExtraHasher>,
    size: u64,
}

enum ExtraHasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// The digests of a complete body.
#[derive(Debug, Clone)]
pub struct ContentDigests {
    pub size: u64,
    pub md5: [u8; 16],
    /// The digest in the algorithm of the expected checksum (MD5 itself included).
    pub checksums: Checksums,
}

impl ContentHasher {
    /// A hasher that also computes the digest `expected` will be checked against.
    pub fn new(expected: Option<ChecksumAlgorithm>) -> ContentHasher {
        let extra = match expected {
            None | Some(ChecksumAlgorithm::Md5) => None,
            Some(ChecksumAlgorithm::Sha1) => Some(ExtraHasher::Sha1(Sha1::new())),
            Some(ChecksumAlgorithm::Sha256) => Some(ExtraHasher::Sha256(Sha256::new())),
            Some(ChecksumAlgorithm::Sha384) => Some(ExtraHasher::Sha384(Sha384::new())),
            Some(ChecksumAlgorithm::Sha512) => Some(ExtraHasher::Sha512(Sha512::new())),
        };
        ContentHasher { md5: Md5::new(), extra, size: 0 }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        self.md5.update(chunk);
        match &mut self.extra {
            None => {}
            Some(ExtraHasher::Sha1(h)) => h.update(chunk),
            Some(ExtraHasher::Sha256(h)) => h.update(chunk),
            Some(ExtraHasher::Sha384(h)) => h.update(chunk),
            Some(ExtraHasher::Sha512(h)) => h.update(chunk),
        }
    }

    pub fn finish(self) -> ContentDigests {
        let md5: [u8; 16] = self.md5.finalize().into();
        let mut checksums = Checksums { md5: Some(md5.to_vec()), ..Checksums::default() };
        match self.extra {
            None => {}
            Some(ExtraHasher::Sha1(h)) => checksums.sha1 = Some(h.finalize().to_vec()),
            Some(ExtraHasher::Sha256(h)) => checksums.sha256 = Some(h.finalize().to_vec()),
            Some(ExtraHasher::Sha384(h)) => checksums.sha384 = Some(h.finalize().to_vec()),
            Some(ExtraHasher::Sha512(h)) => checksums.sha512 = Some(h.finalize().to_vec()),
        }
        ContentDigests { size: self.size, md5, checksums }
    }
}

impl ContentDigests {
    /// The etag of a single-part object: its hex MD5.
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }

    /// `Ok` if the body has the digest the caller expected (or none was expected).
    pub fn verify(&self, expected: Option<&Checksum>) -> Result<()> {
        let Some(expected) = expected else { return Ok(()) };
        let computed = self.checksums.get(expected.algorithm()).unwrap_or_default();
        if computed == expected.digest() {
            return Ok(());
        }
        Err(Error::ChecksumMismatch {
            algorithm: expected.algorithm(),
            expected: hex::encode(expected.digest()),
            computed: hex::encode(computed),
        })
    }
}

/// The etag of a multipart object: the hex MD5 of its parts' binary MD5s, then `-<parts>`.
pub fn multipart_etag<'a>(part_md5s: impl ExactSizeIterator<Item = &'a [u8]>) -> String {
    let count = part_md5s.len();
    let mut hasher = Md5::new();
    for md5 in part_md5s {
        hasher.update(md5);
    }
    format!("{}-{count}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_known_values_whatever_the_chunking() {
        let mut hasher = ContentHasher::new(Some(ChecksumAlgorithm::Sha256));
        for chunk in [&b"hello"[..], b" ", b"world"] {
            hasher.update(chunk);
        }
        let digests = hasher.finish();
        assert_eq!(digests.size, 11);
        assert_eq!(digests.etag(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            hex::encode(digests.checksums.sha256.as_deref().unwrap()),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(digests.checksums.sha1, None, "only the requested algorithm is computed");
    }

    #[test]
    fn verify_rejects_a_different_digest() {
        let mut hasher = ContentHasher::new(Some(ChecksumAlgorithm::Md5));
        hasher.update(b"hello world");
        let digests = hasher.finish();
        let good = Checksum::from_hex(ChecksumAlgorithm::Md5, "5eb63bbbe01eeed093cb22bb8f5acdc3").unwrap();
        assert!(digests.verify(Some(&good)).is_ok());
        assert!(digests.verify(None).is_ok());
        let bad = Checksum::new(ChecksumAlgorithm::Md5, vec![0; 16]).unwrap();
        assert!(matches!(
            digests.verify(Some(&bad)),
            Err(Error::ChecksumMismatch { algorithm: ChecksumAlgorithm::Md5, .. })
        ));
    }

    #[test]
    fn multipart_etag_hashes_the_binary_part_md5s() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let mut joined = Vec::new();
        joined.extend_from_slice(&a);
        joined.extend_from_slice(&b);
        let expected = format!("{}-2", hex::encode(Md5::digest(&joined)));
        assert_eq!(multipart_etag([&a[..], &b[..]].into_iter()), expected);
    }
}
