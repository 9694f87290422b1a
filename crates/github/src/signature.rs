//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a delivery's signature was not accepted. The messages are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
    /// The repository has a webhook secret of its own that the server cannot read (its sealing key
    /// is not configured): deliveries for it cannot be verified.
    #[error("the repository's webhook secret cannot be read by the server")]
    KeyUnavailable,
    /// No secret applies: neither the server's nor the repository's.
    #[error("no webhook secret applies to this delivery")]
    NoKey,
}

/// Verifies GitHub webhook signatures with one shared secret.
///
/// The HMAC key schedule is computed once; each verification clones it, feeds the body and
/// compares with [`Mac::verify_slice`], which is constant-time.
#[derive(Clone)]
pub struct WebhookVerifier {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookVerifier { secret: *** }")
    }
}

impl WebhookVerifier {
    pub fn new(secret: &[u8]) -> WebhookVerifier {
        WebhookVerifier {
            keyed: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length"),
        }
    }

    /// Checks `header` (the `X-Hub-Signature-256` value, if any) against `body`.
    pub fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_digest = header.strip_prefix(b"sha256=").ok_or(SignatureError::Malformed)?;
        if hex_digest.len() != 64 {
            return Err(SignatureError::Malformed);
        }
        let mut expected = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
    }

    /// The header value GitHub would send for `body` (used by tests and the benchmark client).
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from GitHub's documentation ("Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &str = "Hello, World!";
    const SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn check(header: Option<&str>, body: &str) -> Result<(), SignatureError> {
        WebhookVerifier::new(SECRET.as_bytes()).verify(header.map(str::as_bytes), body.as_bytes())
    }

    #[test]
    fn accepts_githubs_documented_example() {
        assert_eq!(check(Some(SIGNATURE), BODY), Ok(()));
        assert_eq!(WebhookVerifier::new(SECRET.as_bytes()).sign(BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn accepts_uppercase_hex() {
        let upper = format!("sha256={}", SIGNATURE[7..].to_uppercase());
        assert_eq!(check(Some(&upper), BODY), Ok(()));
    }

    #[test]
    fn rejects_each_kind_of_bad_signature() {
        let cases: &[(Option<&str>, &str, SignatureError)] = &[
            (None, BODY, SignatureError::Missing),
            (Some(""), BODY, SignatureError::Malformed),
            (Some("sha1=757107ea0eb2509fc211221cce984b8a37570b6d"), BODY, SignatureError::Malformed),
            (Some(&SIGNATURE[..70]), BODY, SignatureError::Malformed),
            (
                Some("sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                BODY,
                SignatureError::Malformed,
            ),
            (Some(SIGNATURE), "Hello, World?", SignatureError::Mismatch),
            (
                Some("sha256=857107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                BODY,
                SignatureError::Mismatch,
            ),
        ];
        for (header, body, want) in cases {
            assert_eq!(check(*header, body).as_ref(), Err(want), "header {header:?} body {body:?}");
        }
    }
}
