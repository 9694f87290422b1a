//! Stripe webhook signatures: the `Stripe-Signature` header `t=<unix seconds>,v1=<hex>[,v1=…]`
//! (other schemes such as `v0` are ignored), where each `v1` is an HMAC-SHA256 of `<t>.<payload>`
//! under the endpoint's signing secret (`whsec_…`, used as written). A payload is accepted when
//! one `v1` matches (compared in constant time; Stripe sends two while a secret is rolled) and `t`
//! is within the tolerance window of now, either way. Replays inside the window are the caller's
//! to refuse, by event id.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's own default: a signature older (or newer) than five minutes is refused.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The longest header accepted.
pub const MAX_HEADER_BYTES: usize = 4096;
/// The most `v1` signatures one header may carry.
pub const MAX_SIGNATURES: usize = 8;

/// Why a signed payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature's timestamp is more than {} s away from now", .0.as_secs())]
    Stale(Duration),
    #[error("no v1 signature matches the payload")]
    Mismatch,
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignature {
    /// `t`: when Stripe signed, seconds since the epoch.
    pub timestamp: i64,
    /// Every `v1` signature.
    pub v1: Vec<[u8; 32]>,
}

impl StripeSignature {
    /// Parses the header: comma-separated `key=value` items, exactly one `t` (decimal seconds), at
    /// least one `v1` (64 hex digits); items of other schemes are skipped.
    pub fn parse(header: &[u8]) -> Result<StripeSignature, SignatureError> {
        use SignatureError::Malformed;
        if header.len() > MAX_HEADER_BYTES {
            return Err(Malformed("longer than 4 KiB"));
        }
        let text = std::str::from_utf8(header).map_err(|_| Malformed("not text"))?;
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for item in text.split(',') {
            let (key, value) = item.trim().split_once('=').ok_or(Malformed("an item is not key=value"))?;
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(Malformed("t appears twice"));
                    }
                    let valid =
                        !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit());
                    let seconds = value.parse::<i64>().ok().filter(|_| valid);
                    timestamp = Some(seconds.ok_or(Malformed("t is not a number of seconds"))?);
                }
                "v1" => {
                    if v1.len() == MAX_SIGNATURES {
                        return Err(Malformed("too many v1 signatures"));
                    }
                    let mut mac = [0u8; 32];
                    hex::decode_to_slice(value, &mut mac)
                        .map_err(|_| Malformed("v1 is not 64 hex digits"))?;
                    v1.push(mac);
                }
                "" => return Err(Malformed("an item has no key")),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(Malformed("t is missing"))?;
        if v1.is_empty() {
            return Err(Malformed("no v1 signature"));
        }
        Ok(StripeSignature { timestamp, v1 })
    }
}

/// Checks Stripe webhook payloads against one endpoint's signing secret.
#[derive(Clone)]
pub struct StripeVerifier {
    secret: Vec<u8>,
    tolerance: Duration,
}

impl std::fmt::Debug for StripeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeVerifier").field("secret", &"***").field("tolerance", &self.tolerance).finish()
    }
}

impl StripeVerifier {
    /// A verifier for `secret` (the endpoint's `whsec_…`), with [`DEFAULT_TOLERANCE`].
    pub fn new(secret: &[u8]) -> StripeVerifier {
        StripeVerifier { secret: secret.to_vec(), tolerance: DEFAULT_TOLERANCE }
    }

    pub fn with_tolerance(mut self, tolerance: Duration) -> StripeVerifier {
        self.tolerance = tolerance;
        self
    }

    fn mac(&self, timestamp: i64, payload: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// Verifies `payload` against the header (`None`: it is missing) at `now` (seconds since the
    /// epoch); answers the signature's timestamp. The signature is checked before the timestamp.
    pub fn verify(&self, header: Option<&[u8]>, payload: &[u8], now: i64) -> Result<i64, SignatureError> {
        let signature = StripeSignature::parse(header.ok_or(SignatureError::Missing)?)?;
        let expected = self.mac(signature.timestamp, payload);
        // Every candidate is compared, in constant time each.
        let matched = signature.v1.iter().fold(0u8, |found, v1| found | v1.ct_eq(&expected).unwrap_u8());
        if matched != 1 {
            return Err(SignatureError::Mismatch);
        }
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if now.abs_diff(signature.timestamp) > tolerance.unsigned_abs() {
            return Err(SignatureError::Stale(self.tolerance));
        }
        Ok(signature.timestamp)
    }

    /// The header Stripe would send for `payload` signed at `timestamp` (for tests and tools).
    pub fn sign(&self, timestamp: i64, payload: &[u8]) -> String {
        format!("t={timestamp},v1={}", hex::encode(self.mac(timestamp, payload)))
    }
}
